// The C ABI's CUDA path (python_free_bindings/qmoe.h) on a device, driven as a C caller drives
// it: experts quantized with qmoe_quantize, a bank built and uploaded, DLPack tensors on
// kDLCUDA, the CUB-style workspace query and then the run on a caller's stream. The oracle is
// the C ABI's own CPU reference, qmoe_ref_grouped_gemm, on the same host bank.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "qmoe.h"
#include "qmoe/gpu.hpp"
#include "tests/cpu/c_abi_test_util.hpp"
#include "tests/cpu/test_util.hpp"
#include "tests/gpu/gpu_test_util.hpp"

namespace {

using qmoe::DType;
using qmoe::c_abi_test::kBF16;
using qmoe::c_abi_test::kF32;
using qmoe::c_abi_test::kF64;
using qmoe::c_abi_test::kFP16;
using qmoe::c_abi_test::kI32;
using qmoe::c_abi_test::last_error;
using qmoe::c_abi_test::tensor;
using qmoe::gpu_test::DeviceBuffer;
using qmoe::gpu_test::kMaxNmse;
using qmoe::gpu_test::kPoison;
using qmoe::gpu_test::Stream;

DLDataType act_type(DType act) {
  return act == DType::kBF16 ? kBF16 : kFP16;
}

const char* kernel_name(qmoe_kernel_t kernel) {
  switch (kernel) {
    case QMOE_KERNEL_DECODE:
      return "decode";
    case QMOE_KERNEL_PREFILL:
      return "prefill";
    default:
      return "auto16";
  }
}

/// One expert of a bank: its format and how qmoe_quantize makes it.
struct ExpertSpec {
  const char* format;
  qmoe_quant_method_t method;
};

/// A host bank made through the C ABI, its device copy, and one grouped GEMM problem on the
/// device: x [m_total, k], y [m_total, n], offsets [E + 1] with offsets[E] = m_used.
struct Problem {
  Problem() = default;
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;
  ~Problem() {
    qmoe_device_bank_destroy(device_bank);
    qmoe_bank_destroy(bank);
  }

  DLTensor x_t(DType act) { return tensor(x.as<void>(), x_shape, 2, act_type(act), device); }
  DLTensor y_t(DType act) { return tensor(y.as<void>(), y_shape, 2, act_type(act), device); }
  DLTensor offsets_t() { return tensor(offsets_dev.as<void>(), offsets_shape, 1, kI32, device); }

  int64_t n = 0, k = 0, m_used = 0, m_total = 0;
  std::vector<int32_t> offsets;
  qmoe_bank_t* bank = nullptr;
  qmoe_device_bank_t* device_bank = nullptr;
  DeviceBuffer x, y, offsets_dev;
  DLDevice device{kDLCUDA, 0};
  int64_t x_shape[2] = {0, 0}, y_shape[2] = {0, 0}, offsets_shape[1] = {0};
};

void setup(const std::vector<ExpertSpec>& experts, int64_t n, int64_t k,
           const std::vector<int32_t>& counts, int64_t extra_rows, uint32_t seed, Problem* p) {
  ASSERT_EQ(experts.size(), counts.size());
  p->n = n;
  p->k = k;
  CUDA_CHECK(cudaGetDevice(&p->device.device_id));
  std::vector<qmoe_packed_t*> packed;
  int64_t w_shape[2] = {n, k}, calib_shape[2] = {64, k};
  std::vector<float> calib = qmoe::test::gaussian(calib_shape[0] * k, 1.0f, seed + 100);
  const DLTensor ct = tensor(calib.data(), calib_shape, 2, kF32, DLDevice{kDLCPU, 0});
  for (size_t e = 0; e < experts.size(); ++e) {
    std::vector<float> w = qmoe::test::gaussian(n * k, 1.0f, seed + static_cast<uint32_t>(e));
    const DLTensor wt = tensor(w.data(), w_shape, 2, kF32, DLDevice{kDLCPU, 0});
    qmoe_packed_t* q = nullptr;
    const qmoe_status_t st =
        qmoe_quantize(&wt, experts[e].format, experts[e].method,
                      experts[e].method == QMOE_QUANT_GPTQ ? &ct : nullptr, &q);
    EXPECT_EQ(st, QMOE_STATUS_OK) << experts[e].format << ": " << last_error();
    if (st != QMOE_STATUS_OK) break;
    packed.push_back(q);
  }
  if (packed.size() == experts.size())
    EXPECT_EQ(qmoe_bank_create(packed.data(), static_cast<int64_t>(packed.size()), &p->bank),
              QMOE_STATUS_OK)
        << last_error();
  for (qmoe_packed_t* q : packed) qmoe_packed_destroy(q);  // the bank holds copies
  ASSERT_NE(p->bank, nullptr);
  ASSERT_EQ(qmoe_device_bank_upload(p->bank, &p->device_bank), QMOE_STATUS_OK) << last_error();

  p->offsets.assign(1, 0);
  for (int32_t c : counts) p->offsets.push_back(p->offsets.back() + c);
  p->m_used = p->offsets.back();
  p->m_total = p->m_used + extra_rows;
  p->x_shape[0] = p->y_shape[0] = p->m_total;
  p->x_shape[1] = k;
  p->y_shape[1] = n;
  p->offsets_shape[0] = static_cast<int64_t>(p->offsets.size());
  CUDA_CHECK(p->x.alloc(static_cast<size_t>(p->m_total * k) * 2));
  CUDA_CHECK(p->y.alloc(static_cast<size_t>(p->m_total * n) * 2));
  CUDA_CHECK(p->offsets_dev.alloc(p->offsets.size() * sizeof(int32_t)));
  CUDA_CHECK(cudaMemcpy(p->offsets_dev.as<void>(), p->offsets.data(), p->offsets_dev.bytes(),
                        cudaMemcpyHostToDevice));
}

/// Fresh random activations of type act in rows [0, m_used) of x on the device, poison in the
/// rows past them (never read); *x_host receives rows [0, m_used).
void upload_x(Problem* p, DType act, uint32_t seed, cudaStream_t stream,
              std::vector<uint16_t>* x_host) {
  *x_host = qmoe::test::random_activations(act, p->m_used * p->k, 2.0f, seed);
  std::vector<uint16_t> all(static_cast<size_t>(p->m_total * p->k), kPoison);
  std::copy(x_host->begin(), x_host->end(), all.begin());
  CUDA_CHECK(
      cudaMemcpyAsync(p->x.as<void>(), all.data(), p->x.bytes(), cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));  // `all` dies on return
}

/// The C ABI's CPU reference for rows [0, m_used): float64 [m_used, n].
void reference(Problem* p, DType act, std::vector<uint16_t>* x_host, std::vector<double>* ref) {
  ref->assign(static_cast<size_t>(p->m_used * p->n), 0.0);
  int64_t x_shape[2] = {p->m_used, p->k}, y_shape[2] = {p->m_used, p->n};
  const DLTensor xt = tensor(x_host->data(), x_shape, 2, act_type(act), DLDevice{kDLCPU, 0});
  DLTensor yt = tensor(ref->data(), y_shape, 2, kF64, DLDevice{kDLCPU, 0});
  ASSERT_EQ(qmoe_ref_grouped_gemm(p->bank, &xt, p->offsets.data(), &yt), QMOE_STATUS_OK)
      << last_error();
}

void read_y(const Problem& p, cudaStream_t stream, std::vector<uint16_t>* y) {
  y->assign(p.y.bytes() / 2, 0);
  CUDA_CHECK(
      cudaMemcpyAsync(y->data(), p.y.as<void>(), p.y.bytes(), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

/// Elements of y that are no longer the poison pattern.
int64_t unpoisoned(const std::vector<uint16_t>& y) {
  return std::count_if(y.begin(), y.end(), [](uint16_t v) { return v != kPoison; });
}

/// y against the reference: finite and within kMaxNmse per expert, poison after m_used.
void check_y(const Problem& p, DType act, const std::vector<double>& ref, cudaStream_t stream,
             const char* what) {
  std::vector<uint16_t> y;
  ASSERT_NO_FATAL_FAILURE(read_y(p, stream, &y));
  const qmoe::gpu_test::OutputError e = qmoe::gpu_test::output_error(act, y, ref, p.n, p.offsets);
  std::printf("  c_abi  %-8s %-5s %6lld %5lld %5lld  nmse %10.3e  %s\n", what,
              qmoe::dtype_name(act), static_cast<long long>(p.m_used), static_cast<long long>(p.n),
              static_cast<long long>(p.k), e.nmse, e.ok() ? "OK" : "FAIL");
  EXPECT_EQ(e.non_finite, 0) << what << ": elements not written or not finite";
  EXPECT_EQ(e.touched, 0) << what << ": rows past offsets[E] were written";
  EXPECT_LE(e.nmse, kMaxNmse) << what << ": worst expert " << e.worst_expert;
}

/// Poisons y, then the CUB-style pair on `stream`: the size query, a workspace of that size
/// (prepared), the run; by qmoe_grouped_gemm(kernel), or by qmoe_grouped_gemm_ex(ex) where ex
/// is given. Synchronises the stream before returning (the workspace is freed).
void run_gemm(Problem* p, DType act, qmoe_kernel_t kernel, cudaStream_t stream,
              const qmoe_grouped_gemm_options_t* ex = nullptr) {
  CUDA_CHECK(cudaMemsetAsync(p->y.as<void>(), 0xFF, p->y.bytes(), stream));
  const DLTensor x = p->x_t(act), offsets = p->offsets_t();
  DLTensor y = p->y_t(act);
  auto call = [&](void* workspace, size_t* bytes) {
    return ex != nullptr
               ? qmoe_grouped_gemm_ex(p->device_bank, &x, &offsets, &y, ex, workspace, bytes,
                                      stream)
               : qmoe_grouped_gemm(p->device_bank, &x, &offsets, &y, kernel,
                                   QMOE_DEFAULT_DECODE_MAX_TOKENS, workspace, bytes, stream);
  };
  size_t bytes = 0;
  ASSERT_EQ(call(nullptr, &bytes), QMOE_STATUS_OK) << last_error();
  DeviceBuffer workspace;
  CUDA_CHECK(workspace.alloc(bytes));
  ASSERT_EQ(qmoe_prepare_workspace(workspace.as<void>(), bytes, stream), QMOE_STATUS_OK)
      << last_error();
  ASSERT_EQ(call(workspace.as<void>(), &bytes), QMOE_STATUS_OK) << last_error();
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

// Seven formats; 0 tokens, decode-sized and > 16 tokens (both kernels under AUTO), n = 72 not
// a multiple of the 16-row tile.
const std::vector<ExpertSpec> kMixed = {
    {"int4:g128", QMOE_QUANT_RTN},   {"int3:g64:sym", QMOE_QUANT_RTN_MSE},
    {"int2:g32", QMOE_QUANT_GPTQ},   {"int8:pc", QMOE_QUANT_RTN},
    {"bf16", QMOE_QUANT_RTN},        {"fp16", QMOE_QUANT_RTN_MSE},
    {"int4:g32:sym", QMOE_QUANT_RTN}};
const std::vector<int32_t> kMixedCounts = {3, 0, 17, 1, 40, 16, 5};

TEST(CAbiGpu, GroupedGemmMatchesCpuReferenceForEveryKernelOnACallerStream) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  Problem p;
  ASSERT_NO_FATAL_FAILURE(setup(kMixed, 72, 256, kMixedCounts, /*extra_rows=*/5, 9001, &p));
  Stream stream;
  CUDA_CHECK(stream.create());
  uint32_t seed = 9100;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    // Fresh activations for every run: a kernel that skipped its work cannot pass on the
    // previous run's y.
    for (qmoe_kernel_t kernel : {QMOE_KERNEL_AUTO, QMOE_KERNEL_DECODE, QMOE_KERNEL_PREFILL}) {
      SCOPED_TRACE(std::string(qmoe::dtype_name(act)) + " " + kernel_name(kernel));
      std::vector<uint16_t> x;
      ASSERT_NO_FATAL_FAILURE(upload_x(&p, act, ++seed, stream.get(), &x));
      std::vector<double> ref;
      ASSERT_NO_FATAL_FAILURE(reference(&p, act, &x, &ref));
      ASSERT_NO_FATAL_FAILURE(run_gemm(&p, act, kernel, stream.get()));
      ASSERT_NO_FATAL_FAILURE(check_y(p, act, ref, stream.get(), kernel_name(kernel)));
    }
    // qmoe_grouped_gemm_ex with the options qmoe_grouped_gemm lacks: the integer decode forced
    // on and off, a per-expert threshold, the early-start promise (true here: the offsets were
    // uploaded before any kernel of this stream ran).
    qmoe_grouped_gemm_options_t decode_imma, auto16;
    qmoe_grouped_gemm_options_init(&decode_imma);
    decode_imma.kernel = QMOE_KERNEL_DECODE;
    decode_imma.integer_decode = QMOE_INTEGER_DECODE_ON;
    decode_imma.offsets_precede_previous_kernel = 1;
    qmoe_grouped_gemm_options_init(&auto16);
    auto16.decode_max_tokens = 16;
    auto16.integer_decode = QMOE_INTEGER_DECODE_OFF;
    // A caller compiled against the 0.3.0 header: its struct ends before `epilogue`, whose bytes
    // here must not be read (garbage stands in for whatever follows the caller's struct).
    qmoe_grouped_gemm_options_t v030;
    qmoe_grouped_gemm_options_init(&v030);
    v030.struct_size = offsetof(qmoe_grouped_gemm_options_t, epilogue);
    v030.kernel = QMOE_KERNEL_DECODE;
    v030.epilogue = static_cast<qmoe_epilogue_t>(0x5A5A5A5A);
    // The 0.4.0 header's struct ends before `tile_kernel`.
    qmoe_grouped_gemm_options_t v040;
    qmoe_grouped_gemm_options_init(&v040);
    v040.struct_size = offsetof(qmoe_grouped_gemm_options_t, tile_kernel);
    v040.kernel = QMOE_KERNEL_PREFILL;
    v040.tile_kernel = static_cast<qmoe_tile_kernel_t>(0x5A5A5A5A);
    // Every expert on the mma.sync tile kernel (the sm_80 path, on any device).
    qmoe_grouped_gemm_options_t mma;
    qmoe_grouped_gemm_options_init(&mma);
    mma.kernel = QMOE_KERNEL_PREFILL;
    mma.tile_kernel = QMOE_TILE_KERNEL_MMA_SYNC;
    for (const auto* options : {&decode_imma, &auto16, &v030, &v040, &mma}) {
      const char* what = options == &auto16 ? "ex:auto16"
                         : options == &v030 ? "ex:v030"
                         : options == &v040 ? "ex:v040"
                         : options == &mma  ? "ex:mma"
                                            : "ex:imma";
      SCOPED_TRACE(std::string(qmoe::dtype_name(act)) + " " + what);
      std::vector<uint16_t> x;
      ASSERT_NO_FATAL_FAILURE(upload_x(&p, act, ++seed, stream.get(), &x));
      std::vector<double> ref;
      ASSERT_NO_FATAL_FAILURE(reference(&p, act, &x, &ref));
      ASSERT_NO_FATAL_FAILURE(run_gemm(&p, act, QMOE_KERNEL_AUTO, stream.get(), options));
      ASSERT_NO_FATAL_FAILURE(check_y(p, act, ref, stream.get(), what));
    }
  }
}

TEST(CAbiGpu, GatedSiluEpilogueMatchesCpuReference) {
  // QMOE_EPILOGUE_SILU_MUL_INTERLEAVED: y [m, n / 2] against the C ABI's reference product
  // through ref::silu_and_mul_interleaved; the decode kernel alone (fused) and a per-expert
  // threshold (decode and tile launches: the product goes through the workspace).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  Problem p;
  ASSERT_NO_FATAL_FAILURE(setup(kMixed, 64, 256, kMixedCounts, /*extra_rows=*/5, 9401, &p));
  const DType act = DType::kFP16;  // random data: fp16 (test_gpu_kernels.cu check_gated)
  std::vector<uint16_t> x;
  ASSERT_NO_FATAL_FAILURE(upload_x(&p, act, 9402, nullptr, &x));
  std::vector<double> gate_up;
  ASSERT_NO_FATAL_FAILURE(reference(&p, act, &x, &gate_up));
  // The decode kernel alone fuses the activation; with the threshold of 16 the experts of 17 and
  // 40 tokens run the tile kernel, so the whole product goes through the workspace (rounded).
  ASSERT_GT(*std::max_element(kMixedCounts.begin(), kMixedCounts.end()), 16);
  const std::vector<double> fused = qmoe::gpu_test::gated_values(gate_up, p.m_used, 64, act, false);
  const std::vector<double> via_workspace =
      qmoe::gpu_test::gated_values(gate_up, p.m_used, 64, act, true);
  // From here y is [m, 32]: check_y and the y tensor take the new width.
  p.n = 32;
  p.y_shape[1] = 32;
  for (const qmoe_kernel_t kernel : {QMOE_KERNEL_DECODE, QMOE_KERNEL_AUTO}) {
    qmoe_grouped_gemm_options_t options;
    qmoe_grouped_gemm_options_init(&options);
    options.kernel = kernel;
    options.decode_max_tokens = kernel == QMOE_KERNEL_AUTO ? 16 : 0;
    options.epilogue = QMOE_EPILOGUE_SILU_MUL_INTERLEAVED;
    ASSERT_NO_FATAL_FAILURE(run_gemm(&p, act, kernel, nullptr, &options));
    ASSERT_NO_FATAL_FAILURE(check_y(p, act, kernel == QMOE_KERNEL_DECODE ? fused : via_workspace,
                                    nullptr, kernel_name(kernel)));
  }
}

TEST(CAbiGpu, GroupedGemmEnqueuesOnlyOnTheCallersStreamAndIsCapturable) {
  // Captured on the caller's stream, the call must leave kernel nodes in the graph and run
  // nothing (y keeps its poison); a launch on any other stream, an allocation or a
  // synchronisation would invalidate the global-mode capture.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  Problem p;
  ASSERT_NO_FATAL_FAILURE(setup(kMixed, 72, 256, kMixedCounts, /*extra_rows=*/5, 9201, &p));
  Stream stream;
  CUDA_CHECK(stream.create());
  const DType act = DType::kFP16;
  std::vector<uint16_t> x;
  ASSERT_NO_FATAL_FAILURE(upload_x(&p, act, 9202, stream.get(), &x));
  std::vector<double> ref;
  ASSERT_NO_FATAL_FAILURE(reference(&p, act, &x, &ref));
  // One plain run first: the launchers' one-time per-device setup happens outside the capture.
  ASSERT_NO_FATAL_FAILURE(run_gemm(&p, act, QMOE_KERNEL_AUTO, stream.get()));

  CUDA_CHECK(cudaMemsetAsync(p.y.as<void>(), 0xFF, p.y.bytes(), stream.get()));
  const DLTensor xt = p.x_t(act), ot = p.offsets_t();
  DLTensor yt = p.y_t(act);
  size_t bytes = 0;
  ASSERT_EQ(qmoe_grouped_gemm(p.device_bank, &xt, &ot, &yt, QMOE_KERNEL_AUTO,
                              QMOE_DEFAULT_DECODE_MAX_TOKENS, nullptr, &bytes, stream.get()),
            QMOE_STATUS_OK)
      << last_error();
  DeviceBuffer workspace;
  CUDA_CHECK(workspace.alloc(bytes));
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));

  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  const qmoe_status_t st =
      qmoe_grouped_gemm(p.device_bank, &xt, &ot, &yt, QMOE_KERNEL_AUTO,
                        QMOE_DEFAULT_DECODE_MAX_TOKENS, workspace.as<void>(), &bytes, stream.get());
  const std::string message = st == QMOE_STATUS_OK ? "" : last_error();
  CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_EQ(st, QMOE_STATUS_OK) << message;
  size_t nodes = 0;
  CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &nodes));
  EXPECT_GT(nodes, 0u) << "nothing was enqueued on the caller's stream";

  std::vector<uint16_t> y;
  ASSERT_NO_FATAL_FAILURE(read_y(p, stream.get(), &y));
  EXPECT_EQ(unpoisoned(y), 0) << "the captured call ran instead of being recorded";

  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  ASSERT_NO_FATAL_FAILURE(check_y(p, act, ref, stream.get(), "graph"));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
}

// ---- bad arguments --------------------------------------------------------------------------

/// Every argument of one qmoe_grouped_gemm call; a bad case edits one of them.
struct Call {
  const qmoe_device_bank_t* bank;
  DLTensor x, offsets, y;
  qmoe_kernel_t kernel;
  int32_t decode_max_tokens;
  void* workspace;
  size_t workspace_bytes;

  qmoe_status_t run() {
    return qmoe_grouped_gemm(bank, &x, &offsets, &y, kernel, decode_max_tokens, workspace,
                             &workspace_bytes, nullptr);
  }
};

struct BadCase {
  const char* what;
  /// The size query (workspace NULL) makes the same argument checks and fails too.
  bool query_fails;
  std::function<void(Call&)> edit;
};

// Host buffers and shapes the cases point at; static so that they outlive the calls.
constexpr int64_t kN = 40, kK = 256, kM = 8;
int64_t g_shape_x_k[2] = {kM, kK + 32};
int64_t g_shape_y_n[2] = {kM, kN + 16};
int64_t g_shape_y_rows[2] = {kM - 1, kN};
int64_t g_shape_offsets_e[1] = {2};  // E entries instead of E + 1
int64_t g_strides_y[2] = {1, kM};    // column-major y
std::vector<uint16_t> g_host_x(kM* kK, 0x3F80);
std::vector<uint16_t> g_host_y(kM* kN, kPoison);
std::vector<int32_t> g_host_offsets = {0, 3, kM};

std::vector<BadCase> bad_cases() {
  const DLDevice host{kDLCPU, 0};
  return {
      {"null bank", true, [](Call& c) { c.bank = nullptr; }},
      {"x on the host (kDLCPU)", true,
       [=](Call& c) {
         c.x.data = g_host_x.data();
         c.x.device = host;
       }},
      {"y on the host (kDLCPU)", true,
       [=](Call& c) {
         c.y.data = g_host_y.data();
         c.y.device = host;
       }},
      {"expert_offsets on the host (kDLCPU)", true,
       [=](Call& c) {
         c.offsets.data = g_host_offsets.data();
         c.offsets.device = host;
       }},
      {"device memory marked kDLCUDAHost", true,
       [](Call& c) { c.x.device.device_type = kDLCUDAHost; }},
      {"y float16, x bfloat16", true, [](Call& c) { c.y.dtype = kFP16; }},
      {"x and y float32", true,
       [](Call& c) {
         c.x.dtype = kF32;
         c.y.dtype = kF32;
       }},
      {"int64 expert_offsets", true,
       [](Call& c) {
         c.offsets.dtype = DLDataType{kDLInt, 64, 1};
       }},
      {"x of another k", true, [](Call& c) { c.x.shape = g_shape_x_k; }},
      {"y of another n", true, [](Call& c) { c.y.shape = g_shape_y_n; }},
      {"y with a row fewer than x", true, [](Call& c) { c.y.shape = g_shape_y_rows; }},
      {"expert_offsets with E entries", true, [](Call& c) { c.offsets.shape = g_shape_offsets_e; }},
      {"1-d x", true, [](Call& c) { c.x.ndim = 1; }},
      {"column-major y", true, [](Call& c) { c.y.strides = g_strides_y; }},
      {"x on another device id", true, [](Call& c) { c.x.device.device_id += 1; }},
      {"all tensors on a device other than the current one", true,
       [](Call& c) {
         c.x.device.device_id += 1;
         c.y.device.device_id += 1;
         c.offsets.device.device_id += 1;
       }},
      {"unknown kernel", true, [](Call& c) { c.kernel = static_cast<qmoe_kernel_t>(3); }},
      {"decode_max_tokens -1", true, [](Call& c) { c.decode_max_tokens = -1; }},
      {"decode_max_tokens 65", true, [](Call& c) { c.decode_max_tokens = 65; }},
      // Element-aligned but not 16-byte aligned: the kernels' vector loads need 16.
      {"x at a 2-byte offset", false, [](Call& c) { c.x.byte_offset = 2; }},
      {"workspace a byte too small", false, [](Call& c) { c.workspace_bytes -= 1; }},
  };
}

TEST(CAbiGpu, BadArgumentsGiveTheirStatusAMessageAndWriteNothing) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  Problem p;
  ASSERT_NO_FATAL_FAILURE(setup({{"int4:g32", QMOE_QUANT_RTN}, {"bf16", QMOE_QUANT_RTN}}, kN, kK,
                                {3, kM - 3}, /*extra_rows=*/0, 9301, &p));
  const DType act = DType::kBF16;
  std::vector<uint16_t> x;
  ASSERT_NO_FATAL_FAILURE(upload_x(&p, act, 9302, nullptr, &x));
  CUDA_CHECK(cudaMemset(p.y.as<void>(), 0xFF, p.y.bytes()));
  CUDA_CHECK(cudaDeviceSynchronize());

  Call good{p.device_bank,    p.x_t(act),
            p.offsets_t(),    p.y_t(act),
            QMOE_KERNEL_AUTO, QMOE_DEFAULT_DECODE_MAX_TOKENS,
            nullptr,          0};
  ASSERT_EQ(good.run(), QMOE_STATUS_OK) << last_error();  // the size query
  DeviceBuffer workspace;
  CUDA_CHECK(workspace.alloc(good.workspace_bytes));
  good.workspace = workspace.as<void>();
  const size_t needed = good.workspace_bytes;
  EXPECT_EQ(qmoe_prepare_workspace(nullptr, needed, nullptr), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(last_error().rfind("qmoe_prepare_workspace: ", 0), 0u) << last_error();
  EXPECT_EQ(qmoe_prepare_workspace(good.workspace, 255, nullptr), QMOE_STATUS_INVALID_ARGUMENT);

  // What no rejected call may do: write y (on the device, or the host array one bad case uses).
  auto expect_y_unwritten = [&p]() {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> y;
    ASSERT_NO_FATAL_FAILURE(read_y(p, nullptr, &y));
    EXPECT_EQ(unpoisoned(y) + unpoisoned(g_host_y), 0) << "a rejected call wrote y";
  };
  const std::string marker = "previous-error-marker";
  constexpr size_t kSentinelBytes = 987654321;
  for (const BadCase& bad : bad_cases()) {
    SCOPED_TRACE(bad.what);
    Call c = good;
    bad.edit(c);
    const size_t given = c.workspace_bytes;
    ASSERT_NE(qmoe_format_canonical(marker.c_str(), nullptr, 0, nullptr), QMOE_STATUS_OK);
    EXPECT_EQ(c.run(), QMOE_STATUS_INVALID_ARGUMENT);
    const std::string message = last_error();
    EXPECT_EQ(message.rfind("qmoe_grouped_gemm: ", 0), 0u) << message;
    EXPECT_GT(message.size(), std::string("qmoe_grouped_gemm: ").size() + 5) << message;
    EXPECT_EQ(message.find(marker), std::string::npos) << message;
    EXPECT_EQ(c.workspace_bytes, given) << "the run changed *workspace_bytes";

    c.workspace = nullptr;
    c.workspace_bytes = kSentinelBytes;
    if (bad.query_fails) {
      EXPECT_EQ(c.run(), QMOE_STATUS_INVALID_ARGUMENT) << "size query";
      EXPECT_EQ(c.workspace_bytes, kSentinelBytes) << "a failing size query wrote its output";
    } else {
      EXPECT_EQ(c.run(), QMOE_STATUS_OK) << "size query: " << last_error();
      EXPECT_EQ(c.workspace_bytes, needed);
    }

    ASSERT_NO_FATAL_FAILURE(expect_y_unwritten());
  }

  {
    // An empty batch as frameworks hand it over (shape [0, k], data NULL) enqueues nothing.
    Call c = good;
    int64_t x_empty[2] = {0, kK}, y_empty[2] = {0, kN};
    c.x.data = nullptr;
    c.x.shape = x_empty;
    c.y.data = nullptr;
    c.y.shape = y_empty;
    EXPECT_EQ(c.run(), QMOE_STATUS_OK) << last_error();
    ASSERT_NO_FATAL_FAILURE(expect_y_unwritten());
  }

  // qmoe_grouped_gemm_ex's own options: each bad one is rejected, by the size query too.
  {
    qmoe_grouped_gemm_options_t defaults;
    qmoe_grouped_gemm_options_init(&defaults);
    const std::vector<std::pair<const char*, std::function<void(qmoe_grouped_gemm_options_t&)>>>
        bad_options = {
            {"struct_size", [](qmoe_grouped_gemm_options_t& o) { o.struct_size += 4; }},
            {"struct_size", [](qmoe_grouped_gemm_options_t& o) { o.struct_size -= 1; }},
            {"epilogue",
             [](qmoe_grouped_gemm_options_t& o) { o.epilogue = static_cast<qmoe_epilogue_t>(2); }},
            // n = 40: the gated epilogue needs gate and up rows in 16-row strips.
            {"epilogue",
             [](qmoe_grouped_gemm_options_t& o) {
               o.epilogue = QMOE_EPILOGUE_SILU_MUL_INTERLEAVED;
             }},
            {"integer_decode",
             [](qmoe_grouped_gemm_options_t& o) {
               o.integer_decode = static_cast<qmoe_integer_decode_t>(3);
             }},
            {"tile_kernel",
             [](qmoe_grouped_gemm_options_t& o) {
               o.tile_kernel = static_cast<qmoe_tile_kernel_t>(3);
             }},
            {"offsets_precede_previous_kernel",
             [](qmoe_grouped_gemm_options_t& o) { o.offsets_precede_previous_kernel = 2; }},
            {"kernel",
             [](qmoe_grouped_gemm_options_t& o) { o.kernel = static_cast<qmoe_kernel_t>(9); }},
            {"decode_max_tokens", [](qmoe_grouped_gemm_options_t& o) { o.decode_max_tokens = 65; }},
        };
    for (const auto& [what, edit] : bad_options) {
      SCOPED_TRACE(what);
      qmoe_grouped_gemm_options_t o = defaults;
      edit(o);
      for (void* ws : {good.workspace, static_cast<void*>(nullptr)}) {
        size_t bytes = ws != nullptr ? needed : kSentinelBytes;
        const size_t given = bytes;
        EXPECT_EQ(qmoe_grouped_gemm_ex(good.bank, &good.x, &good.offsets, &good.y, &o, ws, &bytes,
                                       nullptr),
                  QMOE_STATUS_INVALID_ARGUMENT);
        EXPECT_EQ(last_error().rfind("qmoe_grouped_gemm_ex: ", 0), 0u) << last_error();
        EXPECT_NE(last_error().find(what), std::string::npos) << last_error();
        EXPECT_EQ(bytes, given);
      }
    }
    ASSERT_NO_FATAL_FAILURE(expect_y_unwritten());
  }

  // The upload reports its null arguments and leaves *out alone.
  char sentinel = 0;
  auto* out = reinterpret_cast<qmoe_device_bank_t*>(&sentinel);
  EXPECT_EQ(qmoe_device_bank_upload(nullptr, &out), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(out, reinterpret_cast<qmoe_device_bank_t*>(&sentinel));
  EXPECT_EQ(last_error().rfind("qmoe_device_bank_upload: ", 0), 0u) << last_error();
  EXPECT_EQ(qmoe_device_bank_upload(p.bank, nullptr), QMOE_STATUS_INVALID_ARGUMENT);

  // The unedited call runs, on the default stream (NULL): the cases above are not vacuous.
  std::vector<double> ref;
  ASSERT_NO_FATAL_FAILURE(reference(&p, act, &x, &ref));
  ASSERT_EQ(good.run(), QMOE_STATUS_OK) << last_error();
  CUDA_CHECK(cudaDeviceSynchronize());
  ASSERT_NO_FATAL_FAILURE(check_y(p, act, ref, nullptr, "default"));
}

/// Sets the current device for a scope, and the previous one back at its end.
class CurrentDevice {
 public:
  explicit CurrentDevice(int device) {
    EXPECT_EQ(cudaGetDevice(&previous_), cudaSuccess);
    EXPECT_EQ(cudaSetDevice(device), cudaSuccess);
  }
  ~CurrentDevice() { EXPECT_EQ(cudaSetDevice(previous_), cudaSuccess); }
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;

 private:
  int previous_ = 0;
};

/// Fresh activations, the reference, a run under QMOE_KERNEL_AUTO on the default stream, the
/// check.
void run_and_check(Problem* p, DType act, uint32_t seed, const char* what) {
  std::vector<uint16_t> x;
  ASSERT_NO_FATAL_FAILURE(upload_x(p, act, seed, nullptr, &x));
  std::vector<double> ref;
  ASSERT_NO_FATAL_FAILURE(reference(p, act, &x, &ref));
  ASSERT_NO_FATAL_FAILURE(run_gemm(p, act, QMOE_KERNEL_AUTO, nullptr));
  ASSERT_NO_FATAL_FAILURE(check_y(*p, act, ref, nullptr, what));
}

void free_bytes_on(int device, size_t* free) {
  CurrentDevice scope(device);
  size_t total = 0;
  CUDA_CHECK(cudaMemGetInfo(free, &total));
}

// A device bank's memory is on the device current at its upload, and its pointers mean nothing
// to a kernel on another device: a call with another device current is refused before anything
// is enqueued (it faulted before), while a copy uploaded to that device runs there. A bank is
// freed from whichever device is current, on its own device, and the current device stays.
TEST(CAbiGpu, ABankRunsOnlyOnTheDeviceItWasUploadedTo) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (count < 2) GTEST_SKIP() << "needs two CUDA devices, found " << count;
  int home = 0;
  CUDA_CHECK(cudaGetDevice(&home));
  const int other = home == 0 ? 1 : 0;
  const DType act = DType::kBF16;
  const std::vector<ExpertSpec> experts = {{"int4:g32", QMOE_QUANT_RTN},
                                           {"int8:pc", QMOE_QUANT_RTN}};
  const std::vector<int32_t> counts = {3, kM - 3};

  Problem at_home;
  ASSERT_NO_FATAL_FAILURE(setup(experts, kN, kK, counts, /*extra_rows=*/0, 9401, &at_home));
  // 3 int8 experts of 1024 x 4096: 12 MiB on `home`, freed below with `other` current.
  Problem large;
  ASSERT_NO_FATAL_FAILURE(
      setup({{"int8:pc", QMOE_QUANT_RTN}, {"int8:pc", QMOE_QUANT_RTN}, {"int8:pc", QMOE_QUANT_RTN}},
            1024, 4096, {1, 1, 1}, /*extra_rows=*/0, 9402, &large));
  {
    CurrentDevice scope(other);
    Problem away;
    ASSERT_NO_FATAL_FAILURE(setup(experts, kN, kK, counts, /*extra_rows=*/0, 9401, &away));
    ASSERT_EQ(away.device.device_id, other);
    ASSERT_NO_FATAL_FAILURE(run_and_check(&away, act, 9403, "other"));

    // at_home's bank with the tensors of `other`, which is current: refused by the size query
    // and by the run, y untouched.
    CUDA_CHECK(cudaMemset(away.y.as<void>(), 0xFF, away.y.bytes()));
    CUDA_CHECK(cudaDeviceSynchronize());
    const DLTensor xt = away.x_t(act), ot = away.offsets_t();
    DLTensor yt = away.y_t(act);
    size_t bytes = 0;
    ASSERT_EQ(qmoe_grouped_gemm(away.device_bank, &xt, &ot, &yt, QMOE_KERNEL_AUTO,
                                QMOE_DEFAULT_DECODE_MAX_TOKENS, nullptr, &bytes, nullptr),
              QMOE_STATUS_OK)
        << last_error();
    DeviceBuffer workspace;
    CUDA_CHECK(workspace.alloc(bytes));
    ASSERT_EQ(qmoe_prepare_workspace(workspace.as<void>(), bytes, nullptr), QMOE_STATUS_OK)
        << last_error();
    const std::string expected = "the bank was uploaded to device " + std::to_string(home) +
                                 ", the current device is " + std::to_string(other);
    for (void* ws : {static_cast<void*>(nullptr), workspace.as<void>()}) {
      size_t given = ws != nullptr ? bytes : 0;
      EXPECT_EQ(qmoe_grouped_gemm(at_home.device_bank, &xt, &ot, &yt, QMOE_KERNEL_AUTO,
                                  QMOE_DEFAULT_DECODE_MAX_TOKENS, ws, &given, nullptr),
                QMOE_STATUS_INVALID_ARGUMENT);
      EXPECT_NE(last_error().find(expected), std::string::npos) << last_error();
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> y;
    ASSERT_NO_FATAL_FAILURE(read_y(away, nullptr, &y));
    EXPECT_EQ(unpoisoned(y), 0) << "a refused call wrote y";

    size_t free_before = 0, free_after = 0;
    ASSERT_NO_FATAL_FAILURE(free_bytes_on(home, &free_before));
    qmoe_device_bank_destroy(large.device_bank);
    large.device_bank = nullptr;
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    int current = -1;
    CUDA_CHECK(cudaGetDevice(&current));
    EXPECT_EQ(current, other) << "destroy left another device current";
    ASSERT_NO_FATAL_FAILURE(free_bytes_on(home, &free_after));
    EXPECT_GE(free_after, free_before + (size_t{8} << 20))
        << "the bank's memory on device " << home << " was not freed";
  }
  // at_home's bank, uploaded with `home` current, still runs there.
  ASSERT_NO_FATAL_FAILURE(run_and_check(&at_home, act, 9404, "home"));
}

}  // namespace
