// The C ABI (qmoe.h) over the C++ API: DLPack tensors are checked here, then handed to the
// C++ entry points as pointers + dims. Every exported function runs its body inside
// `guarded`, the one place where C++ errors (Status values and exceptions) become a
// qmoe_status_t and a thread-local message.
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "qmoe.h"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/gpu.hpp"
#include "qmoe/packed.hpp"
#include "qmoe/quantize.hpp"
#include "qmoe/tensor.hpp"

struct qmoe_packed {
  qmoe::PackedMatrix matrix;
};
struct qmoe_bank {
  qmoe::ExpertBank bank;
};
struct qmoe_device_bank {
  qmoe::DeviceExpertBank bank;
};

namespace {

using qmoe::invalid_argument;
using qmoe::Status;
using qmoe::StatusCode;

static_assert(QMOE_STATUS_OK == static_cast<int>(StatusCode::kOk), "status values drifted");
static_assert(QMOE_STATUS_INVALID_ARGUMENT == static_cast<int>(StatusCode::kInvalidArgument),
              "status values drifted");
static_assert(QMOE_STATUS_UNSUPPORTED == static_cast<int>(StatusCode::kUnsupported),
              "status values drifted");
static_assert(QMOE_STATUS_OUT_OF_RANGE == static_cast<int>(StatusCode::kOutOfRange),
              "status values drifted");
static_assert(QMOE_STATUS_CUDA_ERROR == static_cast<int>(StatusCode::kCudaError),
              "status values drifted");
static_assert(QMOE_STATUS_INTERNAL == static_cast<int>(StatusCode::kInternal),
              "status values drifted");

// ---- errors ---------------------------------------------------------------------------

/// Fixed storage so that recording an error can never fail; longer messages are truncated.
constexpr size_t kErrorCapacity = 1024;
thread_local char t_last_error[kErrorCapacity] = "";

qmoe_status_t fail(const char* fn, qmoe_status_t code, const char* message) noexcept {
  std::snprintf(t_last_error, kErrorCapacity, "%s: %s", fn, message);
  return code;
}

qmoe_status_t to_c(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return QMOE_STATUS_OK;
    case StatusCode::kInvalidArgument:
      return QMOE_STATUS_INVALID_ARGUMENT;
    case StatusCode::kUnsupported:
      return QMOE_STATUS_UNSUPPORTED;
    case StatusCode::kOutOfRange:
      return QMOE_STATUS_OUT_OF_RANGE;
    case StatusCode::kCudaError:
      return QMOE_STATUS_CUDA_ERROR;
    case StatusCode::kInternal:
      return QMOE_STATUS_INTERNAL;
  }
  return QMOE_STATUS_INTERNAL;
}

/// Runs body() (returns a Status) for the exported function `fn`: no exception escapes.
template <typename Body>
qmoe_status_t guarded(const char* fn, Body&& body) noexcept {
  try {
    const Status st = body();
    if (st.is_ok()) return QMOE_STATUS_OK;
    return fail(fn, to_c(st.code()), st.message().c_str());
  } catch (const std::bad_alloc&) {
    return fail(fn, QMOE_STATUS_OUT_OF_RANGE, "out of memory");
  } catch (const std::exception& e) {
    return fail(fn, QMOE_STATUS_INTERNAL, e.what());
  } catch (...) {
    return fail(fn, QMOE_STATUS_INTERNAL, "unknown exception");
  }
}

// ---- DLPack tensors -------------------------------------------------------------------

/// Element types the ABI accepts somewhere; a call names the ones it takes as a bit mask.
enum class Elem : unsigned { kF32, kF64, kBF16, kFP16, kI32 };

struct ElemInfo {
  Elem elem;
  uint8_t code, bits;
  const char* name;
};
constexpr ElemInfo kElems[] = {
    {Elem::kF32, kDLFloat, 32, "float32"},    {Elem::kF64, kDLFloat, 64, "float64"},
    {Elem::kBF16, kDLBfloat, 16, "bfloat16"}, {Elem::kFP16, kDLFloat, 16, "float16"},
    {Elem::kI32, kDLInt, 32, "int32"},
};

constexpr unsigned bit(Elem e) {
  return 1u << static_cast<unsigned>(e);
}

/// A free dimension in an expected shape.
constexpr int64_t kAnyDim = -1;
constexpr int kMaxDims = 2;

/// A tensor that passed check_tensor: its first element (byte_offset applied) and dims.
struct Checked {
  void* data = nullptr;
  int64_t dims[kMaxDims] = {0, 0};
  Elem elem = Elem::kF32;
  int64_t numel = 0;
};

qmoe::DType act_dtype(Elem e) {
  return e == Elem::kBF16 ? qmoe::DType::kBF16 : qmoe::DType::kFP16;
}

/// "[2, 3]"; with `any` set, kAnyDim prints as "*" (for expected shapes).
std::string dims_string(const int64_t* dims, size_t ndim, bool any = false) {
  std::string s = "[";
  for (size_t i = 0; i < ndim; ++i) {
    if (i > 0) s += ", ";
    s += any && dims[i] == kAnyDim ? std::string("*") : std::to_string(dims[i]);
  }
  return s + "]";
}

std::string dtype_string(DLDataType t) {
  for (const ElemInfo& e : kElems)
    if (t.code == e.code && t.bits == e.bits && t.lanes == 1) return e.name;
  return "dtype (code " + std::to_string(t.code) + ", bits " + std::to_string(t.bits) + ", lanes " +
         std::to_string(t.lanes) + ")";
}

std::string device_string(DLDeviceType t) {
  switch (t) {
    case kDLCPU:
      return "kDLCPU";
    case kDLCUDA:
      return "kDLCUDA";
    default:
      return "device type " + std::to_string(static_cast<int>(t));
  }
}

/// Checks that t is a compact row-major tensor on `device` with one of the element types in
/// `elems` and the expected shape (kAnyDim: any size), and that its data is addressable.
Status check_tensor(const DLTensor* t, const char* name, DLDeviceType device, unsigned elems,
                    std::initializer_list<int64_t> shape, Checked* out) {
  const std::string who = name;
  if (t == nullptr) return invalid_argument(who + " is null");
  if (t->device.device_type != device)
    return invalid_argument(who + " must be on " + device_string(device) + ", is on " +
                            device_string(t->device.device_type));
  const ElemInfo* info = nullptr;
  std::string accepted;
  for (const ElemInfo& e : kElems) {
    if ((elems & bit(e.elem)) == 0) continue;
    accepted += (accepted.empty() ? "" : " or ") + std::string(e.name);
    if (t->dtype.code == e.code && t->dtype.bits == e.bits && t->dtype.lanes == 1) info = &e;
  }
  if (info == nullptr)
    return invalid_argument(who + " must be " + accepted + ", is " + dtype_string(t->dtype));
  const size_t ndim = shape.size();
  if (ndim > kMaxDims) return Status(StatusCode::kInternal, who + ": more dims than Checked holds");
  if (t->ndim != static_cast<int>(ndim))
    return invalid_argument(who + " must have " + std::to_string(ndim) + " dims, has " +
                            std::to_string(t->ndim));
  if (t->shape == nullptr) return invalid_argument(who + " has a null shape array");
  const int64_t* expect = shape.begin();
  int64_t numel = 1;
  for (size_t i = 0; i < ndim; ++i) {
    const int64_t d = t->shape[i];
    if (d < 0 || (expect[i] != kAnyDim && d != expect[i]))
      return invalid_argument(who + " has shape " + dims_string(t->shape, ndim) + ", expected " +
                              dims_string(expect, ndim, true));
    if (__builtin_mul_overflow(numel, d, &numel))
      return invalid_argument(who + " has more elements than int64 counts");
  }
  if (t->strides != nullptr) {
    // Strides of size-1 dims address nothing; frameworks leave arbitrary values there.
    int64_t compact = 1;
    for (size_t i = ndim; i-- > 0;) {
      if (t->shape[i] > 1 && t->strides[i] != compact)
        return invalid_argument(who + " must be compact row-major: strides " +
                                dims_string(t->strides, ndim) + " for shape " +
                                dims_string(t->shape, ndim));
      compact *= t->shape[i];
    }
  }
  const size_t elem_bytes = info->bits / 8u;
  if (numel > INT64_MAX / static_cast<int64_t>(elem_bytes))
    return invalid_argument(who + " has more bytes than int64 counts");
  if (t->data == nullptr && numel > 0) return invalid_argument(who + " has null data");
  // An empty tensor may have no data at all; then nothing is addressed, not even byte_offset.
  char* data = t->data == nullptr ? nullptr : static_cast<char*>(t->data) + t->byte_offset;
  if (reinterpret_cast<uintptr_t>(data) % elem_bytes != 0)
    return invalid_argument(who + ": data + byte_offset is not aligned to its " +
                            std::to_string(elem_bytes) + "-byte elements");
  out->data = data;
  for (size_t i = 0; i < ndim; ++i) out->dims[i] = t->shape[i];
  out->elem = info->elem;
  out->numel = numel;
  return Status::ok();
}

// ---- small helpers --------------------------------------------------------------------

Status parse_format(const char* text, qmoe::FormatSpec* f) {
  if (text == nullptr) return invalid_argument("format is null");
  return qmoe::FormatSpec::parse(text, f);
}

/// Copies s into a caller buffer (docs of qmoe_format_canonical); nothing written on error.
Status write_string(const std::string& s, char* buf, size_t buf_bytes, size_t* length) {
  if (buf == nullptr && buf_bytes != 0) return invalid_argument("buf is null, buf_bytes is not 0");
  if (buf_bytes != 0 && buf_bytes <= s.size())
    return invalid_argument("buffer of " + std::to_string(buf_bytes) + " bytes cannot hold \"" + s +
                            "\" (" + std::to_string(s.size() + 1) + " bytes)");
  if (buf_bytes != 0) std::memcpy(buf, s.c_str(), s.size() + 1);
  if (length != nullptr) *length = s.size();
  return Status::ok();
}

/// The integer a C caller passed as an enum argument, read through memcpy from the argument
/// itself (taken by reference): a C caller may pass any int, and loading a value outside the
/// enum's range as the enum is undefined in C++. Callers pass enum arguments on by reference.
template <typename Enum>
std::underlying_type_t<Enum> raw_value(const Enum& e) {
  std::underlying_type_t<Enum> v;
  std::memcpy(&v, &e, sizeof(v));
  return v;
}

/// One C enum value and the C++ value it stands for.
template <typename CEnum, typename CppEnum>
struct EnumPair {
  CEnum c;
  CppEnum cpp;
};

/// *out = the C++ value of a C enum argument (raw_value: any int the caller passed is safe), or
/// INVALID_ARGUMENT "unknown <what> <value>".
template <typename CEnum, typename CppEnum, size_t N>
Status from_c_enum(const CEnum& value, const EnumPair<CEnum, CppEnum> (&pairs)[N], const char* what,
                   CppEnum* out) {
  const auto raw = raw_value(value);
  for (const EnumPair<CEnum, CppEnum>& p : pairs)
    if (static_cast<decltype(raw)>(p.c) == raw) {
      *out = p.cpp;
      return Status::ok();
    }
  return invalid_argument(std::string("unknown ") + what + " " +
                          std::to_string(static_cast<int>(raw)));
}

Status to_method(const qmoe_quant_method_t& method, qmoe::QuantMethod* out) {
  static constexpr EnumPair<qmoe_quant_method_t, qmoe::QuantMethod> kPairs[] = {
      {QMOE_QUANT_RTN, qmoe::QuantMethod::kRtnMinMax},
      {QMOE_QUANT_RTN_MSE, qmoe::QuantMethod::kRtnMse},
      {QMOE_QUANT_GPTQ, qmoe::QuantMethod::kGptq}};
  return from_c_enum(method, kPairs, "quantization method", out);
}

Status to_kernel(const qmoe_kernel_t& kernel, qmoe::KernelChoice* out) {
  static constexpr EnumPair<qmoe_kernel_t, qmoe::KernelChoice> kPairs[] = {
      {QMOE_KERNEL_AUTO, qmoe::KernelChoice::kAuto},
      {QMOE_KERNEL_DECODE, qmoe::KernelChoice::kDecode},
      {QMOE_KERNEL_PREFILL, qmoe::KernelChoice::kPrefill}};
  return from_c_enum(kernel, kPairs, "kernel choice", out);
}

Status to_integer_decode(const qmoe_integer_decode_t& decode, qmoe::IntegerDecode* out) {
  static constexpr EnumPair<qmoe_integer_decode_t, qmoe::IntegerDecode> kPairs[] = {
      {QMOE_INTEGER_DECODE_AUTO, qmoe::IntegerDecode::kAuto},
      {QMOE_INTEGER_DECODE_OFF, qmoe::IntegerDecode::kOff},
      {QMOE_INTEGER_DECODE_ON, qmoe::IntegerDecode::kOn}};
  return from_c_enum(decode, kPairs, "integer_decode", out);
}

Status to_tile_kernel(const qmoe_tile_kernel_t& tile, qmoe::TileKernel* out) {
  static constexpr EnumPair<qmoe_tile_kernel_t, qmoe::TileKernel> kPairs[] = {
      {QMOE_TILE_KERNEL_AUTO, qmoe::TileKernel::kAuto},
      {QMOE_TILE_KERNEL_MMA_SYNC, qmoe::TileKernel::kMmaSync},
      {QMOE_TILE_KERNEL_WGMMA, qmoe::TileKernel::kWgmma}};
  return from_c_enum(tile, kPairs, "tile_kernel", out);
}

Status to_epilogue(const qmoe_epilogue_t& epilogue, qmoe::Epilogue* out) {
  static constexpr EnumPair<qmoe_epilogue_t, qmoe::Epilogue> kPairs[] = {
      {QMOE_EPILOGUE_NONE, qmoe::Epilogue::kNone},
      {QMOE_EPILOGUE_SILU_MUL_INTERLEAVED, qmoe::Epilogue::kSiluMulInterleaved}};
  return from_c_enum(epilogue, kPairs, "epilogue", out);
}

/// The GPU entry points answer "unsupported" before anything else when there is no device,
/// so a caller without one gets the same answer whatever it passes.
Status require_gpu() {
  static const bool available = qmoe::gpu_available();
  if (available) return Status::ok();
#ifdef QMOE_WITH_CUDA
  return qmoe::unsupported("no CUDA device is visible");
#else
  return qmoe::unsupported("qmoe was built without CUDA");
#endif
}

template <typename T>
void copy_out(const std::vector<T>& from, const Checked& to) {
  if (from.empty()) return;  // an empty output may have null data, which memcpy must not get
  std::memcpy(to.data, from.data(), from.size() * sizeof(T));
}

Status check_size(size_t got, const Checked& to) {
  if (got != static_cast<size_t>(to.numel))
    return Status(StatusCode::kInternal, "result has " + std::to_string(got) +
                                             " elements, the output tensor " +
                                             std::to_string(to.numel));
  return Status::ok();
}

/// struct_size of qmoe_grouped_gemm_options_t in the 0.3.0 header (before `epilogue`) and the
/// 0.4.0 one (before `tile_kernel`).
constexpr size_t kOptionsSize030 = offsetof(qmoe_grouped_gemm_options_t, epilogue);
constexpr size_t kOptionsSize040 = offsetof(qmoe_grouped_gemm_options_t, tile_kernel);

/// qmoe_grouped_gemm(_ex)'s checks and call; options NULL = the defaults.
Status grouped_gemm_call(const qmoe_device_bank_t* bank, const DLTensor* x,
                         const DLTensor* expert_offsets, DLTensor* y,
                         const qmoe_grouped_gemm_options_t* options, void* workspace,
                         size_t* workspace_bytes, void* stream) {
  QMOE_RETURN_IF_ERROR(require_gpu());
  qmoe_grouped_gemm_options_t opt;
  qmoe_grouped_gemm_options_init(&opt);
  if (options != nullptr) {
    if (options->struct_size != sizeof(qmoe_grouped_gemm_options_t) &&
        options->struct_size != kOptionsSize030 && options->struct_size != kOptionsSize040)
      return invalid_argument(
          "options.struct_size = " + std::to_string(options->struct_size) + ", this library's is " +
          std::to_string(sizeof(qmoe_grouped_gemm_options_t)) + " (or " +
          std::to_string(kOptionsSize030) + " / " + std::to_string(kOptionsSize040) +
          " from the 0.3.0 / 0.4.0 header; qmoe_grouped_gemm_options_init "
          "sets it)");
    // The caller's fields; those its header lacks keep their defaults.
    std::memcpy(&opt, options, options->struct_size);
    opt.struct_size = sizeof(qmoe_grouped_gemm_options_t);
  }
  if (bank == nullptr || workspace_bytes == nullptr)
    return invalid_argument("bank and workspace_bytes must not be null");
  if (opt.offsets_precede_previous_kernel != 0 && opt.offsets_precede_previous_kernel != 1)
    return invalid_argument("offsets_precede_previous_kernel must be 0 or 1, got " +
                            std::to_string(opt.offsets_precede_previous_kernel));
  qmoe::Epilogue epilogue = qmoe::Epilogue::kNone;
  QMOE_RETURN_IF_ERROR(to_epilogue(opt.epilogue, &epilogue));
  const qmoe::DeviceBankView& view = bank->bank.view();
  const bool gated = epilogue == qmoe::Epilogue::kSiluMulInterleaved;
  if (gated && view.n % 16 != 0)
    return invalid_argument("the gated-SiLU epilogue needs the bank's n a multiple of 16, got " +
                            std::to_string(view.n));
  const int64_t y_cols = gated ? view.n / 2 : view.n;
  const unsigned act = bit(Elem::kBF16) | bit(Elem::kFP16);
  Checked xc, yc, oc;
  QMOE_RETURN_IF_ERROR(check_tensor(x, "x", kDLCUDA, act, {kAnyDim, view.k}, &xc));
  const int64_t m = xc.dims[0];
  QMOE_RETURN_IF_ERROR(check_tensor(y, "y", kDLCUDA, act, {m, y_cols}, &yc));
  QMOE_RETURN_IF_ERROR(check_tensor(expert_offsets, "expert_offsets", kDLCUDA, bit(Elem::kI32),
                                    {int64_t{view.num_experts} + 1}, &oc));
  if (xc.elem != yc.elem) return invalid_argument("x and y must have the same dtype");
  if (x->device.device_id != y->device.device_id ||
      x->device.device_id != expert_offsets->device.device_id)
    return invalid_argument("x, y and expert_offsets must be on the same device");
  int current = 0;
  QMOE_RETURN_IF_ERROR(qmoe::current_device(&current));
  if (x->device.device_id != current)
    return invalid_argument("x, y and expert_offsets are on device " +
                            std::to_string(x->device.device_id) + ", the current device is " +
                            std::to_string(current) + " (cudaSetDevice)");
  // The bank's pointers mean nothing to a kernel on another device (it faults, or reads another
  // allocation).
  if (bank->bank.device() != current)
    return invalid_argument("the bank was uploaded to device " +
                            std::to_string(bank->bank.device()) + ", the current device is " +
                            std::to_string(current) +
                            " (upload a copy to each device that runs it)");
  qmoe::GroupedGemmArgs args;
  QMOE_RETURN_IF_ERROR(to_kernel(opt.kernel, &args.kernel));
  QMOE_RETURN_IF_ERROR(to_integer_decode(opt.integer_decode, &args.integer_decode));
  QMOE_RETURN_IF_ERROR(to_tile_kernel(opt.tile_kernel, &args.tile_kernel));
  args.bank = view;
  args.x = qmoe::matrix_view(static_cast<const void*>(xc.data), m, view.k, act_dtype(xc.elem));
  args.y = qmoe::matrix_view(yc.data, m, y_cols, act_dtype(yc.elem));
  args.epilogue = epilogue;
  args.expert_offsets = static_cast<const int32_t*>(oc.data);
  args.decode_max_tokens = opt.decode_max_tokens;
  args.offsets_precede_previous_kernel = opt.offsets_precede_previous_kernel != 0;
  return qmoe::grouped_gemm(args, workspace, workspace_bytes, static_cast<cudaStream_t>(stream));
}

}  // namespace

// ---- versions and errors ----------------------------------------------------------------

const char* qmoe_version(void) {
  return QMOE_VERSION_STRING;
}

int qmoe_abi_version(void) {
  return QMOE_ABI_VERSION;
}

const char* qmoe_last_error(void) {
  return t_last_error;
}

const char* qmoe_status_name(qmoe_status_t status) {
  const auto code = raw_value(status);
  switch (code) {
    case QMOE_STATUS_OK:
    case QMOE_STATUS_INVALID_ARGUMENT:
    case QMOE_STATUS_UNSUPPORTED:
    case QMOE_STATUS_OUT_OF_RANGE:
    case QMOE_STATUS_CUDA_ERROR:
    case QMOE_STATUS_INTERNAL:
      return qmoe::status_code_name(static_cast<StatusCode>(code));
  }
  return "unknown";
}

// ---- formats ------------------------------------------------------------------------------

int64_t qmoe_format_count(void) {
  try {
    return static_cast<int64_t>(qmoe::all_formats().size());
  } catch (...) {
    return 0;  // the registry could not be built (out of memory)
  }
}

const char* qmoe_format_name(int64_t index) {
  try {
    static const std::vector<std::string> names = [] {
      std::vector<std::string> v;
      for (const qmoe::FormatSpec& f : qmoe::all_formats()) v.push_back(f.to_string());
      return v;
    }();
    if (index < 0 || index >= static_cast<int64_t>(names.size())) return nullptr;
    return names[static_cast<size_t>(index)].c_str();
  } catch (...) {
    return nullptr;  // the table could not be built (out of memory)
  }
}

qmoe_status_t qmoe_format_canonical(const char* format, char* buf, size_t buf_bytes,
                                    size_t* length) {
  return guarded("qmoe_format_canonical", [&]() -> Status {
    qmoe::FormatSpec f;
    QMOE_RETURN_IF_ERROR(parse_format(format, &f));
    return write_string(f.to_string(), buf, buf_bytes, length);
  });
}

qmoe_status_t qmoe_format_bits_per_weight(const char* format, int64_t k_in,
                                          double* bits_per_weight) {
  return guarded("qmoe_format_bits_per_weight", [&]() -> Status {
    if (bits_per_weight == nullptr) return invalid_argument("bits_per_weight is null");
    qmoe::FormatSpec f;
    QMOE_RETURN_IF_ERROR(parse_format(format, &f));
    qmoe::PackedLayout layout;  // checks k_in against the format (range, group divisibility)
    QMOE_RETURN_IF_ERROR(qmoe::packed_layout(f, 1, k_in, &layout));
    *bits_per_weight = f.bits_per_weight(k_in);
    return Status::ok();
  });
}

// ---- packed matrices --------------------------------------------------------------------

qmoe_status_t qmoe_quantize(const DLTensor* w, const char* format, qmoe_quant_method_t method,
                            const DLTensor* calib, qmoe_packed_t** out) {
  return guarded("qmoe_quantize", [&]() -> Status {
    if (out == nullptr) return invalid_argument("out is null");
    qmoe::FormatSpec f;
    QMOE_RETURN_IF_ERROR(parse_format(format, &f));
    Checked wt;
    QMOE_RETURN_IF_ERROR(check_tensor(w, "w", kDLCPU, bit(Elem::kF32), {kAnyDim, kAnyDim}, &wt));
    if (wt.dims[0] == 0 || wt.dims[1] == 0)
      return invalid_argument("w is empty: shape " + dims_string(wt.dims, 2));
    qmoe::QuantizeOptions opt;
    QMOE_RETURN_IF_ERROR(to_method(method, &opt.method));
    if (method == QMOE_QUANT_GPTQ) {
      if (calib == nullptr) return invalid_argument("QMOE_QUANT_GPTQ needs calib");
      Checked c;
      QMOE_RETURN_IF_ERROR(
          check_tensor(calib, "calib", kDLCPU, bit(Elem::kF32), {kAnyDim, wt.dims[1]}, &c));
      if (c.dims[0] == 0) return invalid_argument("calib has no rows");
      opt.calib = static_cast<const float*>(c.data);
      opt.calib_rows = c.dims[0];
    } else if (calib != nullptr) {
      return invalid_argument("calib is only used by QMOE_QUANT_GPTQ");
    }
    auto packed = std::make_unique<qmoe_packed>();
    QMOE_RETURN_IF_ERROR(qmoe::quantize(static_cast<const float*>(wt.data), wt.dims[0], wt.dims[1],
                                        f, opt, &packed->matrix));
    *out = packed.release();
    return Status::ok();
  });
}

void qmoe_packed_destroy(qmoe_packed_t* packed) {
  delete packed;
}

qmoe_status_t qmoe_packed_shape(const qmoe_packed_t* packed, int64_t* n, int64_t* k) {
  return guarded("qmoe_packed_shape", [&]() -> Status {
    if (packed == nullptr || n == nullptr || k == nullptr)
      return invalid_argument("packed, n and k must not be null");
    *n = packed->matrix.n();
    *k = packed->matrix.k();
    return Status::ok();
  });
}

qmoe_status_t qmoe_packed_bytes(const qmoe_packed_t* packed, int64_t* bytes) {
  return guarded("qmoe_packed_bytes", [&]() -> Status {
    if (packed == nullptr || bytes == nullptr)
      return invalid_argument("packed and bytes must not be null");
    *bytes = static_cast<int64_t>(packed->matrix.blob.size());
    return Status::ok();
  });
}

qmoe_status_t qmoe_packed_data(const qmoe_packed_t* packed, const void** data) {
  return guarded("qmoe_packed_data", [&]() -> Status {
    if (packed == nullptr || data == nullptr)
      return invalid_argument("packed and data must not be null");
    *data = packed->matrix.blob.data();
    return Status::ok();
  });
}

qmoe_status_t qmoe_packed_format(const qmoe_packed_t* packed, char* buf, size_t buf_bytes,
                                 size_t* length) {
  return guarded("qmoe_packed_format", [&]() -> Status {
    if (packed == nullptr) return invalid_argument("packed is null");
    return write_string(packed->matrix.format.to_string(), buf, buf_bytes, length);
  });
}

qmoe_status_t qmoe_interleave_gate_up(const DLTensor* w13, DLTensor* out) {
  return guarded("qmoe_interleave_gate_up", [&]() -> Status {
    Checked w, o;
    QMOE_RETURN_IF_ERROR(check_tensor(w13, "w13", kDLCPU, bit(Elem::kF32), {kAnyDim, kAnyDim}, &w));
    QMOE_RETURN_IF_ERROR(
        check_tensor(out, "out", kDLCPU, bit(Elem::kF32), {w.dims[0], w.dims[1]}, &o));
    // Into a copy first: out may be w13 itself.
    std::vector<float> woven;
    QMOE_RETURN_IF_ERROR(
        qmoe::interleave_gate_up(static_cast<const float*>(w.data), w.dims[0], w.dims[1], &woven));
    QMOE_RETURN_IF_ERROR(check_size(woven.size(), o));
    copy_out(woven, o);
    return Status::ok();
  });
}

qmoe_status_t qmoe_dequantize(const qmoe_packed_t* packed, DLTensor* out) {
  return guarded("qmoe_dequantize", [&]() -> Status {
    if (packed == nullptr) return invalid_argument("packed is null");
    const qmoe::PackedMatrix& m = packed->matrix;
    Checked o;
    QMOE_RETURN_IF_ERROR(check_tensor(out, "out", kDLCPU,
                                      bit(Elem::kF32) | bit(Elem::kBF16) | bit(Elem::kFP16),
                                      {m.n(), m.k()}, &o));
    if (o.elem == Elem::kF32) {
      std::vector<float> w;
      QMOE_RETURN_IF_ERROR(qmoe::ref::dequantize(m, &w));
      QMOE_RETURN_IF_ERROR(check_size(w.size(), o));
      copy_out(w, o);
    } else {
      std::vector<uint16_t> w;
      QMOE_RETURN_IF_ERROR(qmoe::ref::dequantize_to(m, act_dtype(o.elem), &w));
      QMOE_RETURN_IF_ERROR(check_size(w.size(), o));
      copy_out(w, o);
    }
    return Status::ok();
  });
}

// ---- expert banks and the CPU reference -------------------------------------------------

qmoe_status_t qmoe_bank_create(qmoe_packed_t* const* experts, int64_t num_experts,
                               qmoe_bank_t** out) {
  return guarded("qmoe_bank_create", [&]() -> Status {
    if (experts == nullptr || out == nullptr)
      return invalid_argument("experts and out must not be null");
    if (num_experts < 1)
      return invalid_argument("num_experts is " + std::to_string(num_experts) + ", must be >= 1");
    std::vector<qmoe::PackedMatrix> copies;
    copies.reserve(static_cast<size_t>(num_experts));
    for (int64_t e = 0; e < num_experts; ++e) {
      if (experts[e] == nullptr)
        return invalid_argument("experts[" + std::to_string(e) + "] is null");
      copies.push_back(experts[e]->matrix);
    }
    auto bank = std::make_unique<qmoe_bank>();
    QMOE_RETURN_IF_ERROR(qmoe::ExpertBank::create(std::move(copies), &bank->bank));
    *out = bank.release();
    return Status::ok();
  });
}

void qmoe_bank_destroy(qmoe_bank_t* bank) {
  delete bank;
}

qmoe_status_t qmoe_bank_shape(const qmoe_bank_t* bank, int64_t* num_experts, int64_t* n,
                              int64_t* k) {
  return guarded("qmoe_bank_shape", [&]() -> Status {
    if (bank == nullptr || num_experts == nullptr || n == nullptr || k == nullptr)
      return invalid_argument("bank, num_experts, n and k must not be null");
    *num_experts = bank->bank.num_experts();
    *n = bank->bank.n();
    *k = bank->bank.k();
    return Status::ok();
  });
}

qmoe_status_t qmoe_ref_grouped_gemm(const qmoe_bank_t* bank, const DLTensor* x,
                                    const int32_t* expert_offsets, DLTensor* y) {
  return guarded("qmoe_ref_grouped_gemm", [&]() -> Status {
    if (bank == nullptr || expert_offsets == nullptr)
      return invalid_argument("bank and expert_offsets must not be null");
    const qmoe::ExpertBank& b = bank->bank;
    Checked xc, yc;
    QMOE_RETURN_IF_ERROR(
        check_tensor(x, "x", kDLCPU, bit(Elem::kBF16) | bit(Elem::kFP16), {kAnyDim, b.k()}, &xc));
    const int64_t m = xc.dims[0];
    if (m > INT32_MAX) return invalid_argument("x has more rows than int32 offsets can count");
    QMOE_RETURN_IF_ERROR(check_tensor(y, "y", kDLCPU, bit(Elem::kF64), {m, b.n()}, &yc));
    std::vector<double> result;
    QMOE_RETURN_IF_ERROR(qmoe::ref::grouped_gemm(
        b, act_dtype(xc.elem), static_cast<const uint16_t*>(xc.data), m, expert_offsets, &result));
    QMOE_RETURN_IF_ERROR(check_size(result.size(), yc));
    copy_out(result, yc);
    return Status::ok();
  });
}

// ---- CUDA ---------------------------------------------------------------------------------

qmoe_status_t qmoe_device_bank_upload(const qmoe_bank_t* bank, qmoe_device_bank_t** out) {
  return guarded("qmoe_device_bank_upload", [&]() -> Status {
    QMOE_RETURN_IF_ERROR(require_gpu());
    if (bank == nullptr || out == nullptr) return invalid_argument("bank and out must not be null");
    auto device_bank = std::make_unique<qmoe_device_bank>();
    QMOE_RETURN_IF_ERROR(qmoe::DeviceExpertBank::upload(bank->bank, &device_bank->bank));
    *out = device_bank.release();
    return Status::ok();
  });
}

void qmoe_device_bank_destroy(qmoe_device_bank_t* bank) {
  delete bank;  // DeviceExpertBank frees on its own device, whatever device is current
}

void qmoe_grouped_gemm_options_init(qmoe_grouped_gemm_options_t* options) {
  if (options == nullptr) return;
  *options = qmoe_grouped_gemm_options_t{};
  options->struct_size = sizeof(qmoe_grouped_gemm_options_t);
  options->kernel = QMOE_KERNEL_AUTO;
  options->decode_max_tokens = QMOE_DEFAULT_DECODE_MAX_TOKENS;
  options->integer_decode = QMOE_INTEGER_DECODE_AUTO;
  options->offsets_precede_previous_kernel = 0;
  options->epilogue = QMOE_EPILOGUE_NONE;
  options->tile_kernel = QMOE_TILE_KERNEL_AUTO;
}

qmoe_status_t qmoe_grouped_gemm_ex(const qmoe_device_bank_t* bank, const DLTensor* x,
                                   const DLTensor* expert_offsets, DLTensor* y,
                                   const qmoe_grouped_gemm_options_t* options, void* workspace,
                                   size_t* workspace_bytes, void* stream) {
  return guarded("qmoe_grouped_gemm_ex", [&]() -> Status {
    return grouped_gemm_call(bank, x, expert_offsets, y, options, workspace, workspace_bytes,
                             stream);
  });
}

qmoe_status_t qmoe_grouped_gemm(const qmoe_device_bank_t* bank, const DLTensor* x,
                                const DLTensor* expert_offsets, DLTensor* y, qmoe_kernel_t kernel,
                                int32_t decode_max_tokens, void* workspace, size_t* workspace_bytes,
                                void* stream) {
  return guarded("qmoe_grouped_gemm", [&]() -> Status {
    qmoe_grouped_gemm_options_t options;
    qmoe_grouped_gemm_options_init(&options);
    options.kernel = kernel;
    options.decode_max_tokens = decode_max_tokens;
    return grouped_gemm_call(bank, x, expert_offsets, y, &options, workspace, workspace_bytes,
                             stream);
  });
}

qmoe_status_t qmoe_prepare_workspace(void* workspace, size_t workspace_bytes, void* stream) {
  return guarded("qmoe_prepare_workspace", [&]() -> Status {
    QMOE_RETURN_IF_ERROR(require_gpu());
    return qmoe::prepare_workspace(workspace, workspace_bytes, static_cast<cudaStream_t>(stream));
  });
}
