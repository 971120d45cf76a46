// GPU kernels against the CPU reference (qmoe::ref): dequantization bit for bit, grouped GEMM
// by normalised MSE against float64, graph capture, argument checks. Every case prints one
// line of a table (op, format, dtype, kernel, m, n, k, error) like llama.cpp's
// test-backend-ops. Cases named *Small* form the quick subset for compute-sanitizer.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda/kernels/grouped_gemv.cuh"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/gpu.hpp"
#include "qmoe/numeric.hpp"
#include "qmoe/packed.hpp"
#include "tests/gpu/decode_problem.hpp"
#include "tests/gpu/gpu_test_util.hpp"
#include "tests/gpu/tail_cases.hpp"
#include "tests/gpu/tile256_cases.hpp"

namespace {

using qmoe::DType;
using qmoe::FormatKind;
using qmoe::FormatSpec;
using qmoe::KernelChoice;

using qmoe::gpu_test::DeviceBuffer;
using qmoe::gpu_test::kMaxNmse;
using qmoe::gpu_test::kPoison;
using qmoe::gpu_test::Stream;

FormatSpec parse(const std::string& s) {
  FormatSpec f;
  const qmoe::Status st = FormatSpec::parse(s, &f);
  EXPECT_TRUE(st.is_ok()) << s << ": " << st.to_string();
  return f;
}

/// One expert format per name, in order.
std::vector<FormatSpec> parse_all(const std::vector<const char*>& names) {
  std::vector<FormatSpec> f;
  for (const char* s : names) f.push_back(parse(s));
  return f;
}

struct KernelRun {
  KernelChoice kernel;
  int decode_max_tokens;
  qmoe::IntegerDecode integer_decode = qmoe::IntegerDecode::kAuto;
  qmoe::TileKernel tile_kernel = qmoe::TileKernel::kAuto;
};

const char* kernel_name(const KernelRun& run) {
  static thread_local char buf[16];
  if (run.kernel == KernelChoice::kDecode)
    return run.integer_decode == qmoe::IntegerDecode::kOn ? "decode-i8" : "decode";
  if (run.kernel == KernelChoice::kPrefill) {
    if (run.tile_kernel == qmoe::TileKernel::kMmaSync) return "pf-mma";
    return run.tile_kernel == qmoe::TileKernel::kWgmma ? "pf-wgmma" : "prefill";
  }
  if (run.decode_max_tokens == 0) return "auto";  // one kernel per call, chosen from the mean
  std::snprintf(buf, sizeof(buf), "auto%d", run.decode_max_tokens);
  return buf;
}

void print_header() {
  std::printf("  %-8s %-14s %-5s %-8s %6s %5s %5s %12s  %s\n", "op", "format", "dtype", "kernel",
              "m", "n", "k", "error", "result");
}

void print_row(const char* op, const std::string& format, DType act, const char* kernel, int64_t m,
               int64_t n, int64_t k, double error, bool ok) {
  std::printf("  %-8s %-14s %-5s %-8s %6lld %5lld %5lld %12.3e  %s\n", op, format.c_str(),
              qmoe::dtype_name(act), kernel, static_cast<long long>(m), static_cast<long long>(n),
              static_cast<long long>(k), error, ok ? "OK" : "FAIL");
}

uint16_t to_act(DType act, float v) {
  return act == DType::kBF16 ? qmoe::float_to_bf16(v) : qmoe::float_to_fp16(v);
}

/// How random the stored values are.
enum class Values {
  kGemm,  ///< moderate scales (|s| ~ 2^-6, both signs), dense ~ N(0, 0.25): well-scaled GEMMs
  kWide,  ///< every finite fp16 scale / 16-bit dense pattern: zeros, subnormals, overflow
  /// scales +-2^-8, dense weights (-8..8) / 256: every weight is a multiple of 2^-8 exact in bf16
  /// and fp16, so with x in {-1, 0, 1} every kernel's fp32 sums are exact (K <= 256)
  kExact,
};

/// A random finite 16-bit float pattern of type t (any sign, exponent, mantissa).
uint16_t random_finite_bits(DType t, std::mt19937& rng) {
  const uint16_t max_exp_field = t == DType::kBF16 ? 0x7F80 : 0x7C00;
  for (;;) {
    const auto bits = static_cast<uint16_t>(rng() & 0xFFFFu);
    if ((bits & max_exp_field) != max_exp_field) return bits;
  }
}

qmoe::LogicalMatrix random_logical(const FormatSpec& f, int64_t n, int64_t k, Values values,
                                   std::mt19937& rng) {
  qmoe::LogicalMatrix m;
  m.format = f;
  m.n = n;
  m.k = k;
  m.codes.resize(static_cast<size_t>(n * k));
  std::normal_distribution<float> normal(0.f, 0.5f);
  if (f.kind == FormatKind::kDense) {
    for (uint16_t& c : m.codes)
      c = values == Values::kWide ? random_finite_bits(f.dense_dtype, rng)
          : values == Values::kExact
              ? to_act(f.dense_dtype, static_cast<float>(static_cast<int>(rng() % 17) - 8) / 256.f)
              : to_act(f.dense_dtype, normal(rng));
    return m;
  }
  const uint32_t levels = 1u << f.bits;
  for (uint16_t& c : m.codes) c = static_cast<uint16_t>(rng() % levels);
  // Vector formats: one code a vector, at its first column 16u + 2t (docs/formats.md §1).
  if (f.kind == FormatKind::kVector)
    for (int64_t i = 0; i < n * k; ++i)
      if (i % k % 16 >= 8 || i % 2 == 1) m.codes[static_cast<size_t>(i)] = 0;
  // Two-value trellis formats: one chunk a step, at its even position.
  if (f.kind == FormatKind::kTrellis && f.values_per_state == 2)
    for (int64_t i = 1; i < n * k; i += 2) m.codes[static_cast<size_t>(i)] = 0;
  // LUT formats: no groups, one table of 2^bits entries a row, in the scales (docs/formats.md §1).
  const int64_t groups = f.kind == FormatKind::kLut ? 0 : k / f.group_len(k);
  m.scales.resize(static_cast<size_t>(n * (groups + f.lut_entries())));
  std::uniform_real_distribution<float> mag(0.5f, 1.5f);
  for (uint16_t& s : m.scales) {
    if (values == Values::kWide) {
      s = random_finite_bits(DType::kFP16, rng);
    } else if (values == Values::kExact) {
      s = qmoe::float_to_fp16((rng() & 1u) != 0 ? -1.f / 256.f : 1.f / 256.f);
    } else {
      // Trellis weights are u s with u = H v of rms ~1700 (docs/formats.md §1): scales 2^10
      // smaller keep them near the other formats' (rms ~1.6), so that fp16 outputs stay finite
      // (a gated product, or a call whose x is a previous call's y). They are fp16 subnormals.
      const float sign = (rng() & 1u) != 0 ? -1.f : 1.f;
      const float unit = f.kind == FormatKind::kTrellis ? 1.f / 65536.f : 1.f / 64.f;
      s = qmoe::float_to_fp16(sign * mag(rng) * unit);
    }
  }
  if (f.kind == FormatKind::kInt && !f.symmetric) {
    m.zeros.resize(static_cast<size_t>(n * groups));
    for (uint8_t& z : m.zeros) z = static_cast<uint8_t>(rng() % levels);
  }
  return m;
}

void make_bank(const std::vector<FormatSpec>& formats, int64_t n, int64_t k, Values values,
               std::mt19937& rng, qmoe::ExpertBank* bank) {
  std::vector<qmoe::PackedMatrix> experts(formats.size());
  for (size_t e = 0; e < formats.size(); ++e) {
    const qmoe::Status st = qmoe::pack(random_logical(formats[e], n, k, values, rng), &experts[e]);
    ASSERT_TRUE(st.is_ok()) << formats[e].to_string() << " [" << n << ", " << k
                            << "]: " << st.to_string();
  }
  const qmoe::Status st = qmoe::ExpertBank::create(std::move(experts), bank);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
}

std::string label_of(const std::vector<FormatSpec>& formats) {
  for (const FormatSpec& f : formats)
    if (f != formats[0]) return "mixed:" + std::to_string(formats.size());
  return formats[0].to_string();
}

// ---- Dequantization ------------------------------------------------------------------------

/// dequantize_bank (output poisoned first) equals ref::dequantize_to bit for bit, for both
/// activation types, on a bank of two random experts of format f.
void check_dequant(const FormatSpec& f, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  qmoe::ExpertBank bank;
  ASSERT_NO_FATAL_FAILURE(make_bank({f, f}, n, k, Values::kWide, rng, &bank));
  qmoe::DeviceExpertBank dbank;
  const qmoe::Status up = qmoe::DeviceExpertBank::upload(bank, &dbank);
  ASSERT_TRUE(up.is_ok()) << up.to_string();
  const int64_t per_expert = n * k;
  const int64_t count = bank.num_experts() * per_expert;
  DeviceBuffer w;
  CUDA_CHECK(w.alloc(static_cast<size_t>(count) * 2));
  for (DType act : {DType::kBF16, DType::kFP16}) {
    CUDA_CHECK(cudaMemset(w.as<void>(), 0xFF, w.bytes()));
    const qmoe::Status st = qmoe::dequantize_bank(dbank.view(), act, w.as<void>(), nullptr);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint16_t> got(static_cast<size_t>(count));
    CUDA_CHECK(cudaMemcpy(got.data(), w.as<void>(), w.bytes(), cudaMemcpyDeviceToHost));
    int64_t mismatches = 0;
    std::string first;
    for (int64_t e = 0; e < bank.num_experts(); ++e) {
      std::vector<uint16_t> want;
      const qmoe::Status rs = qmoe::ref::dequantize_to(bank.expert(e), act, &want);
      ASSERT_TRUE(rs.is_ok()) << rs.to_string();
      ASSERT_EQ(static_cast<int64_t>(want.size()), per_expert);
      for (int64_t i = 0; i < per_expert; ++i) {
        const uint16_t g = got[static_cast<size_t>(e * per_expert + i)];
        const uint16_t r = want[static_cast<size_t>(i)];
        if (g == r) continue;
        if (mismatches++ == 0) {
          char buf[128];
          std::snprintf(buf, sizeof(buf), "expert %lld row %lld col %lld: got 0x%04X want 0x%04X",
                        static_cast<long long>(e), static_cast<long long>(i / k),
                        static_cast<long long>(i % k), g, r);
          first = buf;
        }
      }
    }
    print_row("dequant", f.to_string(), act, "-", bank.num_experts(), n, k,
              static_cast<double>(mismatches), mismatches == 0);
    EXPECT_EQ(mismatches, 0) << f.to_string() << " " << qmoe::dtype_name(act) << " [" << n << ", "
                             << k << "]: first mismatch " << first;
  }
}

/// K values that exercise the padding of format f: 384 (three tiles) always; 96 and 160
/// (one partial tile, two tiles with a partial one) where the group divides them; 200 for
/// per-channel and dense, whose K is free.
std::vector<int64_t> dequant_ks(const FormatSpec& f) {
  std::vector<int64_t> ks{384};
  const bool free_k = f.kind == FormatKind::kDense || f.group_size == 0;
  for (int64_t k : {96, 160})
    if (free_k || k % f.group_size == 0) ks.push_back(k);
  if (free_k) ks.push_back(200);
  return ks;
}

/// The registered formats a device decoder handles (all of them in a CUDA build).
std::vector<FormatSpec> device_formats() {
  std::vector<FormatSpec> v;
  for (const FormatSpec& f : qmoe::all_formats())
    if (qmoe::has_device_decoder(f)) v.push_back(f);
  return v;
}

TEST(GpuKernels, DequantIsBitIdenticalToCpuRef) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  uint32_t seed = 1000;
  for (const FormatSpec& f : device_formats())
    for (int64_t k : dequant_ks(f)) ASSERT_NO_FATAL_FAILURE(check_dequant(f, 40, k, ++seed));
}

TEST(GpuKernels, DequantIsBitIdenticalToCpuRefSmall) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("int3:g32"), 24, 160, 11));
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("int4:pc"), 24, 200, 12));
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("bf16"), 24, 200, 13));
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("fp16"), 24, 96, 14));
  // Tables held in the lanes and tables loaded per vector.
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("vq1.5"), 24, 256, 15));
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("vq3"), 24, 256, 16));
  // The trellis formats' weights formed from the spec (one and two values a state).
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("tcq2"), 24, 256, 17));
  ASSERT_NO_FATAL_FAILURE(check_dequant(parse("tcq3.5"), 24, 256, 18));
}

// ---- Grouped GEMM --------------------------------------------------------------------------

/// The decode kernel twice: with kAuto's choice of decode (at these sizes the bf16 / fp16 one)
/// and with the integer-mma decode of int2 and int8 experts forced; kAuto twice: the default
/// (one kernel per call, chosen from the mean tokens per expert) and a per-expert threshold
/// (both kernels, each expert in one).
const std::vector<KernelRun> kAllKernels = {{KernelChoice::kDecode, 0},
                                            {KernelChoice::kDecode, 0, qmoe::IntegerDecode::kOn},
                                            {KernelChoice::kPrefill, 0},
                                            {KernelChoice::kAuto, 16},
                                            {KernelChoice::kAuto, 0}};
/// The tile kernel for every expert, and kAuto's default (the tile-choice tests, whose means
/// make its per-call choice the tile kernel too).
const std::vector<KernelRun> kTileKernelRuns = {{KernelChoice::kPrefill, 0},
                                                {KernelChoice::kAuto, 0}};

/// A bank and token distribution on the device, ready for grouped_gemm.
struct GemmSetup {
  qmoe::ExpertBank bank;
  qmoe::DeviceExpertBank dbank;
  int64_t m_used = 0;   ///< offsets[E]
  int64_t m_total = 0;  ///< rows of x / y given to the kernel (>= m_used)
  std::vector<int32_t> offsets;
  DeviceBuffer x, y, offsets_dev, workspace;
  size_t workspace_bytes = 0;
};

qmoe::GroupedGemmArgs args_for(const GemmSetup& s, DType act, const KernelRun& run);

void set_tokens(const std::vector<int32_t>& counts, GemmSetup* s) {
  s->offsets.assign(1, 0);
  for (int32_t c : counts) s->offsets.push_back(s->offsets.back() + c);
  s->m_used = s->offsets.back();
}

/// set_tokens, within the setup's rows, and the offsets copied to the device (synchronously).
void upload_tokens(const std::vector<int32_t>& counts, GemmSetup* s) {
  set_tokens(counts, s);
  ASSERT_LE(s->m_used, s->m_total);
  CUDA_CHECK(cudaMemcpy(s->offsets_dev.as<void>(), s->offsets.data(), s->offsets_dev.bytes(),
                        cudaMemcpyHostToDevice));
}

/// grouped_gemm(a) captured on `stream` (global mode: a launch elsewhere, an allocation or a
/// synchronisation would invalidate the capture) and instantiated into *exec.
void capture_gemm(const qmoe::GroupedGemmArgs& a, void* workspace, size_t workspace_bytes,
                  cudaStream_t stream, cudaGraphExec_t* exec) {
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const qmoe::Status st = qmoe::grouped_gemm(a, workspace, &workspace_bytes, stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  CUDA_CHECK(cudaGraphInstantiate(exec, graph, 0));
  CUDA_CHECK(cudaGraphDestroy(graph));
}

void setup_gemm(const std::vector<FormatSpec>& formats, int64_t n, int64_t k,
                const std::vector<int32_t>& counts, int64_t extra_rows, uint32_t seed, GemmSetup* s,
                Values values = Values::kGemm) {
  ASSERT_EQ(formats.size(), counts.size());
  std::mt19937 rng(seed);
  ASSERT_NO_FATAL_FAILURE(make_bank(formats, n, k, values, rng, &s->bank));
  const qmoe::Status up = qmoe::DeviceExpertBank::upload(s->bank, &s->dbank);
  ASSERT_TRUE(up.is_ok()) << up.to_string();
  set_tokens(counts, s);
  s->m_total = s->m_used + extra_rows;
  CUDA_CHECK(s->x.alloc(static_cast<size_t>(s->m_total * k) * 2));
  CUDA_CHECK(s->y.alloc(static_cast<size_t>(s->m_total * n) * 2));
  CUDA_CHECK(s->offsets_dev.alloc(s->offsets.size() * sizeof(int32_t)));
  CUDA_CHECK(cudaMemcpy(s->offsets_dev.as<void>(), s->offsets.data(), s->offsets_dev.bytes(),
                        cudaMemcpyHostToDevice));
  // The size for the decode kernel with the integer decode on every row: the most any run of
  // this setup needs (x as digits, x_digits.cuh).
  const qmoe::Status q = qmoe::grouped_gemm(
      args_for(*s, DType::kBF16, {KernelChoice::kDecode, 0, qmoe::IntegerDecode::kOn}), nullptr,
      &s->workspace_bytes, nullptr);
  ASSERT_TRUE(q.is_ok()) << q.to_string();
  CUDA_CHECK(s->workspace.alloc(s->workspace_bytes));
  // Armed: decode launches hand out their later items on demand (work_queue.cuh).
  const qmoe::Status w =
      qmoe::prepare_workspace(s->workspace.as<void>(), s->workspace_bytes, nullptr);
  ASSERT_TRUE(w.is_ok()) << w.to_string();
}

/// Fresh random activations for rows [0, m_used) (rows past it hold poison: never read); with
/// `exact`, values in {-1, 0, 1} (Values::kExact).
void upload_x(DType act, uint32_t seed, GemmSetup* s, std::vector<uint16_t>* x, float mean = 0.f,
              bool exact = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(mean, 1.f);
  const int64_t k = s->bank.k();
  x->assign(static_cast<size_t>(s->m_total * k), kPoison);
  for (int64_t i = 0; i < s->m_used * k; ++i)
    (*x)[static_cast<size_t>(i)] =
        to_act(act, exact ? static_cast<float>(static_cast<int>(rng() % 3) - 1) : normal(rng));
  CUDA_CHECK(cudaMemcpy(s->x.as<void>(), x->data(), x->size() * 2, cudaMemcpyHostToDevice));
}

qmoe::GroupedGemmArgs args_for(const GemmSetup& s, DType act, const KernelRun& run) {
  qmoe::GroupedGemmArgs a;
  a.bank = s.dbank.view();
  a.x = qmoe::matrix_view(static_cast<const void*>(s.x.as<void>()), s.m_total, s.bank.k(), act);
  a.y = qmoe::matrix_view(s.y.as<void>(), s.m_total, s.bank.n(), act);
  a.expert_offsets = s.offsets_dev.as<int32_t>();
  a.kernel = run.kernel;
  a.decode_max_tokens = run.decode_max_tokens;
  a.integer_decode = run.integer_decode;
  a.tile_kernel = run.tile_kernel;
  return a;
}

/// Reads y back and checks it against the float64 reference: finite and nmse <= kMaxNmse for
/// every expert's rows, rows past m_used untouched. Prints the table row (worst expert).
/// y_cols: y's columns where they are not the bank's n (the gated epilogue's n / 2); the rest of
/// the y buffer must keep its poison too.
void check_y(const GemmSetup& s, DType act, const std::vector<double>& ref, const char* op,
             const std::string& label, const char* kernel, int64_t y_cols = 0) {
  const int64_t n = y_cols > 0 ? y_cols : s.bank.n();
  std::vector<uint16_t> y(s.y.bytes() / 2);
  CUDA_CHECK(cudaMemcpy(y.data(), s.y.as<void>(), y.size() * 2, cudaMemcpyDeviceToHost));
  const qmoe::gpu_test::OutputError e = qmoe::gpu_test::output_error(act, y, ref, n, s.offsets);
  print_row(op, label, act, kernel, s.m_used, n, s.bank.k(), e.nmse, e.ok());
  EXPECT_EQ(e.non_finite, 0) << label << " " << kernel << ": non-finite outputs";
  EXPECT_EQ(e.touched, 0) << label << " " << kernel << ": rows past offsets[E] were written";
  EXPECT_LE(e.nmse, kMaxNmse) << label << " " << kernel << ": worst expert " << e.worst_expert;
}

void reference(const GemmSetup& s, DType act, const std::vector<uint16_t>& x,
               std::vector<double>* ref) {
  const qmoe::Status st =
      qmoe::ref::grouped_gemm(s.bank, act, x.data(), s.m_used, s.offsets.data(), ref);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
}

/// *sms = the current device's SM count.
void sm_count(int* sms) {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, device));
}

/// Whether the device runs the wgmma kernel's sm_90a code (elsewhere grouped_gemm refuses
/// TileKernel::kWgmma as kUnsupported).
bool wgmma_available(DType act) {
  bool available = false;
  const cudaError_t err = act == DType::kBF16
                              ? qmoe::dev::grouped_gemm_wgmma_available<__nv_bfloat16>(&available)
                              : qmoe::dev::grouped_gemm_wgmma_available<__half>(&available);
  EXPECT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
  return available;
}

/// Runs each kernel choice on the case for both activation types and checks it (a forced wgmma
/// run where the device lacks it: that the call is refused as unsupported).
void check_gemm(const std::vector<FormatSpec>& formats, int64_t n, int64_t k,
                const std::vector<int32_t>& counts, const std::vector<KernelRun>& runs,
                uint32_t seed, float x_mean = 0.f) {
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(formats, n, k, counts, /*extra_rows=*/3, seed, &s));
  const std::string label = label_of(formats);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, seed + 1, &s, &x, x_mean));
    std::vector<double> ref;
    ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
    for (const KernelRun& run : runs) {
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      size_t bytes = s.workspace_bytes;
      const qmoe::Status st =
          qmoe::grouped_gemm(args_for(s, act, run), s.workspace.as<void>(), &bytes, nullptr);
      const char* kernel = kernel_name(run);
      if (run.tile_kernel == qmoe::TileKernel::kWgmma && !wgmma_available(act)) {
        EXPECT_EQ(st.code(), qmoe::StatusCode::kUnsupported) << label << " " << st.to_string();
        std::printf("  %-8s %-14s %-5s %-8s unsupported here: %s\n", "gemm", label.c_str(),
                    qmoe::dtype_name(act), kernel, st.to_string().c_str());
        continue;
      }
      ASSERT_TRUE(st.is_ok()) << label << " " << kernel << ": " << st.to_string();
      CUDA_CHECK(cudaDeviceSynchronize());
      ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref, "gemm", label, kernel));
    }
  }
}

/// K per format for the per-format sweep: not a multiple of 128 where the group allows.
int64_t sweep_k(const FormatSpec& f) {
  if (f.kind == FormatKind::kDense || f.group_size == 0) return 200;
  return f.group_size == 128 ? 384 : 320;
}

TEST(GpuKernels, GroupedGemmMatchesReferencePerFormat) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  uint32_t seed = 2000;
  for (const FormatSpec& f : device_formats()) {
    const std::vector<FormatSpec> formats(5, f);
    ASSERT_NO_FATAL_FAILURE(
        check_gemm(formats, 72, sweep_k(f), {3, 0, 17, 1, 16}, kAllKernels, seed += 10));
  }
}

TEST(GpuKernels, GroupedGemmMatchesReferenceMixedBank) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  std::vector<KernelRun> runs = kAllKernels;
  runs.push_back({KernelChoice::kAuto, 64});
  runs.push_back({KernelChoice::kAuto, 1});
  const std::vector<FormatSpec> a = parse_all({"int2:g32", "int4:g128", "int8:g64", "bf16",
                                               "int3:g64:sym", "fp16", "int4:pc", "int3:g128"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(a, 200, 384, {0, 1, 7, 16, 17, 63, 200, 0}, runs, 3001));
  const std::vector<FormatSpec> b =
      parse_all({"int2:g64:sym", "int3:g32", "int4:g32:sym", "int8:pc:sym", "bf16", "fp16",
                 "int4:g64", "int8:g32"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(b, 72, 320, {300, 1, 0, 5, 64, 65, 2, 0}, runs, 3002));
  // LUT experts beside int ones (the integer-mma decode runs the int experts only) and dense.
  const std::vector<FormatSpec> c =
      parse_all({"nuq4", "int4:g128", "nuq2", "bf16", "nuq3", "int2:g64", "int8:g128", "nuq4"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(c, 200, 384, {17, 1, 16, 0, 63, 7, 200, 1}, runs, 3003));
  // Vector experts (the 16-entry table shared through shuffles) beside LUT, int and dense ones.
  const std::vector<FormatSpec> d =
      parse_all({"vq2", "int4:g128", "nuq2", "bf16", "vq2", "int2:g128", "fp16", "int8:pc"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(d, 136, 384, {16, 1, 0, 5, 64, 17, 2, 200}, runs, 3004));
  // Every vector rate: tables in the lanes (vq1.5, vq2) and loaded per vector (vq2.5, vq3), and
  // four tile sizes (384, 512, 640, 768 bytes) in one launch.
  const std::vector<FormatSpec> e =
      parse_all({"vq1.5", "vq3", "int4:g128", "vq2.5", "vq2", "nuq3", "bf16", "vq3"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(e, 104, 512, {3, 16, 1, 40, 0, 9, 2, 130}, runs, 3005));
  // Trellis experts (the rotated x, fp16 mma) beside int, vector, LUT and dense ones in one
  // launch of either kernel (the int experts also on the integer decode: kOn), 300 tokens on one
  // expert (the tile kernel: four 64-token blocks and a short one).
  const std::vector<FormatSpec> t =
      parse_all({"tcq2", "int4:g128", "tcq3.5", "vq2", "tcq4", "nuq3", "bf16", "tcq1.5"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(t, 104, 512, {3, 16, 1, 40, 0, 9, 2, 300}, runs, 3006));
}

TEST(GpuKernels, GroupedGemmMatchesReferenceOnUnalignedRows) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  // K = 203 and N = 75: rows of x and y are not 16-byte (nor 4-byte) aligned.
  const std::vector<FormatSpec> f =
      parse_all({"bf16", "fp16", "int4:pc", "int8:pc:sym", "int2:pc", "int3:pc"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 75, 203, {5, 0, 70, 1, 16, 33}, kAllKernels, 4001));
}

TEST(GpuKernels, GroupedGemmMatchesReferenceLarge) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int2:g64", "int3:g32:sym", "int8:g128",
                                               "bf16", "int4:g32", "int3:pc", "fp16"});
  ASSERT_NO_FATAL_FAILURE(
      check_gemm(f, 768, 1024, {1500, 0, 900, 1, 16, 64, 1400, 215}, kAllKernels, 5001));
}

TEST(GpuKernels, GroupedGemmMatchesReferenceUpTo16384Tokens) {
  // One expert with 16384 tokens (128 full prefill token blocks), one with a partial last
  // block, an empty one and a decode-sized one, in mixed formats.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int2:g64", "bf16", "int8:pc:sym"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 264, 512, {16384, 4097, 0, 3}, kAllKernels, 5501));
}

TEST(GpuKernels, GroupedGemmDecodeVariantsMatchReference) {
  // The decode kernel picks its instantiation per launch (strips per warp x n8 chunks per
  // item, grouped_gemv.cuh choose_variant) from n, k, m and the grid. On an H100-sized grid
  // (132 SMs) these two shapes take the 4-strip, 1-chunk and the 2-strip, 2-chunk variants
  // (with the integer decode forced, the second takes the 1-strip, 2-chunk one); the small
  // shapes elsewhere take the 1- and 2-strip ones. Other grids pick others, still checked
  // against the reference.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int2:g32", "int3:g64:sym", "int8:g128",
                                               "bf16", "int4:pc", "int2:g128:sym", "fp16"});
  const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                         {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 16384, 128, {1, 1, 1, 1, 1, 1, 1, 1}, decode, 5601));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 16384, 128, {12, 9, 16, 13, 10, 15, 11, 14}, decode, 5602));
}

TEST(GpuKernels, GroupedGemmDecodeFindsItemsAmongManyExperts) {
  // The decode kernel's items find their expert by a warp-wide count over the schedule (lane l
  // reads experts l, l + 32, ...: schedule.cuh find_expert_warp) and switch on the decoder id
  // the schedule build kept: 300 experts (the 1024-expert occupancy bucket, a partial last
  // warp-wide chunk), most of them empty, tokens on both sides of each 32-expert boundary and on
  // the last expert, four formats in turn.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  constexpr int kExperts = 300;
  const std::vector<FormatSpec> kinds = parse_all({"int4:g128", "int2:g32", "int8:g128", "bf16"});
  std::vector<FormatSpec> f;
  std::vector<int32_t> counts;
  for (int e = 0; e < kExperts; ++e) {
    f.push_back(kinds[static_cast<size_t>(e) % kinds.size()]);
    const bool edge = e % 32 == 0 || e % 32 == 31 || e == kExperts - 1 || e % 37 == 5;
    counts.push_back(edge ? 1 + e % 5 : 0);
  }
  const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                         {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 256, counts, decode, 5751));
}

TEST(GpuKernels, GroupedGemmDecodeMatchesReferenceOnOffsetActivationsAndLongK) {
  // The decode kernel's affine path forms s * (sum (B + q) x - (B + z) sum x) with B = 128
  // (bf16) or 1024 (fp16): activations with a large common offset make the two terms large
  // and nearly cancel, so the fp32 sums' rounding shows most there (the integer decode's
  // int32 sums are exact, but its 16-bit x is relative to each tile's largest value). x ~ N(4, 1),
  // K up to 33 k-tiles. K = 2176 and 4224 also split K between 4 and 8 warps with uneven runs (5,
  // 5, 5, 2 k-tiles; six warps of 5, one of 3 and an idle one: choose_variant on any grid of at
  // least 15 blocks).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f =
      parse_all({"int2:g128", "int3:g128:sym", "int4:g32", "int8:g128", "int4:pc"});
  const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                         {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 48, 4224, {1, 16, 5, 0, 9}, decode, 5701, 4.f));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 2176, {3, 1, 0, 12, 1}, decode, 5702, 4.f));
}

TEST(GpuKernels, GroupedGemmDecodeRunsWholeAndHalfItemsInOneLaunch) {
  // A last round of at most grid / 2 items runs as half items, after the whole rounds
  // (grouped_gemv.cuh half_items). n is picked so that 8 experts with one token each have at
  // least one whole round and a last round of >= grid / 8 items under choose_variant on a grid of
  // 2 blocks per SM (the decode kernel's occupancy on H100- and A100-class parts): whole and half
  // items in one launch (items run in expert order, so the last expert's are split between the
  // two).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  int sms = 0;
  ASSERT_NO_FATAL_FAILURE(sm_count(&sms));
  const int grid = 2 * sms, k = 1024, experts = 8;
  int n = 0;
  long long items = 0, halved = 0;
  for (int cand = 16; cand <= 65536 && n == 0; cand += 16) {
    const qmoe::dev::GemmProblem p =
        qmoe::gpu_test::decode_problem(experts, cand, k, experts, 1, 1072, 1072);  // int4:g128
    const qmoe::dev::gemv::Variant v = qmoe::dev::gemv::choose_variant(p, grid);
    const int strips_per_item = qmoe::dev::gemv::strips_per_warp(p.min_strip_bytes, v.strip_cap) *
                                (qmoe::dev::kBlockWarps / v.group_warps);
    items = experts * static_cast<long long>((p.n_strips + strips_per_item - 1) / strips_per_item);
    halved = qmoe::dev::gemv::half_items(items, grid, __builtin_ctz(v.group_warps));
    if (items > grid && halved >= grid / 8) n = cand;
  }
  ASSERT_GT(n, 0);
  std::printf("n = %d: %lld items on %d blocks, %lld of them in halves\n", n, items, grid, halved);
  const std::vector<FormatSpec> f(static_cast<size_t>(experts), parse("int4:g128"));
  const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                         {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, n, k, std::vector<int32_t>(experts, 1), decode, 5801));
}

TEST(GpuKernels, GroupedGemmDecodeRunsEightStripsPerWarpForInt2AndVq2Banks) {
  // Banks of int2 g128 / g64, vq1.5 and vq2 experts alone may run eight strips per warp
  // (grouped_gemv.cuh ring_strips: 560, 608, 432 and 560 bytes per strip and k-tile fit two
  // stages of eight). n is
  // picked so that choose_variant takes that variant on this device's grid (2 blocks per SM);
  // n % 16 != 0 and n / 16 not a multiple of 8, so the last item of each expert holds strips past
  // N. K = 384: three k-tiles, uneven runs where K is split. Both decodes (bf16 and integer) are
  // checked. The int2 bank runs the kernel without the formed-weight decoders, those with vector
  // experts the kernel with them (GemmProblem::formed), their int2 experts on the integer decode
  // in the second run.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  int sms = 0;
  ASSERT_NO_FATAL_FAILURE(sm_count(&sms));
  const int grid = 2 * sms, k = 384, experts = 8;
  const std::vector<int32_t> counts = {1, 2, 0, 1, 3, 1, 0, 1};
  // Each bank with its least and most bytes per strip and k-tile (int2:g128 and vq2 560,
  // int2:g64 608, vq1.5 432).
  struct Bank {
    std::vector<const char*> names;
    int min_strip_bytes, max_strip_bytes;
  };
  const std::vector<Bank> banks = {
      {{"int2:g128", "int2:g64", "int2:g128:sym", "int2:g64:sym", "int2:g128", "int2:g64",
        "int2:g128:sym", "int2:g64:sym"},
       560,
       608},
      {{"vq2", "int2:g64", "vq2", "int2:g128:sym", "vq2", "vq2", "int2:g128", "vq2"}, 560, 608},
      {{"vq1.5", "vq2", "vq1.5", "int2:g64", "vq1.5", "vq1.5", "int2:g128", "vq1.5"}, 432, 608},
      // Trellis experts (tcq2 560, tcq1.5 432) beside vq2 and int2: the rotated x in eight strips.
      {{"tcq2", "tcq1.5", "vq2", "int2:g128", "tcq2", "tcq1.5", "tcq2", "int2:g64"}, 432, 608}};
  for (size_t i = 0; i < banks.size(); ++i) {
    const std::vector<FormatSpec> f = parse_all(banks[i].names);
    int n = 0;
    for (int cand = 16 * 9; cand <= 65536 && n == 0; cand += 16) {
      const qmoe::dev::GemmProblem p = qmoe::gpu_test::decode_problem(
          experts, cand - 5, k, 9, 16, banks[i].min_strip_bytes, banks[i].max_strip_bytes);
      if (p.n_strips % 8 != 0 && qmoe::dev::gemv::choose_variant(p, grid).strip_cap == 8) n = p.n;
    }
    ASSERT_GT(n, 0) << "no shape takes the eight-strip variant on a grid of " << grid;
    std::printf("bank %zu: n = %d takes eight strips per warp on %d blocks\n", i, n, grid);
    const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                           {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
    ASSERT_NO_FATAL_FAILURE(check_gemm(f, n, k, counts, decode, 5851 + static_cast<int>(i)));
  }
}

TEST(GpuKernels, GroupedGemmRingDepthsMatchReferenceSmall) {
  // The wgmma kernel's ring depth follows the bank's largest code tile (int2/3/4: 4 stages;
  // int8: 3 at 128 tokens, 4 at 64, the refill overlapping the last wgmmas; dense: 2) and
  // its token tile follows the mean tokens per expert (128 here for the first counts, 64 for
  // the second, 96 for the third: a mean of 57, where the expert of 97 tokens takes a second
  // token block of one). K = 896 is 7 k-tiles, so every ring wraps; K = 707 and N = 75 are
  // unaligned.
  // "Small" so that the sanitizers run it too.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<KernelRun> runs = {{KernelChoice::kPrefill, 16}, {KernelChoice::kAuto, 16}};
  const std::vector<std::vector<const char*>> banks = {
      {"int4:g128", "int2:g32", "int3:g64", "int4:pc:sym"},
      {"int8:g128", "int4:g32", "int8:pc:sym", "int2:g64"}};
  uint32_t seed = 6501;
  for (const auto& names : banks) {
    const std::vector<FormatSpec> f = parse_all(names);
    ASSERT_NO_FATAL_FAILURE(check_gemm(f, 128, 896, {150, 0, 90, 200}, runs, seed++));
    ASSERT_NO_FATAL_FAILURE(check_gemm(f, 128, 896, {40, 1, 0, 30}, runs, seed++));
    ASSERT_NO_FATAL_FAILURE(check_gemm(f, 128, 896, {60, 97, 0, 70}, runs, seed++));
  }
  const std::vector<FormatSpec> f = parse_all({"int4:pc", "int8:pc", "int2:pc:sym", "int3:pc"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 75, 707, {150, 0, 90, 200}, runs, seed++));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 75, 707, {40, 1, 0, 30}, runs, seed++));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 75, 707, {60, 97, 0, 70}, runs, seed++));
}

TEST(GpuKernels, GroupedGemmTwoBlockTilesMatchReferenceSmall) {
  // The wgmma kernel runs banks of 2/3/4-bit experts at two blocks per SM, with a 32-token tile
  // at a mean of <= 20 tokens per expert and a 64-token one at <= 48, when the items (experts x
  // 256-row blocks) are at least its grid: 24 experts x 12 row blocks of N = 2830 = 288 items
  // cover the 264 blocks of a 132-SM device. Means 13 (32-token tile), 32 and 46 (64-token tile;
  // at 46 the 128-token tile ran before session 9); experts with 33 tokens (32-token tile) and
  // 66 or 70 (64-token tile) take two token blocks; K = 640 (5 k-tiles, a multiple of every
  // group size) wraps the rings; N is unaligned. The ring depth follows the bank's largest code
  // tile: with int4 in the bank 3 stages at 32 tokens and 2 at 64; the int2/int3-only bank
  // below gets 4 and 3 (from 3 stages the refill overlaps the last wgmmas). The per-call
  // kAuto also picks the tile kernel here (every mean > 6, the boundary where the 32-token tile
  // runs). The test cannot see which tile ran: on a device with more than 144 SMs these items
  // would not reach the grid and it would check the one-block tiles instead. "Small" so that
  // the sanitizers run it.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  std::vector<FormatSpec> f;
  for (int e = 0; e < 24; ++e)
    f.push_back(parse(std::vector<const char*>{"int4:g128", "int3:g64:sym", "int2:g32",
                                               "int4:pc"}[static_cast<size_t>(e % 4)]));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 2830, 640, {12, 0,  1,  20, 33, 7, 15, 18, 9,  11, 14, 16,
                                                    3,  25, 10, 12, 19, 8, 13, 6,  17, 2,  21, 9},
                                     kTileKernelRuns, 6401));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 2830, 640, {30, 0,  41, 22, 64, 27, 35, 18, 39, 21, 33, 29,
                                                    70, 25, 31, 38, 19, 28, 36, 24, 40, 26, 23, 37},
                                     kTileKernelRuns, 6402));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 2830, 640, {45, 0,  52, 38, 70, 41, 47, 44, 66, 42, 49, 43,
                                                    51, 46, 40, 48, 39, 55, 44, 47, 43, 50, 45, 46},
                                     kTileKernelRuns, 6403));
  std::vector<FormatSpec> narrow;
  for (int e = 0; e < 24; ++e) narrow.push_back(parse(e % 2 == 0 ? "int2:g32" : "int3:g64:sym"));
  ASSERT_NO_FATAL_FAILURE(check_gemm(
      narrow, 2830, 640,
      {12, 0, 1, 20, 33, 7, 15, 18, 9, 11, 14, 16, 3, 25, 10, 12, 19, 8, 13, 6, 17, 2, 21, 9},
      kTileKernelRuns, 6404));
  ASSERT_NO_FATAL_FAILURE(check_gemm(narrow, 2830, 640,
                                     {30, 0,  41, 22, 64, 27, 35, 18, 39, 21, 33, 29,
                                      70, 25, 31, 38, 19, 28, 36, 24, 40, 26, 23, 37},
                                     kTileKernelRuns, 6405));
}

TEST(GpuKernels, GroupedGemmHalfRowItemsMatchReferenceSmall) {
  // Where a bank of 2/3/4-bit experts at a mean of <= 20 tokens per expert has fewer 256-row
  // items than the two-block grid, the wgmma kernel runs the 32-token tile with 128-row items
  // (one strip per warp) at two blocks per SM (and banks with int8 experts at any item count): 8
  // experts x 12 row blocks of N = 2830 = 96 items (184 of 128 rows, the last holding 14) stay
  // below the 264 blocks of a 132-SM device. Means 14 and 19; experts with 33 and 40 tokens take
  // two token blocks; K = 640 (5 k-tiles) wraps the rings, K = 4160 (33 k-tiles, the last half
  // empty) hands the items out on demand (kWgmmaQueueMinKTiles). The test cannot see which tile
  // ran. "Small" so that the sanitizers run it.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int3:g64:sym", "int2:g32", "int4:pc",
                                               "int2:g128", "int3:pc", "int4:g32", "int2:pc:sym"});
  const std::vector<FormatSpec> narrow =
      parse_all({"int2:g32", "int3:g64:sym", "int2:pc", "int3:g128", "int2:g64", "int3:pc:sym",
                 "int2:g128", "int3:g32"});
  const std::vector<int32_t> mean14 = {12, 0, 1, 20, 33, 7, 15, 18};
  const std::vector<int32_t> mean19 = {20, 5, 40, 9, 16, 0, 25, 30};
  uint32_t seed = 6451;
  for (const auto& bank : {f, narrow}) {
    ASSERT_NO_FATAL_FAILURE(check_gemm(bank, 2830, 640, mean14, kTileKernelRuns, seed++));
    ASSERT_NO_FATAL_FAILURE(check_gemm(bank, 2830, 640, mean19, kTileKernelRuns, seed++));
  }
  // K = 4160 is a multiple of 64 and 32, not of 128.
  const std::vector<FormatSpec> long_k =
      parse_all({"int4:g32", "int3:g64:sym", "int2:g32", "int4:pc", "int2:g64", "int3:pc",
                 "int4:g64:sym", "int2:pc:sym"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(long_k, 1100, 4160, mean19, kTileKernelRuns, seed++));
  // Banks with int8 experts (2 KB code slots) take only this one-strip form of the two-block
  // tile, with few items as above and with more than its grid (24 experts x 23 row blocks).
  const std::vector<FormatSpec> with_int8 =
      parse_all({"int8:g128", "int4:g64", "int8:pc:sym", "int2:g32", "int3:g128", "int8:g32",
                 "int4:pc", "int8:g64:sym"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(with_int8, 2830, 640, mean14, kTileKernelRuns, seed++));
  std::vector<FormatSpec> many;
  std::vector<int32_t> many_counts;
  for (int e = 0; e < 24; ++e) {
    many.push_back(with_int8[static_cast<size_t>(e % 8)]);
    many_counts.push_back(mean19[static_cast<size_t>((e * 5) % 8)]);
  }
  ASSERT_NO_FATAL_FAILURE(check_gemm(many, 2830, 640, many_counts, kTileKernelRuns, seed++));
}

TEST(GpuKernels, GroupedGemm256TokenTileMatchesReferenceSmall) {
  // Banks of 2/3/4-bit experts take the wgmma kernel's 256-token tile (one m64 block per
  // warpgroup, 128 rows per item, three ring stages with one k-tile prefetched), banks with int8
  // experts a kernel of their own; the cases and what each covers: tile256_cases.hpp. The test
  // cannot see which tile ran (WgmmaTokenTile.TheGpuTestOfThe256TokenTileRunsIt checks its
  // calls' choice on the host, from the same list); "Small" so that the sanitizers run it.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  for (const Tile256Case& c : tile256_cases()) {
    SCOPED_TRACE(c.what);
    ASSERT_NO_FATAL_FAILURE(
        check_gemm(parse_all(c.formats), c.n, c.k, c.counts, kTileKernelRuns, c.seed));
  }
}

TEST(GpuKernels, GroupedGemmShortLastBlocksRunInTheTailTileSmall) {
  // At 128 and 256 tokens the wgmma launcher runs each expert's short last token block (a
  // quarter of the tile or less) in a second launch of a 32- or 64-token tile (launch_with_tail):
  // the two-block tile, the one-strip one, or none, by the estimated tail items; the cases, what
  // each covers and which launch it takes on a 132-SM device: tail_cases.hpp. The test cannot see
  // which launches ran (WgmmaTailSplit.TheGpuTestOfTheTailLaunchRunsEachForm checks its calls'
  // choice on the host, from the same list; on a device with another SM count the choice may
  // differ). "Small" so that the sanitizers run it.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  for (const TailCase& c : tail_cases()) {
    SCOPED_TRACE(c.what);
    std::vector<FormatSpec> f;
    std::vector<int32_t> counts;
    for (size_t e = 0; e < static_cast<size_t>(c.experts); ++e) {
      f.push_back(parse(c.formats[e % c.formats.size()]));
      counts.push_back(c.counts[e % c.counts.size()]);
    }
    ASSERT_NO_FATAL_FAILURE(check_gemm(f, c.n, c.k, counts, kTileKernelRuns, c.seed));
  }
}

TEST(GpuKernels, GroupedGemmTmaTilesRunSeveralItemsPerBlock) {
  // The 128- and 256-token tiles wait for each ring stage's x (TMA) on an mbarrier per stage
  // whose phase bits carry from one item of a block to the next, so the cases have more items
  // than an H100 or H200 has SMs (the grid: one block per SM, up to 186 blocks on a 132-SM
  // device), and k-tile counts that fill the stages unevenly. 256-token tile: 11 token blocks x
  // 17 row blocks (N = 2050) = 187 items; K = 4288 is 34 k-tiles, its three stages are filled
  // 12, 11 and 11 times per item. 128-token tile (mean 587 < 1536 at K < 4096): 21 token blocks
  // x 7 row blocks (N = 1550) = 147 items; K = 1152 is 9 k-tiles; 2/3/4-bit banks have four
  // stages (filled 3, 2, 2, 2 times), banks with int8 three, with dense experts two (the refill
  // then targets the stage of the k-tile just multiplied, after a drain).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g64", "int3:g32:sym", "int2:g64", "int4:pc"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 2050, 4288, {300, 530, 600, 520}, kTileKernelRuns, 6701));
  const std::vector<std::vector<const char*>> banks = {
      {"int4:g128", "int3:g64", "int2:g32:sym", "int4:pc"},
      {"int8:g128", "int4:g32", "int2:pc", "int3:g128"},
      {"bf16", "int4:g64", "fp16", "int8:pc:sym"}};
  uint32_t seed = 6702;
  for (const auto& names : banks)
    ASSERT_NO_FATAL_FAILURE(
        check_gemm(parse_all(names), 1550, 1152, {700, 520, 600, 530}, kTileKernelRuns, seed++));
}

TEST(GpuKernels, GroupedGemmMatchesReferenceSmall) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g32", "bf16", "int2:g64", "int8:g128"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 256, {0, 1, 7, 17}, kAllKernels, 6001));
  // All tokens on one expert.
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 256, {0, 0, 150, 0}, kAllKernels, 6002));
}

TEST(GpuKernels, GroupedGemmFormedDecodersMatchReferenceSmall) {
  // The decoders that form weights from tables (LUT and vector: the kernels' formed
  // instantiations) in every kernel; "Small" so that the sanitizers run it too.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f =
      parse_all({"vq1.5", "nuq3", "vq3", "vq2.5", "vq2", "nuq4", "int4:g128"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 256, {0, 1, 7, 17, 3, 40, 2}, kAllKernels, 6003));
}

TEST(GpuKernels, GroupedGemmTrellisDecodersMatchReferenceOnLongK) {
  // K = 2048 (16 k-tiles: the decode kernel's warps share a strip group's k-tiles; the tile
  // kernel's ring wraps) and one expert past 16 tokens per item, with tcq4's 1 KB tiles (bulk
  // copies on sm_90+) beside the two-value rates.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"tcq4", "tcq2.5", "int4:g128", "tcq3.5"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 264, 2048, {1, 5, 0, 40}, kAllKernels, 6005));
}

TEST(GpuKernels, GroupedGemmTrellisDecodersMatchReferenceSmall) {
  // Every trellis format (the rotated x, fp16 mma; on the decode kernel, on the mma.sync tile
  // kernel, and split between them) beside int, vector and dense experts; an expert of 40 tokens
  // takes three decode items. "Small": the sanitizers run it.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f =
      parse_all({"tcq2", "tcq3", "tcq4", "int4:g128", "tcq1.5", "tcq2.5", "tcq3.5", "vq2", "bf16"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 40, 256, {0, 1, 7, 17, 3, 40, 2, 5, 1}, kAllKernels, 6004));
}

/// Every trellis rate beside int4 and bf16 experts, and the tile kernels' runs of the trellis
/// tile tests: the tile kernels alone, kAuto (at these means the tile kernels alone too) and a
/// threshold of 64.
std::vector<FormatSpec> trellis_tile_bank() {
  return parse_all({"tcq2", "tcq3", "tcq4", "int4:g128", "tcq1.5", "tcq2.5", "tcq3.5", "bf16"});
}
const std::vector<KernelRun> kTrellisTileRuns = {
    {KernelChoice::kPrefill, 0}, {KernelChoice::kAuto, 0}, {KernelChoice::kAuto, 64}};

TEST(GpuKernels, GroupedGemmTrellisTileKernelMatchesReference) {
  // The tile kernels' trellis path (weights formed as RNE_fp16(v s) against the rotated x, the
  // 128 applied in the epilogue): experts of several 64-token blocks and short last blocks,
  // N = 200 (a partial row block), K = 640. On sm_90a the trellis experts take the wgmma
  // kernel's trellis launch (means of 62 and, above the threshold, 71 tokens: tile_launches);
  // the mma.sync kernel's trellis path runs in the tile-kernel test below (kMmaSync).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  ASSERT_NO_FATAL_FAILURE(check_gemm(trellis_tile_bank(), 200, 640,
                                     {130, 64, 65, 1, 0, 200, 16, 17}, kTrellisTileRuns, 6006));
}

TEST(GpuKernels, GroupedGemmTrellisExpertsOfManyTokensMatchReference) {
  // The trellis experts' tile launch at a high mean (162 tokens per expert): on sm_90a the wgmma
  // kernel's trellis launch (128-token tile, fp16 wgmmas against the rotated x) beside a wgmma
  // launch for the int4 and bf16 experts; elsewhere the mma.sync kernel. Experts of several
  // 128-token blocks, short last blocks and none; N = 264 (a partial 128-row item), K = 768.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  ASSERT_NO_FATAL_FAILURE(check_gemm(trellis_tile_bank(), 264, 768,
                                     {300, 129, 0, 257, 1, 128, 400, 77}, kTrellisTileRuns, 6007));
  // More items than blocks (6 trellis experts x 16 row blocks x 2 token blocks = 192 on at most 132
  // SMs): blocks run a second item, whose ring follows the first one's epilogue; every rate.
  const std::vector<FormatSpec> g =
      parse_all({"tcq4", "tcq2", "tcq3.5", "int4:g128", "tcq1.5", "tcq3", "tcq2.5", "bf16"});
  ASSERT_NO_FATAL_FAILURE(check_gemm(g, 2048, 256, {150, 200, 129, 0, 140, 256, 131, 170},
                                     {{KernelChoice::kPrefill, 0}}, 6008));
}

TEST(GpuKernels, GroupedGemmTrellisAndOtherExpertsMatchReferenceOnEachTileKernel) {
  // TileKernel forced: kMmaSync runs every expert on the mma.sync kernel (the sm_80 path's SASS
  // on an H100), kWgmma every expert on the wgmma kernel (the trellis experts in its trellis
  // launch) at means below kAuto's bound for it; kUnsupported without the wgmma kernel. A bank of
  // every decoder family: int, dense, non-uniform (LUT), vector and trellis experts.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all(
      {"tcq2", "int4:g128", "nuq3", "tcq3.5", "vq2", "bf16", "int2:g64", "tcq4", "int8:pc"});
  const std::vector<KernelRun> runs = {
      {KernelChoice::kPrefill, 0, qmoe::IntegerDecode::kAuto, qmoe::TileKernel::kMmaSync},
      {KernelChoice::kPrefill, 0, qmoe::IntegerDecode::kAuto, qmoe::TileKernel::kWgmma},
      {KernelChoice::kPrefill, 0}};
  // Means of 22 and 45 tokens per expert (kAuto: the trellis experts on the mma.sync kernel),
  // experts of none, one and a partial second 128-token block.
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 200, 640, {20, 33, 0, 17, 40, 1, 29, 18, 40}, runs, 6009));
  ASSERT_NO_FATAL_FAILURE(check_gemm(f, 264, 768, {130, 3, 45, 0, 64, 40, 1, 120, 0}, runs, 6010));
}

// ---- Gated-SiLU epilogue ---------------------------------------------------------------------

/// The gated epilogue's references (gpu_test::gated_values of ref::grouped_gemm's product, the
/// bank's rows read as gate and up interleaved by 8): [0] for a fused call, [1] for one whose
/// product goes through the workspace.
void gated_reference(const GemmSetup& s, DType act, const std::vector<uint16_t>& x,
                     std::vector<double> (*ref)[2]) {
  std::vector<double> gate_up;
  ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &gate_up));
  for (int rounded = 0; rounded < 2; ++rounded)
    (*ref)[rounded] =
        qmoe::gpu_test::gated_values(gate_up, s.m_used, s.bank.n(), act, rounded != 0);
}

qmoe::GroupedGemmArgs gated_args(const GemmSetup& s, DType act, const KernelRun& run) {
  qmoe::GroupedGemmArgs a = args_for(s, act, run);
  a.y = qmoe::matrix_view(s.y.as<void>(), s.m_total, s.bank.n() / 2, act);
  a.epilogue = qmoe::Epilogue::kSiluMulInterleaved;
  return a;
}

/// Whether a gated call's product goes through the workspace (a tile-kernel launch): its size
/// query then asks for more than the same call without the epilogue.
bool product_in_workspace(const GemmSetup& s, DType act, const KernelRun& run) {
  size_t gated = 0, plain = 0;
  EXPECT_TRUE(qmoe::grouped_gemm(gated_args(s, act, run), nullptr, &gated, nullptr).is_ok());
  EXPECT_TRUE(qmoe::grouped_gemm(args_for(s, act, run), nullptr, &plain, nullptr).is_ok());
  return gated > plain;
}

/// A workspace for the gated calls of these runs (the most any of them asks for: a run with a
/// tile-kernel launch adds the [m, n] product), prepared.
void gated_workspace(const GemmSetup& s, const std::vector<KernelRun>& runs, DeviceBuffer* ws,
                     size_t* ws_bytes) {
  *ws_bytes = 0;
  for (const KernelRun& run : runs) {
    size_t bytes = 0;
    const qmoe::Status q =
        qmoe::grouped_gemm(gated_args(s, DType::kBF16, run), nullptr, &bytes, nullptr);
    ASSERT_TRUE(q.is_ok()) << q.to_string();
    *ws_bytes = std::max(*ws_bytes, bytes);
  }
  CUDA_CHECK(ws->alloc(*ws_bytes));
  const qmoe::Status w = qmoe::prepare_workspace(ws->as<void>(), *ws_bytes, nullptr);
  ASSERT_TRUE(w.is_ok()) << w.to_string();
}

/// Runs each kernel choice with the gated-SiLU epilogue on random data and checks y [m, n / 2]
/// against gated_reference by normalised error. fp16 only: SiLU(g) * u is heavy-tailed (a
/// product of two Gaussians where g > 0), so an expert's energy sits in a few outputs, and one
/// correctly rounded bf16 value among them (8 significant bits: up to 2^-8 relative) already
/// gives an NMSE of up to 1.5e-5; bf16 is checked bit for bit on exact products instead
/// (GroupedGemmGatedSiluIsCorrectlyRoundedOnExactProductsSmall).
void check_gated(const std::vector<FormatSpec>& formats, int64_t n, int64_t k,
                 const std::vector<int32_t>& counts, const std::vector<KernelRun>& runs,
                 uint32_t seed) {
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(formats, n, k, counts, /*extra_rows=*/3, seed, &s));
  DeviceBuffer ws;
  size_t ws_bytes = 0;
  ASSERT_NO_FATAL_FAILURE(gated_workspace(s, runs, &ws, &ws_bytes));
  const std::string label = label_of(formats);
  {
    const DType act = DType::kFP16;
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, seed + 1, &s, &x));
    std::vector<double> ref[2];
    ASSERT_NO_FATAL_FAILURE(gated_reference(s, act, x, &ref));
    for (const KernelRun& run : runs) {
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      size_t bytes = ws_bytes;
      const qmoe::Status st =
          qmoe::grouped_gemm(gated_args(s, act, run), ws.as<void>(), &bytes, nullptr);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      CUDA_CHECK(cudaDeviceSynchronize());
      const bool via_workspace = product_in_workspace(s, act, run);
      ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref[via_workspace ? 1 : 0],
                                      via_workspace ? "gemm/silu" : "gemm+silu", label,
                                      kernel_name(run), n / 2));
    }
  }
}

TEST(GpuKernels, GroupedGemmGatedSiluMatchesReferencePerFormat) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  uint32_t seed = 2500;
  for (const FormatSpec& f : device_formats()) {
    const std::vector<FormatSpec> formats(4, f);
    ASSERT_NO_FATAL_FAILURE(
        check_gated(formats, 80, sweep_k(f), {3, 0, 17, 1}, kAllKernels, seed += 10));
  }
}

TEST(GpuKernels, GroupedGemmGatedSiluMatchesReferenceSmall) {
  // A mixed bank through every kernel choice (the decode kernel fuses the activation; a call
  // with a tile-kernel launch goes through the workspace and the activation kernel), and the
  // decode kernel's wide variants (8 experts of one token over 2048 rows: 4 strips per warp on
  // an H100-sized grid).
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int2:g64", "int8:g128", "bf16"});
  ASSERT_NO_FATAL_FAILURE(check_gated(f, 48, 256, {1, 0, 20, 5}, kAllKernels, 2601));
  const std::vector<FormatSpec> g = parse_all({"int4:g128", "int3:g128", "int2:g128", "int8:g128",
                                               "int4:g32", "fp16", "int3:g64:sym", "int4:pc"});
  const std::vector<KernelRun> decode = {{KernelChoice::kDecode, 16},
                                         {KernelChoice::kDecode, 16, qmoe::IntegerDecode::kOn}};
  ASSERT_NO_FATAL_FAILURE(check_gated(g, 2048, 512, std::vector<int32_t>(8, 1), decode, 2602));
  ASSERT_NO_FATAL_FAILURE(check_gated(g, 2048, 512, {12, 9, 16, 13, 10, 15, 11, 14}, decode, 2603));
}

TEST(GpuKernels, GroupedGemmLeavesRowsBeforeTheFirstOffsetSmall) {
  // expert_offsets need not start at 0 (an expert-parallel slice of a shared x / y): rows
  // [0, offsets[0]) belong to no expert and are never written, by any kernel choice, with or
  // without the gated-SiLU epilogue (whose calls with a tile-kernel launch apply the activation
  // in a kernel of their own, over the rows the GEMM kernels wrote). The case of check_gemm /
  // check_gated, shifted down by kLead rows on the device; fp16, as check_gated. Those rows of x
  // are never written either: no kernel reads them, not even the conversions of x over whole
  // rows (x's digits for the integer decode, the trellis expert's rotated x), which initcheck
  // (scripts/gpu_check.sh) would report.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  constexpr int64_t kLead = 5;
  const DType act = DType::kFP16;
  const std::vector<FormatSpec> f =
      parse_all({"int4:g128", "int8:g128", "int2:g64", "bf16", "tcq2"});
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 48, 256, {20, 0, 33, 7, 9}, /*extra_rows=*/3, 8101, &s));
  std::vector<uint16_t> x;
  ASSERT_NO_FATAL_FAILURE(upload_x(act, 8102, &s, &x));
  std::vector<double> ref, gated_ref[2];
  ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
  ASSERT_NO_FATAL_FAILURE(gated_reference(s, act, x, &gated_ref));
  const int64_t n = s.bank.n(), k = s.bank.k(), rows = s.m_total + kLead;
  std::vector<int32_t> offsets = s.offsets;
  for (int32_t& o : offsets) o += static_cast<int32_t>(kLead);
  DeviceBuffer xd, yd, od;
  CUDA_CHECK(xd.alloc(static_cast<size_t>(rows * k) * 2));
  CUDA_CHECK(yd.alloc(static_cast<size_t>(rows * n) * 2));
  CUDA_CHECK(od.alloc(offsets.size() * sizeof(int32_t)));
  CUDA_CHECK(
      cudaMemcpy(xd.as<uint16_t>() + kLead * k, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(od.as<void>(), offsets.data(), od.bytes(), cudaMemcpyHostToDevice));
  auto shifted_args = [&](bool gated, const KernelRun& run) {
    qmoe::GroupedGemmArgs a = gated ? gated_args(s, act, run) : args_for(s, act, run);
    a.x = qmoe::matrix_view(static_cast<const void*>(xd.as<void>()), rows, k, act);
    a.y = qmoe::matrix_view(yd.as<void>(), rows, gated ? n / 2 : n, act);
    a.expert_offsets = od.as<int32_t>();
    return a;
  };
  size_t ws_bytes = 0;
  for (bool gated : {false, true})
    for (const KernelRun& run : kAllKernels) {
      size_t bytes = 0;
      ASSERT_TRUE(qmoe::grouped_gemm(shifted_args(gated, run), nullptr, &bytes, nullptr).is_ok());
      ws_bytes = std::max(ws_bytes, bytes);
    }
  DeviceBuffer ws;
  CUDA_CHECK(ws.alloc(ws_bytes));
  ASSERT_TRUE(qmoe::prepare_workspace(ws.as<void>(), ws_bytes, nullptr).is_ok());
  for (bool gated : {false, true})
    for (const KernelRun& run : kAllKernels) {
      const qmoe::GroupedGemmArgs a = shifted_args(gated, run);
      const int64_t y_cols = a.y.cols;
      CUDA_CHECK(cudaMemset(yd.as<void>(), 0xFF, yd.bytes()));
      size_t bytes = ws_bytes;
      const qmoe::Status st = qmoe::grouped_gemm(a, ws.as<void>(), &bytes, nullptr);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<uint16_t> y(static_cast<size_t>(rows * y_cols));
      CUDA_CHECK(cudaMemcpy(y.data(), yd.as<void>(), y.size() * 2, cudaMemcpyDeviceToHost));
      const auto lead_end = y.begin() + kLead * y_cols;
      EXPECT_EQ(std::count(y.begin(), lead_end, kPoison), kLead * y_cols)
          << kernel_name(run) << (gated ? " (gated)" : "") << ": rows before offsets[0] written";
      const std::vector<uint16_t> expert_rows(lead_end, y.end());
      const bool rounded = gated && product_in_workspace(s, act, run);
      const qmoe::gpu_test::OutputError e = qmoe::gpu_test::output_error(
          act, expert_rows, gated ? gated_ref[rounded ? 1 : 0] : ref, y_cols, s.offsets);
      print_row(gated ? "gemm+silu@5" : "gemm@5", label_of(f), act, kernel_name(run), s.m_used,
                y_cols, k, e.nmse, e.ok());
      EXPECT_EQ(e.non_finite, 0) << kernel_name(run);
      EXPECT_EQ(e.touched, 0) << kernel_name(run) << ": rows past offsets[E] were written";
      EXPECT_LE(e.nmse, kMaxNmse) << kernel_name(run) << ": worst expert " << e.worst_expert;
    }
}

TEST(GpuKernels, GroupedGemmGatedSiluIsCorrectlyRoundedOnExactProductsSmall) {
  // Exact data (Values::kExact, x in {-1, 0, 1}, K = 256): every kernel's fp32 sums are the
  // float64 product, so the fused epilogue must give ref::silu_and_mul_interleaved's bits, and a
  // call through the workspace those of the product rounded to the activation type first. Both
  // activation types; the integer decode (x as fixed point, s_x inexact) and SiLU in fp32 can
  // move a value across a rounding boundary, so at most 1 % of outputs may differ, by one ulp.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f =
      parse_all({"int4:g128", "int2:g64", "int8:g32", "bf16", "int3:g128:sym", "fp16", "int4:pc",
                 "int8:g128:sym"});
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 96, 256, {1, 0, 3, 20, 1, 9, 40, 2}, /*extra_rows=*/3, 2901,
                                     &s, Values::kExact));
  DeviceBuffer ws;
  size_t ws_bytes = 0;
  ASSERT_NO_FATAL_FAILURE(gated_workspace(s, kAllKernels, &ws, &ws_bytes));
  const int64_t half = s.bank.n() / 2;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, 2902, &s, &x, 0.f, /*exact=*/true));
    std::vector<double> gate_up;
    ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &gate_up));
    std::vector<double> rounded(gate_up.size());
    for (size_t i = 0; i < gate_up.size(); ++i) {
      const float v = static_cast<float>(gate_up[i]);
      ASSERT_EQ(static_cast<double>(v), gate_up[i]) << "the product is not exact in fp32";
      rounded[i] = act == DType::kBF16 ? qmoe::bf16_to_float(qmoe::float_to_bf16(v))
                                       : qmoe::fp16_to_float(qmoe::float_to_fp16(v));
    }
    std::vector<uint16_t> want[2];
    ASSERT_TRUE(
        qmoe::ref::silu_and_mul_interleaved(act, gate_up.data(), s.m_used, half, &want[0]).is_ok());
    ASSERT_TRUE(
        qmoe::ref::silu_and_mul_interleaved(act, rounded.data(), s.m_used, half, &want[1]).is_ok());
    for (const KernelRun& run : kAllKernels) {
      const char* kernel = kernel_name(run);
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      size_t bytes = ws_bytes;
      ASSERT_TRUE(
          qmoe::grouped_gemm(gated_args(s, act, run), ws.as<void>(), &bytes, nullptr).is_ok());
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<uint16_t> y(s.y.bytes() / 2);
      CUDA_CHECK(cudaMemcpy(y.data(), s.y.as<void>(), s.y.bytes(), cudaMemcpyDeviceToHost));
      const std::vector<uint16_t>& w = want[product_in_workspace(s, act, run) ? 1 : 0];
      int64_t differ = 0, beyond_ulp = 0, touched = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        if (i >= w.size()) {
          touched += y[i] != kPoison;
          continue;
        }
        if (y[i] == w[i]) continue;
        ++differ;
        // Same sign and adjacent patterns: one ulp apart.
        const int diff = static_cast<int>(y[i]) - static_cast<int>(w[i]);
        if ((y[i] ^ w[i]) & 0x8000u || diff < -1 || diff > 1) ++beyond_ulp;
      }
      print_row("exact+silu", label_of(f), act, kernel, s.m_used, half, s.bank.k(),
                static_cast<double>(differ),
                beyond_ulp == 0 && touched == 0 && differ * 100 <= static_cast<int64_t>(w.size()));
      EXPECT_EQ(beyond_ulp, 0) << kernel
                               << ": outputs more than one ulp from the correctly rounded value";
      EXPECT_LE(differ * 100, static_cast<int64_t>(w.size()))
          << kernel << ": " << differ << " of " << w.size() << " outputs differ by one ulp";
      EXPECT_EQ(touched, 0) << kernel << ": rows past offsets[E] were written";
    }
  }
}

TEST(GpuKernels, SiluMulInterleavedMatchesReferenceSmall) {
  // The activation kernel alone (silu_mul_interleaved) on random h, every row, against
  // ref::silu_and_mul_interleaved; y poisoned, its padding past [m, I] untouched.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  for (DType act : {DType::kBF16, DType::kFP16}) {
    const std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 8}, {37, 1408}, {300, 96}};
    for (const auto& [m, i] : sizes) {
      std::mt19937 rng(static_cast<uint32_t>(2700 + m));
      std::normal_distribution<float> normal(0.f, 3.f);
      std::vector<uint16_t> h(static_cast<size_t>(m * 2 * i));
      std::vector<double> h_values(h.size());
      for (size_t e = 0; e < h.size(); ++e) {
        h[e] = to_act(act, normal(rng));
        h_values[e] = act == DType::kBF16 ? qmoe::bf16_to_float(h[e]) : qmoe::fp16_to_float(h[e]);
      }
      std::vector<uint16_t> want;
      const qmoe::Status rs =
          qmoe::ref::silu_and_mul_interleaved(act, h_values.data(), m, i, &want);
      ASSERT_TRUE(rs.is_ok()) << rs.to_string();
      std::vector<double> ref(want.size());
      for (size_t e = 0; e < want.size(); ++e)
        ref[e] = act == DType::kBF16 ? qmoe::bf16_to_float(want[e]) : qmoe::fp16_to_float(want[e]);
      DeviceBuffer hd, yd;
      CUDA_CHECK(hd.alloc(h.size() * 2));
      CUDA_CHECK(yd.alloc(static_cast<size_t>(m * i + 64) * 2));
      CUDA_CHECK(cudaMemcpy(hd.as<void>(), h.data(), h.size() * 2, cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemset(yd.as<void>(), 0xFF, yd.bytes()));
      const qmoe::Status st = qmoe::silu_mul_interleaved(
          qmoe::matrix_view(static_cast<const void*>(hd.as<void>()), m, 2 * i, act),
          qmoe::matrix_view(yd.as<void>(), m, i, act), nullptr);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      CUDA_CHECK(cudaDeviceSynchronize());
      std::vector<uint16_t> y(yd.bytes() / 2);
      CUDA_CHECK(cudaMemcpy(y.data(), yd.as<void>(), yd.bytes(), cudaMemcpyDeviceToHost));
      const qmoe::gpu_test::OutputError e =
          qmoe::gpu_test::output_error(act, y, ref, i, {0, static_cast<int32_t>(m)});
      print_row("silu", "-", act, "-", m, i, 2 * i, e.nmse, e.ok());
      EXPECT_TRUE(e.ok()) << "m " << m << " I " << i << ": nmse " << e.nmse << ", non-finite "
                          << e.non_finite << ", touched " << e.touched;
    }
  }
}

TEST(GpuKernels, GroupedGemmGatedSiluIsGraphCapturableSmall) {
  // Captured with a per-expert threshold (decode launch, tile launch, activation kernel: the
  // whole call goes through the workspace) and in the decode kernel alone (fused), then
  // replayed on new x and token counts.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  const std::vector<FormatSpec> f = parse_all({"int4:g32", "bf16", "int3:g64", "int8:pc"});
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 64, 256, {2, 20, 0, 9}, /*extra_rows=*/33, 2801, &s));
  const std::vector<KernelRun> runs = {{KernelChoice::kAuto, 16}, {KernelChoice::kDecode, 0}};
  DeviceBuffer ws;
  size_t ws_bytes = 0;
  ASSERT_NO_FATAL_FAILURE(gated_workspace(s, runs, &ws, &ws_bytes));
  Stream owned_stream;
  CUDA_CHECK(owned_stream.create());
  const cudaStream_t stream = owned_stream.get();
  const DType act = DType::kFP16;  // random data: fp16, as check_gated
  for (const KernelRun& run : runs) {
    const char* kernel = kernel_name(run);
    const bool via_workspace = product_in_workspace(s, act, run);
    // Fresh x (seed), its reference, y poisoned, launch() on `stream`, y checked.
    auto run_checked = [&](uint32_t seed, const char* what, const auto& launch) {
      std::vector<uint16_t> x;
      ASSERT_NO_FATAL_FAILURE(upload_x(act, seed, &s, &x));
      std::vector<double> ref[2];
      ASSERT_NO_FATAL_FAILURE(gated_reference(s, act, x, &ref));
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      CUDA_CHECK(cudaDeviceSynchronize());
      ASSERT_NO_FATAL_FAILURE(launch());
      CUDA_CHECK(cudaStreamSynchronize(stream));
      ASSERT_NO_FATAL_FAILURE(
          check_y(s, act, ref[via_workspace ? 1 : 0], what, label_of(f), kernel, 32));
    };
    ASSERT_NO_FATAL_FAILURE(upload_tokens({2, 20, 0, 9}, &s));
    // One plain run first: the launchers' one-time setup happens outside the capture.
    ASSERT_NO_FATAL_FAILURE(run_checked(2802, "gemm+silu", [&] {
      size_t bytes = ws_bytes;
      const qmoe::Status st =
          qmoe::grouped_gemm(gated_args(s, act, run), ws.as<void>(), &bytes, stream);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
    }));
    cudaGraphExec_t exec = nullptr;
    ASSERT_NO_FATAL_FAILURE(
        capture_gemm(gated_args(s, act, run), ws.as<void>(), ws_bytes, stream, &exec));
    for (const std::vector<int32_t>& counts :
         {std::vector<int32_t>{2, 20, 0, 9}, std::vector<int32_t>{40, 0, 1, 15}}) {
      ASSERT_NO_FATAL_FAILURE(upload_tokens(counts, &s));
      // The graph's launches were fixed at capture, from the first token counts.
      ASSERT_NO_FATAL_FAILURE(run_checked(2803 + static_cast<uint32_t>(s.m_used), "graph+silu",
                                          [&] { CUDA_CHECK(cudaGraphLaunch(exec, stream)); }));
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
  }
}

/// A call captured once, replayed after x and the token counts change on the device.
void check_graph_capture(const std::vector<FormatSpec>& f, const KernelRun& run) {
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 72, 256, {2, 20, 0, 9}, /*extra_rows=*/33, 7001, &s));
  Stream owned_stream;
  CUDA_CHECK(owned_stream.create());
  const cudaStream_t stream = owned_stream.get();
  const char* kernel = kernel_name(run);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    ASSERT_NO_FATAL_FAILURE(upload_tokens({2, 20, 0, 9}, &s));
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, 7002, &s, &x));
    // One plain run first: the launchers' one-time per-device setup (occupancy, shared-memory
    // opt-in) happens outside the capture, as in an engine's warm-up.
    {
      std::vector<double> ref;
      ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      // The setup copies ran on the legacy default stream, which a non-blocking stream does
      // not wait for.
      CUDA_CHECK(cudaDeviceSynchronize());
      size_t bytes = s.workspace_bytes;
      const qmoe::Status st =
          qmoe::grouped_gemm(args_for(s, act, run), s.workspace.as<void>(), &bytes, stream);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      CUDA_CHECK(cudaStreamSynchronize(stream));
      ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref, "gemm", label_of(f), kernel));
    }

    cudaGraphExec_t exec = nullptr;
    ASSERT_NO_FATAL_FAILURE(capture_gemm(args_for(s, act, run), s.workspace.as<void>(),
                                         s.workspace_bytes, stream, &exec));

    // Replay after changing x and the token distribution on the device: same m bound.
    for (const std::vector<int32_t>& counts :
         {std::vector<int32_t>{2, 20, 0, 9}, std::vector<int32_t>{40, 0, 1, 15}}) {
      ASSERT_NO_FATAL_FAILURE(upload_tokens(counts, &s));
      ASSERT_NO_FATAL_FAILURE(upload_x(act, 7003 + static_cast<uint32_t>(s.m_used), &s, &x));
      std::vector<double> ref;
      ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
      CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
      CUDA_CHECK(cudaDeviceSynchronize());  // as above: order the setup before the replay
      CUDA_CHECK(cudaGraphLaunch(exec, stream));
      CUDA_CHECK(cudaStreamSynchronize(stream));
      ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref, "graph", label_of(f), kernel));
    }
    CUDA_CHECK(cudaGraphExecDestroy(exec));
  }
}

TEST(GpuKernels, GroupedGemmIsGraphCapturable) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  // The integer decode forced: its kernel converting x must wait for x too.
  ASSERT_NO_FATAL_FAILURE(
      check_graph_capture(parse_all({"int4:g32", "bf16", "int3:g64", "int8:pc"}),
                          {KernelChoice::kAuto, 16, qmoe::IntegerDecode::kOn}));
  // Trellis experts: the kernel rotating x before the decode launch, the one converting x too;
  // then before the tile launch alone.
  ASSERT_NO_FATAL_FAILURE(check_graph_capture(parse_all({"tcq2", "bf16", "tcq2.5", "int8:pc"}),
                                              {KernelChoice::kAuto, 0, qmoe::IntegerDecode::kOn}));
  ASSERT_NO_FATAL_FAILURE(check_graph_capture(parse_all({"tcq4", "int4:g128", "tcq1.5", "fp16"}),
                                              {KernelChoice::kPrefill, 0}));
}

/// Spins for `cycles` clocks, then copies x and the offsets into place (one block): a kernel
/// that writes grouped_gemm's inputs late, right before it in the stream. On sm_90+ it lets
/// the next kernel launch at once (programmatic dependent launch), so a grouped_gemm that
/// read its inputs before griddepcontrol.wait would see them unwritten.
__global__ void write_inputs_late(uint16_t* x, const uint16_t* x_src, int64_t x_elems,
                                  int32_t* offsets, const int32_t* offsets_src, int offsets_len,
                                  long long cycles) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
  for (int64_t i = threadIdx.x; i < x_elems; i += blockDim.x) x[i] = x_src[i];
  for (int i = static_cast<int>(threadIdx.x); i < offsets_len; i += static_cast<int>(blockDim.x))
    offsets[i] = offsets_src[i];
}

// Stream order across kernels, which programmatic dependent launch (sm_90+) must keep: a slow
// kernel writes x and expert_offsets just before grouped_gemm, and a second grouped_gemm reads
// the first one's y as its x, all on one stream with no host synchronisation in between. Read
// too early, x is poison (NaN) and the offsets route no rows, so y would be wrong or untouched.
// The second call runs with and without offsets_precede_previous_kernel (its offsets are the
// first call's: its decode kernel may build its schedule early, but must read x only after the
// first call's kernels), each with the integer decode forced on too (whose decode launch always
// schedules early behind the kernel converting x), and with both calls in kAuto (decode, then
// tile kernel), in the decode kernel alone (then the second call's early blocks start while
// the first call's decode launch is still writing the rows they read) or in the tile kernel
// alone.
// A bank with trellis experts runs behind the kernel rotating x (with the integer decode forced,
// behind the one converting x too); its tile launch reads that rotated x too, and with the tile
// kernel alone the rotation is that launch's own predecessor.
void check_waits_for_previous_kernel(const std::vector<FormatSpec>& f, uint32_t seed) {
  const std::vector<int32_t> counts = {5, 40, 0, 17};  // kAuto: both kernels
  constexpr int64_t kDim = 256;                        // n == k: y feeds the next call's x
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, kDim, kDim, counts, /*extra_rows=*/3, seed, &s));
  DeviceBuffer x_src, offsets_src, y2;
  CUDA_CHECK(x_src.alloc(s.x.bytes()));
  CUDA_CHECK(offsets_src.alloc(s.offsets_dev.bytes()));
  CUDA_CHECK(y2.alloc(s.y.bytes()));
  CUDA_CHECK(cudaMemcpy(offsets_src.as<void>(), s.offsets.data(), offsets_src.bytes(),
                        cudaMemcpyHostToDevice));
  Stream owned_stream;
  CUDA_CHECK(owned_stream.create());
  const cudaStream_t stream = owned_stream.get();
  for (int variant = 0; variant < 24; ++variant) {
    const DType act = (variant & 1) != 0 ? DType::kFP16 : DType::kBF16;
    const bool early = (variant & 2) != 0;
    const bool imma = (variant & 4) != 0;
    const int kernels = variant >> 3;  // 0: kAuto at 16 (both kernels), 1: decode, 2: tile
    const KernelRun run{kernels == 0   ? KernelChoice::kAuto
                        : kernels == 1 ? KernelChoice::kDecode
                                       : KernelChoice::kPrefill,
                        kernels == 0 ? 16 : 0,
                        imma ? qmoe::IntegerDecode::kOn : qmoe::IntegerDecode::kAuto};
    const std::string label = std::string(early ? "early" : "plain") + (imma ? "+imma" : "") +
                              (kernels == 0   ? "/auto16"
                               : kernels == 1 ? "/decode"
                                              : "/prefill");
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, seed + 1 + static_cast<uint32_t>(variant), &s, &x));
    CUDA_CHECK(cudaMemcpy(x_src.as<void>(), s.x.as<void>(), s.x.bytes(), cudaMemcpyDeviceToDevice));
    CUDA_CHECK(cudaMemset(s.x.as<void>(), 0xFF, s.x.bytes()));
    CUDA_CHECK(cudaMemset(s.offsets_dev.as<void>(), 0, s.offsets_dev.bytes()));
    CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
    CUDA_CHECK(cudaMemset(y2.as<void>(), 0xFF, y2.bytes()));
    CUDA_CHECK(cudaDeviceSynchronize());  // the setup ran on the legacy default stream

    write_inputs_late<<<1, 256, 0, stream>>>(
        s.x.as<uint16_t>(), x_src.as<uint16_t>(), s.m_total * kDim, s.offsets_dev.as<int32_t>(),
        offsets_src.as<int32_t>(), static_cast<int>(s.offsets.size()), 20'000'000LL);
    CUDA_CHECK(cudaGetLastError());
    qmoe::GroupedGemmArgs first = args_for(s, act, run);
    qmoe::GroupedGemmArgs second = first;
    second.x = qmoe::matrix_view(static_cast<const void*>(s.y.as<void>()), s.m_total, kDim, act);
    second.y = qmoe::matrix_view(y2.as<void>(), s.m_total, kDim, act);
    second.offsets_precede_previous_kernel = early;
    for (const qmoe::GroupedGemmArgs* a : {&first, &second}) {
      size_t bytes = s.workspace_bytes;
      const qmoe::Status st = qmoe::grouped_gemm(*a, s.workspace.as<void>(), &bytes, stream);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
    }
    CUDA_CHECK(cudaStreamSynchronize(stream));

    std::vector<double> ref;
    ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
    ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref, "chain1", label_of(f), label.c_str()));
    // The second call against the reference of the first call's actual output.
    std::vector<uint16_t> y1(static_cast<size_t>(s.m_total * kDim));
    CUDA_CHECK(cudaMemcpy(y1.data(), s.y.as<void>(), y1.size() * 2, cudaMemcpyDeviceToHost));
    ASSERT_NO_FATAL_FAILURE(reference(s, act, y1, &ref));
    CUDA_CHECK(cudaMemcpy(s.y.as<void>(), y2.as<void>(), y2.bytes(), cudaMemcpyDeviceToDevice));
    ASSERT_NO_FATAL_FAILURE(check_y(s, act, ref, "chain2", label_of(f), label.c_str()));
  }
}

TEST(GpuKernels, GroupedGemmWaitsForThePreviousKernelSmall) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  ASSERT_NO_FATAL_FAILURE(check_waits_for_previous_kernel(
      parse_all({"int4:g128", "int8:g64", "bf16", "int2:g32"}), 7101));
  ASSERT_NO_FATAL_FAILURE(
      check_waits_for_previous_kernel(parse_all({"tcq2", "int8:g64", "tcq3.5", "int2:g32"}), 7201));
}

/// Runs `run` on the case in the static order (a workspace never prepared: item i to block
/// i % grid, whatever its bytes say), then with the counters of the prepared workspace
/// s.workspace (items past a block's first to whichever block is free, work_queue.cuh): three
/// launches, then three graph replays and one more launch, each bit-identical to the static
/// order (each output has one writer and a fixed order of sums) and each leaving the counters
/// idle for the next. ref: the reference to check the first run of each order against (null:
/// bit-identity only).
void check_on_demand_order(GemmSetup& s, DType act, const KernelRun& run,
                           const std::vector<double>* ref, const std::string& label) {
  const int64_t n = s.bank.n();
  DeviceBuffer plain;
  CUDA_CHECK(plain.alloc(s.workspace_bytes));
  CUDA_CHECK(cudaMemset(plain.as<void>(), 0xA7, s.workspace_bytes));
  Stream owned_stream;
  CUDA_CHECK(owned_stream.create());
  const cudaStream_t stream = owned_stream.get();
  const std::string name = kernel_name(run);
  auto call = [&](void* ws) {
    size_t bytes = s.workspace_bytes;
    const qmoe::Status st = qmoe::grouped_gemm(args_for(s, act, run), ws, &bytes, stream);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  };
  auto read_y = [&](std::vector<uint16_t>* y) {
    y->resize(static_cast<size_t>(s.m_total * n));
    CUDA_CHECK(cudaMemcpy(y->data(), s.y.as<void>(), y->size() * 2, cudaMemcpyDeviceToHost));
  };
  auto expect_idle_counters = [&](const char* when) {
    qmoe::dev::WorkCounters c{};
    CUDA_CHECK(cudaMemcpy(&c, s.workspace.as<void>(), sizeof(c), cudaMemcpyDeviceToHost));
    EXPECT_EQ(c.tickets, 0u) << when;
    EXPECT_EQ(c.exits, 0u) << when;
    EXPECT_EQ(c.armed, qmoe::dev::kArmed) << when;
  };
  expect_idle_counters("prepared");
  std::vector<uint16_t> y_plain, y;
  CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
  CUDA_CHECK(cudaDeviceSynchronize());
  ASSERT_NO_FATAL_FAILURE(call(plain.as<void>()));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (ref != nullptr)
    ASSERT_NO_FATAL_FAILURE(check_y(s, act, *ref, "gemm", label, (name + "-rr").c_str()));
  read_y(&y_plain);
  for (int rep = 0; rep < 3; ++rep) {
    CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
    CUDA_CHECK(cudaDeviceSynchronize());
    ASSERT_NO_FATAL_FAILURE(call(s.workspace.as<void>()));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    if (rep == 0 && ref != nullptr)
      ASSERT_NO_FATAL_FAILURE(check_y(s, act, *ref, "gemm", label, (name + "-q").c_str()));
    read_y(&y);
    EXPECT_TRUE(y == y_plain) << "launch " << rep << ": on-demand order changed y";
    expect_idle_counters("after a launch");
  }
  // Graph replays, back to back, then one more plain launch on the same workspace.
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  call(s.workspace.as<void>());
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
  CUDA_CHECK(cudaDeviceSynchronize());
  for (int rep = 0; rep < 3; ++rep) CUDA_CHECK(cudaGraphLaunch(exec, stream));
  ASSERT_NO_FATAL_FAILURE(call(s.workspace.as<void>()));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  read_y(&y);
  EXPECT_TRUE(y == y_plain) << "graph replays: on-demand order changed y";
  expect_idle_counters("after graph replays");
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
}

TEST(GpuKernels, GroupedGemmDecodeHandsOutItemsOnDemandSmall) {
  // The decode kernel's items on demand (check_on_demand_order), formats of every tile size in
  // one bank, both decodes of the int experts.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  int sms = 0;
  ASSERT_NO_FATAL_FAILURE(sm_count(&sms));
  const std::vector<FormatSpec> f = parse_all({"int4:g128", "int3:g128", "int2:g64", "int8:g128",
                                               "int4:g32:sym", "bf16", "int3:g64", "int4:g128"});
  // A mean above 8 tokens: 16-token items of at most 2 strips per warp (choose_variant; one on
  // the integer decode), so at most 16 strips per item; the counts make 16 token blocks, so
  // n_strips = 4 * sms gives at least two rounds of items on the 2 * sms blocks.
  const std::vector<int32_t> counts = {40, 1, 48, 24, 0, 17, 33, 25};
  const int64_t n = 4 * sms * 16, k = 256;
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, n, k, counts, /*extra_rows=*/3, 9101, &s));
  const std::string label = label_of(f);
  for (const qmoe::IntegerDecode decode : {qmoe::IntegerDecode::kOff, qmoe::IntegerDecode::kOn})
    for (DType act : {DType::kBF16, DType::kFP16}) {
      std::vector<uint16_t> x;
      ASSERT_NO_FATAL_FAILURE(upload_x(act, 9102, &s, &x));
      std::vector<double> ref;
      ASSERT_NO_FATAL_FAILURE(reference(s, act, x, &ref));
      ASSERT_NO_FATAL_FAILURE(
          check_on_demand_order(s, act, {KernelChoice::kDecode, 16, decode}, &ref, label));
    }
}

TEST(GpuKernels, GroupedGemmTileKernelHandsOutLongItemsOnDemand) {
  // The wgmma tile kernel (sm_90a) hands out items on demand in launches of at least
  // kWgmmaQueueMinKTiles k-tiles per item (launch.cuh), else deals them round-robin
  // (and the mma.sync tile kernel always): K = 32 k-tiles here. 2/3/4-bit experts with 16 tokens
  // each take the 32-token tile at two blocks per SM, and n gives 8 experts x n / 256 items, more
  // than those 2 * sms blocks. Bit-identity with the static order only: the float64 reference of
  // this size takes long, and the static order's product is checked against it elsewhere.
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  print_header();
  int sms = 0;
  ASSERT_NO_FATAL_FAILURE(sm_count(&sms));
  static_assert(qmoe::dev::kWgmmaQueueMinKTiles * 128 == 4096, "K below is the bound");
  const std::vector<FormatSpec> f =
      parse_all({"int4:g128", "int3:g128", "int2:g128", "int4:g64", "int2:g64:sym", "int3:g128",
                 "int4:g128", "int2:g128"});
  const std::vector<int32_t> counts(8, 16);
  const int64_t n = 256 * ((2 * sms + 8) / 8), k = 4096;
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, n, k, counts, /*extra_rows=*/3, 9201, &s));
  const std::string label = label_of(f);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    std::vector<uint16_t> x;
    ASSERT_NO_FATAL_FAILURE(upload_x(act, 9202, &s, &x));
    ASSERT_NO_FATAL_FAILURE(
        check_on_demand_order(s, act, {KernelChoice::kPrefill, 16}, nullptr, label));
  }
}

// A bank view whose format_mask misses an expert's format (int8 under a mask without it) sizes
// the tile kernels' code slots without that expert's tiles: the tile launch traps on it (a
// sticky error) instead of leaving its rows unwritten with no error. In a child process, as the
// trap ends the CUDA context; the child exits 3 only where the call returned OK and the
// synchronisation after it reported the trap.
TEST(GpuKernelsDeathTest, ATileLaunchTrapsOnAnExpertItsViewsMaskMisses) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto run_with_a_mask_that_lies = [] {
    GemmSetup s;
    setup_gemm(parse_all({"int2:g128", "int8:g128"}), 64, 256, {40, 40}, /*extra_rows=*/0, 8101,
               &s);
    qmoe::GroupedGemmArgs a = args_for(s, DType::kBF16, {KernelChoice::kPrefill, 0});
    a.bank.format_mask &= ~qmoe::dev::kImmaInt8Mask;
    size_t bytes = s.workspace_bytes;
    const qmoe::Status st = qmoe::grouped_gemm(a, s.workspace.as<void>(), &bytes, nullptr);
    const cudaError_t sync = cudaDeviceSynchronize();
    std::fprintf(stderr, "call: %s; synchronize: %s\n", st.to_string().c_str(),
                 cudaGetErrorString(sync));
    std::exit(st.is_ok() && sync != cudaSuccess ? 3 : 0);
  };
  EXPECT_EXIT(run_with_a_mask_that_lies(), testing::ExitedWithCode(3), "synchronize: ");
}

TEST(GpuKernels, GroupedGemmRejectsBadArguments) {
  if (!qmoe::gpu_available()) GTEST_SKIP() << "no CUDA device";
  const std::vector<FormatSpec> f = parse_all({"int4:g32", "bf16"});
  GemmSetup s;
  ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 40, 256, {3, 5}, /*extra_rows=*/0, 8001, &s));
  CUDA_CHECK(cudaMemset(s.y.as<void>(), 0xFF, s.y.bytes()));
  const qmoe::GroupedGemmArgs good = args_for(s, DType::kBF16, {KernelChoice::kAuto, 16});
  void* ws = s.workspace.as<void>();

  auto expect_code = [&](const qmoe::GroupedGemmArgs& a, qmoe::StatusCode want, const char* what) {
    size_t bytes = s.workspace_bytes;
    const qmoe::Status st = qmoe::grouped_gemm(a, ws, &bytes, nullptr);
    EXPECT_EQ(st.code(), want) << what << ": " << st.to_string();
    EXPECT_FALSE(st.message().empty()) << what;
  };
  using qmoe::StatusCode;
  {
    qmoe::GroupedGemmArgs a = good;
    a.x.data = nullptr;
    expect_code(a, StatusCode::kInvalidArgument, "null x");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.y.data = nullptr;
    expect_code(a, StatusCode::kInvalidArgument, "null y");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.expert_offsets = nullptr;
    expect_code(a, StatusCode::kInvalidArgument, "null offsets");
  }
  {
    // An empty batch as frameworks hand it over (null data) is a no-op, not an error.
    qmoe::GroupedGemmArgs a = good;
    a.x.data = nullptr;
    a.y.data = nullptr;
    a.x.rows = a.y.rows = 0;
    size_t bytes = s.workspace_bytes;
    const qmoe::Status st = qmoe::grouped_gemm(a, ws, &bytes, nullptr);
    EXPECT_TRUE(st.is_ok()) << "empty batch with null x and y: " << st.to_string();
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.x.data = s.x.as<uint16_t>() + 1;
    expect_code(a, StatusCode::kInvalidArgument, "misaligned x");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.y.data = s.y.as<uint16_t>() + 4;
    expect_code(a, StatusCode::kInvalidArgument, "misaligned y");
  }
  for (int t : {-1, 65}) {
    qmoe::GroupedGemmArgs a = good;
    a.decode_max_tokens = t;
    expect_code(a, StatusCode::kInvalidArgument, "decode_max_tokens out of [0, 64]");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.x.rows = -1;
    expect_code(a, StatusCode::kInvalidArgument, "negative m");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.x.cols += 1;
    expect_code(a, StatusCode::kInvalidArgument, "x.cols != bank k");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.y.rows -= 1;
    expect_code(a, StatusCode::kInvalidArgument, "y.rows != x.rows");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.y.dtype = DType::kFP16;
    expect_code(a, StatusCode::kInvalidArgument, "x and y dtypes differ");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.x.row_stride = a.x.cols + 8;
    expect_code(a, StatusCode::kUnsupported, "strided x rows");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.bank.n = 0;
    expect_code(a, StatusCode::kInvalidArgument, "bank n = 0");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.bank.k = -256;
    expect_code(a, StatusCode::kInvalidArgument, "bank k < 0");
  }
  {
    // Within [1, 2^24] each, but n_pad * k_pad / 32 = 2^30: beyond the decode kernel's 32-bit
    // scale indices.
    qmoe::GroupedGemmArgs a = good;
    a.bank.n = int64_t{1} << 20;
    a.bank.k = int64_t{1} << 15;
    a.x.cols = a.bank.k;
    a.y.cols = a.bank.n;
    expect_code(a, StatusCode::kUnsupported, "2^30 scales per expert");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.bank.blob = nullptr;
    expect_code(a, StatusCode::kInvalidArgument, "null bank blob");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.bank.num_experts = 5000;
    expect_code(a, StatusCode::kUnsupported, "more experts than the schedule holds");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.integer_decode = static_cast<qmoe::IntegerDecode>(9);
    expect_code(a, StatusCode::kInvalidArgument, "unknown integer_decode");
  }
  {
    qmoe::GroupedGemmArgs a = good;
    a.tile_kernel = static_cast<qmoe::TileKernel>(3);
    expect_code(a, StatusCode::kInvalidArgument, "unknown tile_kernel");
  }
  {
    // The integer decode's digits of x need more workspace than the size query of a call
    // without them gave (int2 in the bank).
    const std::vector<FormatSpec> f2 = parse_all({"int2:g32", "bf16"});
    GemmSetup s2;
    ASSERT_NO_FATAL_FAILURE(setup_gemm(f2, 40, 256, {3, 5}, /*extra_rows=*/0, 8002, &s2));
    qmoe::GroupedGemmArgs off = args_for(s2, DType::kBF16, {KernelChoice::kDecode, 0});
    off.integer_decode = qmoe::IntegerDecode::kOff;
    qmoe::GroupedGemmArgs on = off;
    on.integer_decode = qmoe::IntegerDecode::kOn;
    size_t off_bytes = 0, on_bytes = 0;
    ASSERT_TRUE(qmoe::grouped_gemm(off, nullptr, &off_bytes, nullptr).is_ok());
    ASSERT_TRUE(qmoe::grouped_gemm(on, nullptr, &on_bytes, nullptr).is_ok());
    EXPECT_GT(on_bytes, off_bytes);
    size_t bytes = off_bytes;
    EXPECT_EQ(qmoe::grouped_gemm(on, s2.workspace.as<void>(), &bytes, nullptr).code(),
              StatusCode::kInvalidArgument)
        << "workspace sized without the integer decode";
  }
  {
    // The gated-SiLU epilogue: n = 40 is not a multiple of 16; an unknown epilogue.
    qmoe::GroupedGemmArgs a = good;
    a.epilogue = qmoe::Epilogue::kSiluMulInterleaved;
    a.y = qmoe::matrix_view(s.y.as<void>(), s.m_total, a.bank.n / 2, DType::kBF16);
    expect_code(a, StatusCode::kInvalidArgument, "gated epilogue with n % 16 != 0");
    a = good;
    a.epilogue = static_cast<qmoe::Epilogue>(7);
    expect_code(a, StatusCode::kInvalidArgument, "unknown epilogue");
  }
  {
    // n = 48: y must then be [m, 24], and a tile-kernel launch needs the product's workspace.
    GemmSetup s3;
    ASSERT_NO_FATAL_FAILURE(setup_gemm(f, 48, 256, {3, 5}, /*extra_rows=*/0, 8003, &s3));
    CUDA_CHECK(cudaMemset(s3.y.as<void>(), 0xFF, s3.y.bytes()));
    qmoe::GroupedGemmArgs a = args_for(s3, DType::kBF16, {KernelChoice::kPrefill, 0});
    a.epilogue = qmoe::Epilogue::kSiluMulInterleaved;
    size_t bytes = s3.workspace_bytes;
    EXPECT_EQ(qmoe::grouped_gemm(a, s3.workspace.as<void>(), &bytes, nullptr).code(),
              StatusCode::kInvalidArgument)
        << "gated epilogue with y [m, n]";
    a.y = qmoe::matrix_view(s3.y.as<void>(), s3.m_total, 24, DType::kBF16);
    size_t gated_bytes = 0, plain_bytes = 0;
    ASSERT_TRUE(qmoe::grouped_gemm(a, nullptr, &gated_bytes, nullptr).is_ok());
    qmoe::GroupedGemmArgs plain = args_for(s3, DType::kBF16, {KernelChoice::kPrefill, 0});
    ASSERT_TRUE(qmoe::grouped_gemm(plain, nullptr, &plain_bytes, nullptr).is_ok());
    EXPECT_GE(gated_bytes, plain_bytes + static_cast<size_t>(s3.m_total * 48 * 2));
    bytes = plain_bytes;
    EXPECT_EQ(qmoe::grouped_gemm(a, s3.workspace.as<void>(), &bytes, nullptr).code(),
              StatusCode::kInvalidArgument)
        << "gated epilogue through the tile kernel with a workspace sized without the product";
    std::vector<uint16_t> y(static_cast<size_t>(s3.m_total * 48));
    CUDA_CHECK(cudaMemcpy(y.data(), s3.y.as<void>(), y.size() * 2, cudaMemcpyDeviceToHost));
    int64_t written = 0;
    for (uint16_t v : y) written += v != kPoison;
    EXPECT_EQ(written, 0) << "a rejected gated call wrote y";
  }
  {
    // silu_mul_interleaved's own checks.
    const auto h = qmoe::matrix_view(static_cast<const void*>(s.y.as<void>()), 2, 32, DType::kBF16);
    const auto y = qmoe::matrix_view(s.x.as<void>(), 2, 16, DType::kBF16);
    EXPECT_TRUE(qmoe::silu_mul_interleaved(h, y, nullptr).is_ok()) << "the unedited call";
    CUDA_CHECK(cudaDeviceSynchronize());
    auto bad = [&](qmoe::ConstMatrixView hh, qmoe::MatrixView yy, qmoe::StatusCode want,
                   const char* what) {
      const qmoe::Status st = qmoe::silu_mul_interleaved(hh, yy, nullptr);
      EXPECT_EQ(st.code(), want) << what << ": " << st.to_string();
    };
    qmoe::ConstMatrixView h2 = h;
    h2.cols = 24;  // not a multiple of 16
    bad(h2, qmoe::matrix_view(s.x.as<void>(), 2, 12, DType::kBF16), StatusCode::kInvalidArgument,
        "h cols % 16 != 0");
    bad(h, qmoe::matrix_view(s.x.as<void>(), 2, 32, DType::kBF16), StatusCode::kInvalidArgument,
        "y cols != h cols / 2");
    bad(h, qmoe::matrix_view(s.x.as<void>(), 2, 16, DType::kFP16), StatusCode::kInvalidArgument,
        "dtypes differ");
    bad(h, qmoe::matrix_view(static_cast<void*>(nullptr), 2, 16, DType::kBF16),
        StatusCode::kInvalidArgument, "null y");
    bad(h, qmoe::matrix_view(s.x.as<uint16_t>() + 1, 2, 16, DType::kBF16),
        StatusCode::kInvalidArgument, "misaligned y");
    qmoe::ConstMatrixView h3 = h;
    h3.row_stride = 48;
    bad(h3, y, StatusCode::kUnsupported, "strided h");
  }
  {
    size_t bytes = 0;
    qmoe::GroupedGemmArgs a = good;
    a.decode_max_tokens = -1;
    EXPECT_EQ(qmoe::grouped_gemm(a, nullptr, &bytes, nullptr).code(), StatusCode::kInvalidArgument)
        << "size query of a bad problem";
    EXPECT_EQ(qmoe::grouped_gemm(good, ws, nullptr, nullptr).code(), StatusCode::kInvalidArgument)
        << "null workspace_bytes";
  }
  EXPECT_EQ(qmoe::prepare_workspace(nullptr, s.workspace_bytes, nullptr).code(),
            StatusCode::kInvalidArgument)
      << "prepare_workspace with a null workspace";
  EXPECT_EQ(qmoe::prepare_workspace(ws, 255, nullptr).code(), StatusCode::kInvalidArgument)
      << "prepare_workspace with fewer than 256 bytes";
  {
    // The kernels read the workspace's parts by 8- and 16-byte accesses: it must be 16-byte
    // aligned (checked before anything is launched or written).
    uint8_t* misaligned = s.workspace.as<uint8_t>() + 8;
    size_t bytes = s.workspace_bytes - 8;
    EXPECT_EQ(qmoe::grouped_gemm(good, misaligned, &bytes, nullptr).code(),
              StatusCode::kInvalidArgument)
        << "misaligned workspace";
    EXPECT_EQ(qmoe::prepare_workspace(misaligned, bytes, nullptr).code(),
              StatusCode::kInvalidArgument)
        << "prepare_workspace with a misaligned workspace";
  }
  {
    // A bank view naming trellis experts at a K of no whole 128-input blocks (their x is rotated
    // per block): malformed, refused before any launch.
    qmoe::GroupedGemmArgs a = good;
    a.bank.format_mask |= 1u << qmoe::dev::kFirstTrellisDecoder;
    a.bank.k = 200;
    a.x.cols = 200;
    expect_code(a, StatusCode::kInvalidArgument, "trellis experts at k % 128 != 0");
  }
  EXPECT_EQ(qmoe::dequantize_bank(good.bank, DType::kBF16, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument)
      << "dequantize_bank with null output";

  // Nothing was launched: y still holds the poison everywhere.
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> y(static_cast<size_t>(s.m_total * s.bank.n()));
  CUDA_CHECK(cudaMemcpy(y.data(), s.y.as<void>(), y.size() * 2, cudaMemcpyDeviceToHost));
  int64_t written = 0;
  for (uint16_t v : y) written += v != kPoison;
  EXPECT_EQ(written, 0) << "a rejected call wrote y";

  // The same arguments, valid, do run (the checks above are not vacuous).
  size_t bytes = s.workspace_bytes;
  const qmoe::Status st = qmoe::grouped_gemm(good, ws, &bytes, nullptr);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
