// `qmoe demo` and `qmoe inspect`.
#include "tools/demo.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "qmoe/cpu_ref.hpp"
#include "qmoe/gpu.hpp"
#include "qmoe/numeric.hpp"
#include "qmoe/quantize.hpp"

#if defined(QMOE_WITH_CUDA)
#include <cuda_runtime_api.h>
#endif

namespace qmoe::tools {

namespace {

// The embedded layer: Mixtral's structure (8 experts, top-2, SiLU-gated FFN) scaled down so
// that the CPU reference runs every format in seconds.
struct DemoShape {
  int64_t hidden = 256, inter = 512, experts = 8, top_k = 2, tokens = 48;
};
constexpr uint32_t kDemoSeed = 20261123;

std::vector<std::string> split_csv(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t pos = s.find(',', start);
    if (pos == std::string::npos) pos = s.size();
    if (pos > start) out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  return out;
}

// Weights ~ N(0, 1/fan_in) with a sprinkle of 8x outliers, as real checkpoints have.
std::vector<float> synthetic_weights(std::mt19937& rng, int64_t rows, int64_t cols) {
  std::normal_distribution<float> normal(0.f, 1.f / std::sqrt(static_cast<float>(cols)));
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& v : w) v = normal(rng) * (u(rng) < 0.002f ? 8.f : 1.f);
  return w;
}

struct Routing {
  std::vector<int32_t> offsets;    // [E+1]
  std::vector<int64_t> row_token;  // sorted row -> token
  std::vector<float> row_weight;   // sorted row -> routing weight
};

// Softmax top-k with renormalisation, rows sorted by expert (stable by token).
Routing route(const std::vector<float>& x, const std::vector<float>& router, const DemoShape& s) {
  std::vector<std::vector<std::pair<int64_t, float>>> per_expert(static_cast<size_t>(s.experts));
  for (int64_t t = 0; t < s.tokens; ++t) {
    std::vector<float> logit(static_cast<size_t>(s.experts));
    for (int64_t e = 0; e < s.experts; ++e) {
      double acc = 0;
      for (int64_t h = 0; h < s.hidden; ++h)
        acc += double(x[t * s.hidden + h]) * router[e * s.hidden + h];
      logit[e] = static_cast<float>(acc);
    }
    std::vector<int64_t> idx(static_cast<size_t>(s.experts));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + s.top_k, idx.end(),
                      [&](int64_t a, int64_t b) { return logit[a] > logit[b]; });
    // Softmax restricted to the top-k equals full softmax renormalised over them.
    float denom = 0;
    for (int64_t j = 0; j < s.top_k; ++j) denom += std::exp(logit[idx[j]] - logit[idx[0]]);
    for (int64_t j = 0; j < s.top_k; ++j)
      per_expert[idx[j]].push_back({t, std::exp(logit[idx[j]] - logit[idx[0]]) / denom});
  }
  Routing r;
  r.offsets.push_back(0);
  for (auto& rows : per_expert) {
    for (auto& [t, w] : rows) {
      r.row_token.push_back(t);
      r.row_weight.push_back(w);
    }
    r.offsets.push_back(static_cast<int32_t>(r.row_token.size()));
  }
  return r;
}

// y[m, n] = grouped GEMM, rounded to bf16 (as a kernel would write it); with `gated`, the bank's
// rows interleave gate and up (interleave_gate_up) and y [m, n / 2] = SiLU(gate) * up, the
// activation fused in the GPU kernel (Epilogue::kSiluMulInterleaved). GPU when available.
Status run_grouped_gemm(const ExpertBank& bank, const std::vector<uint16_t>& x, int64_t m,
                        const std::vector<int32_t>& offsets, bool use_gpu, bool gated,
                        std::vector<float>* y) {
  const int64_t n = gated ? bank.n() / 2 : bank.n();
  y->assign(static_cast<size_t>(m * n), 0.f);
  if (!use_gpu) {
    std::vector<double> yd;
    QMOE_RETURN_IF_ERROR(ref::grouped_gemm(bank, DType::kBF16, x.data(), m, offsets.data(), &yd));
    if (gated) {
      std::vector<uint16_t> h;
      QMOE_RETURN_IF_ERROR(ref::silu_and_mul_interleaved(DType::kBF16, yd.data(), m, n, &h));
      for (size_t i = 0; i < h.size(); ++i) (*y)[i] = bf16_to_float(h[i]);
      return Status::ok();
    }
    for (size_t i = 0; i < yd.size(); ++i)
      (*y)[i] = bf16_to_float(float_to_bf16(static_cast<float>(yd[i])));
    return Status::ok();
  }
#if defined(QMOE_WITH_CUDA)
  DeviceExpertBank dbank;
  QMOE_RETURN_IF_ERROR(DeviceExpertBank::upload(bank, &dbank));
  void *dx = nullptr, *dy = nullptr, *doff = nullptr;
  std::vector<uint16_t> yh(static_cast<size_t>(m * n));
  auto cuda = [](cudaError_t e) {
    return e == cudaSuccess ? Status::ok() : Status(StatusCode::kCudaError, cudaGetErrorString(e));
  };
  Status st = cuda(cudaMalloc(&dx, x.size() * 2));
  if (st.is_ok()) st = cuda(cudaMalloc(&dy, yh.size() * 2));
  if (st.is_ok()) st = cuda(cudaMalloc(&doff, offsets.size() * 4));
  if (st.is_ok()) st = cuda(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  if (st.is_ok())
    st = cuda(cudaMemcpy(doff, offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice));
  if (st.is_ok()) {
    GroupedGemmArgs a;
    a.bank = dbank.view();
    a.x = matrix_view(static_cast<const void*>(dx), m, bank.k(), DType::kBF16);
    a.y = matrix_view(dy, m, n, DType::kBF16);
    a.expert_offsets = static_cast<const int32_t*>(doff);
    if (gated) a.epilogue = Epilogue::kSiluMulInterleaved;
    size_t ws_bytes = 0;
    st = grouped_gemm(a, nullptr, &ws_bytes, nullptr);
    void* ws = nullptr;
    if (st.is_ok() && ws_bytes > 0) st = cuda(cudaMalloc(&ws, ws_bytes));
    if (st.is_ok()) st = prepare_workspace(ws, ws_bytes, nullptr);
    if (st.is_ok()) st = grouped_gemm(a, ws, &ws_bytes, nullptr);
    if (st.is_ok()) st = cuda(cudaDeviceSynchronize());
    if (st.is_ok()) st = cuda(cudaMemcpy(yh.data(), dy, yh.size() * 2, cudaMemcpyDeviceToHost));
    if (ws) cudaFree(ws);
  }
  cudaFree(dx);
  cudaFree(dy);
  cudaFree(doff);
  QMOE_RETURN_IF_ERROR(st);
  for (size_t i = 0; i < yh.size(); ++i) (*y)[i] = bf16_to_float(yh[i]);
  return Status::ok();
#else
  return unsupported("built without CUDA");
#endif
}

struct LayerWeights {
  // Per expert: w13 [2I, H] with gate and up rows interleaved by 8 (interleave_gate_up), w2 [H, I].
  std::vector<std::vector<float>> w13, w2;
  std::vector<float> router;  // [E, H]
};

struct FormatResult {
  double weight_mse = 0, output_nmse = 0;
};

Status quantize_bank(const std::vector<std::vector<float>>& ws, int64_t n, int64_t k,
                     const FormatSpec& f, const QuantizeOptions& opt, ExpertBank* bank,
                     double* sq_err, double* count) {
  std::vector<PackedMatrix> experts;
  for (const auto& w : ws) {
    PackedMatrix pm;
    QMOE_RETURN_IF_ERROR(quantize(w.data(), n, k, f, opt, &pm));
    std::vector<float> back;
    QMOE_RETURN_IF_ERROR(ref::dequantize(pm, &back));
    for (size_t i = 0; i < w.size(); ++i) *sq_err += double(w[i] - back[i]) * (w[i] - back[i]);
    *count += static_cast<double>(w.size());
    experts.push_back(std::move(pm));
  }
  return ExpertBank::create(std::move(experts), bank);
}

// The expert FFN of the layer in format f: y[T, H].
Status run_layer(const LayerWeights& lw, const DemoShape& s, const Routing& r,
                 const std::vector<uint16_t>& x_sorted, const FormatSpec& f,
                 const QuantizeOptions& opt13, const QuantizeOptions& opt2, bool use_gpu,
                 std::vector<double>* y, double* weight_mse) {
  ExpertBank b13, b2;
  double sq = 0, cnt = 0;
  QMOE_RETURN_IF_ERROR(quantize_bank(lw.w13, 2 * s.inter, s.hidden, f, opt13, &b13, &sq, &cnt));
  QMOE_RETURN_IF_ERROR(quantize_bank(lw.w2, s.hidden, s.inter, f, opt2, &b2, &sq, &cnt));
  *weight_mse = sq / cnt;
  const int64_t m = static_cast<int64_t>(r.row_token.size());
  // The gate/up GEMM writes SiLU(gate) * up itself: its bank's rows interleave the two.
  std::vector<float> h;
  QMOE_RETURN_IF_ERROR(run_grouped_gemm(b13, x_sorted, m, r.offsets, use_gpu, true, &h));
  std::vector<uint16_t> act(h.size());
  for (size_t i = 0; i < h.size(); ++i) act[i] = float_to_bf16(h[i]);
  std::vector<float> o;
  QMOE_RETURN_IF_ERROR(run_grouped_gemm(b2, act, m, r.offsets, use_gpu, false, &o));
  y->assign(static_cast<size_t>(s.tokens * s.hidden), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < s.hidden; ++j)
      (*y)[r.row_token[i] * s.hidden + j] += double(r.row_weight[i]) * o[i * s.hidden + j];
  return Status::ok();
}

void print_demo_help() {
  std::printf(
      "usage: qmoe demo [--formats LIST] [--method rtn|mse|gptq] [--cpu]\n\n"
      "Quantizes an embedded synthetic MoE layer (8 experts, top-2, H=256, I=512, 48 tokens,\n"
      "seeded) in every format, runs its expert FFN through the grouped GEMM (GPU if present,\n"
      "else the CPU reference) and prints: format, bits/weight, weight MSE, output NMSE vs the\n"
      "bf16 layer, and where it ran. Trellis formats take several seconds each (Viterbi).\n\n"
      "  --formats LIST   comma-separated formats (default: all, see `qmoe inspect --formats`)\n"
      "  --method M       quantizer: rtn (min-max, default), mse (clipping search), gptq\n"
      "                   (Hessian from the layer's own routed tokens plus random calibration)\n"
      "  --cpu            use the CPU reference even if a GPU is present\n");
}

}  // namespace

int run_demo(int argc, char** argv) {
  std::vector<FormatSpec> formats = all_formats();
  QuantizeOptions opt;
  bool force_cpu = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return print_demo_help(), 0;
    if (a == "--cpu") {
      force_cpu = true;
    } else if ((a == "--formats" || a == "--method") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--formats") {
        formats.clear();
        for (const std::string& s : split_csv(v)) {
          FormatSpec f;
          Status st = FormatSpec::parse(s, &f);
          if (!st.is_ok())
            return std::fprintf(stderr, "qmoe demo: %s\n", st.to_string().c_str()), 2;
          formats.push_back(f);
        }
        if (formats.empty()) return std::fprintf(stderr, "qmoe demo: --formats list is empty\n"), 2;
      } else if (v == "rtn") {
        opt.method = QuantMethod::kRtnMinMax;
      } else if (v == "mse") {
        opt.method = QuantMethod::kRtnMse;
      } else if (v == "gptq") {
        opt.method = QuantMethod::kGptq;
      } else {
        return std::fprintf(stderr, "qmoe demo: unknown method '%s'\n", v.c_str()), 2;
      }
    } else {
      std::fprintf(stderr, "qmoe demo: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }
  const DemoShape s;
  std::mt19937 rng(kDemoSeed);
  LayerWeights lw;
  for (int64_t e = 0; e < s.experts; ++e) {
    std::vector<float> w13;
    const Status woven = interleave_gate_up(synthetic_weights(rng, 2 * s.inter, s.hidden).data(),
                                            2 * s.inter, s.hidden, &w13);
    if (!woven.is_ok())
      return std::fprintf(stderr, "qmoe demo: %s\n", woven.to_string().c_str()), 1;
    lw.w13.push_back(std::move(w13));
    lw.w2.push_back(synthetic_weights(rng, s.hidden, s.inter));
  }
  lw.router = synthetic_weights(rng, s.experts, s.hidden);
  std::vector<float> x = synthetic_weights(rng, s.tokens, s.hidden);
  for (float& v : x) v *= std::sqrt(static_cast<float>(s.hidden));  // unit-variance tokens
  const Routing r = route(x, lw.router, s);
  std::vector<uint16_t> x_sorted(r.row_token.size() * static_cast<size_t>(s.hidden));
  for (size_t i = 0; i < r.row_token.size(); ++i)
    for (int64_t j = 0; j < s.hidden; ++j)
      x_sorted[i * s.hidden + j] = float_to_bf16(x[r.row_token[i] * s.hidden + j]);

  // GPTQ needs calibration inputs of each projection's K: the layer's own tokens plus
  // Gaussian rows for gate/up (K = H), Gaussian rows for down (K = I).
  QuantizeOptions opt13 = opt, opt2 = opt;
  std::vector<float> calib13(x), calib2;
  if (opt.method == QuantMethod::kGptq) {
    std::normal_distribution<float> nd(0.f, 1.f);
    // Several times K rows: with rows ~ K the Hessian is nearly singular and GPTQ overfits.
    const int64_t rows13 = 8 * s.hidden, rows2 = 8 * s.inter;
    for (int64_t i = 0; i < rows13 * s.hidden; ++i) calib13.push_back(nd(rng));
    for (int64_t i = 0; i < rows2 * s.inter; ++i) calib2.push_back(nd(rng));
    opt13.calib = calib13.data();
    opt13.calib_rows = static_cast<int64_t>(calib13.size()) / s.hidden;
    opt2.calib = calib2.data();
    opt2.calib_rows = rows2;
  }
  const bool use_gpu = !force_cpu && gpu_available();
  std::printf("qmoe demo: synthetic MoE layer E=%lld top-%lld H=%lld I=%lld tokens=%lld, %s\n",
              (long long)s.experts, (long long)s.top_k, (long long)s.hidden, (long long)s.inter,
              (long long)s.tokens, use_gpu ? "GPU grouped GEMM" : "CPU reference grouped GEMM");
  std::vector<double> y_ref;
  double mse_ref = 0;
  Status st = run_layer(lw, s, r, x_sorted, FormatSpec::dense(DType::kBF16), QuantizeOptions{},
                        QuantizeOptions{}, use_gpu, &y_ref, &mse_ref);
  if (!st.is_ok()) return std::fprintf(stderr, "qmoe demo: %s\n", st.to_string().c_str()), 1;
  double ref_sq = 0;
  for (double v : y_ref) ref_sq += v * v;
  std::printf("%-16s %12s %14s %20s  %s\n", "format", "bits/weight", "weight MSE",
              "output NMSE vs bf16", "ran on");
  bool cpu_fallback = false;
  for (const FormatSpec& f : formats) {
    std::vector<double> y;
    double wmse = 0;
    // Formats without a device decoder (docs/formats.md §1) run on the CPU reference.
    const bool on_gpu = use_gpu && has_device_decoder(f);
    cpu_fallback = cpu_fallback || (use_gpu && !on_gpu);
    st = run_layer(lw, s, r, x_sorted, f, opt13, opt2, on_gpu, &y, &wmse);
    if (!st.is_ok()) {
      std::printf("%-16s error: %s\n", f.to_string().c_str(), st.to_string().c_str());
      return 1;
    }
    double d = 0;
    for (size_t i = 0; i < y.size(); ++i) d += (y[i] - y_ref[i]) * (y[i] - y_ref[i]);
    // Bits/weight of the whole layer: gate/up has K = H, down K = I (matters per-channel).
    const double w13 = 2.0 * s.inter * s.hidden, w2 = double(s.hidden) * s.inter;
    const double bpw =
        (f.bits_per_weight(s.hidden) * w13 + f.bits_per_weight(s.inter) * w2) / (w13 + w2);
    std::printf("%-16s %12.4f %14.4e %20.4e  %s\n", f.to_string().c_str(), bpw, wmse, d / ref_sq,
                on_gpu    ? "GPU"
                : use_gpu ? "CPU reference*"
                          : "CPU reference");
  }
  if (cpu_fallback)
    std::printf("* no device decoder for this format yet: its layer ran on the CPU reference\n");
  return 0;
}

int run_inspect(int argc, char** argv) {
  bool list_formats = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: qmoe inspect --formats [--k K]\n\n"
          "  --formats   list every supported weight format with its exact bits/weight\n"
          "              (scales and zeros included; per-channel formats at K inputs)\n"
          "  --k K       row length used for per-channel formats (default 4096)\n");
      return 0;
    }
    if (a == "--formats")
      list_formats = true;
    else if (a == "--k" && i + 1 < argc)
      ++i;
    else
      return std::fprintf(stderr, "qmoe inspect: unknown argument '%s'\n", a.c_str()), 2;
  }
  if (!list_formats) return std::fprintf(stderr, "qmoe inspect: nothing to do (see --help)\n"), 2;
  int64_t k = 4096;
  for (int i = 0; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "--k") continue;
    char* end = nullptr;
    const long long v = std::strtoll(argv[i + 1], &end, 10);
    if (end == argv[i + 1] || *end != '\0' || v <= 0 || v > (1 << 24))
      return std::fprintf(stderr, "qmoe inspect: --k wants an integer in 1..16777216, got '%s'\n",
                          argv[i + 1]),
             2;
    k = v;
  }
  std::printf("%-16s %12s %12s %s\n", "format", "bits/weight", "tile bytes", "layout");
  for (const FormatSpec& f : all_formats()) {
    PackedLayout L;
    const int64_t kk = f.group_size > 0 ? (k + f.group_size - 1) / f.group_size * f.group_size : k;
    Status st = packed_layout(f, kTileRows, kk, &L);
    if (!st.is_ok()) return std::fprintf(stderr, "%s\n", st.to_string().c_str()), 1;
    std::string layout = "planes ";
    for (int b : plane_bits(f)) layout += (layout.size() > 7 ? "+" : "") + std::to_string(b);
    if (f.kind == FormatKind::kTrellis) layout = "row streams";
    if (f.kind == FormatKind::kVector)  // docs/formats.md §2.2: 4 + 2, 8, 8 + 2, 8 + 4 bits
      layout = std::to_string(f.bits) + "-bit codes per 4 weights, planes " +
               (f.bits < 8    ? "4+2"
                : f.bits == 8 ? "8"
                              : "8+" + std::to_string(f.bits - 8));
    if (f.kind == FormatKind::kLut) layout += ", per-row table";
    std::printf("%-16s %12.6f %12lld %s%s\n", f.to_string().c_str(), f.bits_per_weight(kk),
                (long long)L.tile_bytes, layout.c_str(),
                has_device_decoder(f) ? "" : " (CPU only)");
  }
  return 0;
}

}  // namespace qmoe::tools
