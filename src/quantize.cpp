// quantize_logical / quantize: input checks, dense rounding and the dispatch to RTN / GPTQ.
#include "qmoe/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "qmoe/numeric.hpp"
#include "src/formats/status_guard.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe {

namespace {

/// Index of the first non-finite value of x[0, len), or -1.
int64_t first_non_finite(const float* x, int64_t len) {
  int64_t first = std::numeric_limits<int64_t>::max();
#pragma omp parallel for reduction(min : first) schedule(static)
  for (int64_t i = 0; i < len; ++i)
    if (!std::isfinite(x[i])) first = std::min(first, i);
  return first == std::numeric_limits<int64_t>::max() ? -1 : first;
}

bool uses_mse_scales(const QuantizeOptions& opt) {
  return opt.method == QuantMethod::kRtnMse ||
         (opt.method == QuantMethod::kGptq && opt.gptq_mse_scales);
}

Status check_options(const QuantizeOptions& opt) {
  if (uses_mse_scales(opt) &&
      (opt.mse_grid < 1 || !(opt.mse_min_shrink > 0.0f && opt.mse_min_shrink <= 1.0f)))
    return invalid_argument("quantize: MSE search needs mse_grid >= 1 and 0 < mse_min_shrink <= 1");
  if (opt.method != QuantMethod::kGptq) {
    if (opt.method != QuantMethod::kRtnMinMax && opt.method != QuantMethod::kRtnMse)
      return invalid_argument("quantize: unknown method");
    return Status::ok();
  }
  if ((opt.hessian == nullptr) == (opt.calib == nullptr))
    return invalid_argument("quantize: GPTQ needs exactly one of hessian or calib");
  if (opt.calib != nullptr && opt.calib_rows <= 0)
    return invalid_argument("quantize: GPTQ calib_rows must be positive, got " +
                            std::to_string(opt.calib_rows));
  if (!(opt.damp >= 0.0f) || !std::isfinite(opt.damp))
    return invalid_argument("quantize: GPTQ damp must be finite and >= 0");
  if (opt.block_size < 1) return invalid_argument("quantize: GPTQ block_size must be >= 1");
  return Status::ok();
}

Status round_dense(const float* w, int64_t n, int64_t k, DType t, LogicalMatrix* out) {
  LogicalMatrix m;
  m.format = FormatSpec::dense(t);
  m.n = n;
  m.k = k;
  m.codes.resize(static_cast<size_t>(n * k));
  int64_t first_overflow = std::numeric_limits<int64_t>::max();
#pragma omp parallel for reduction(min : first_overflow) schedule(static)
  for (int64_t i = 0; i < n * k; ++i) {
    const uint16_t h = float_to_act_bits(t, w[i]);
    const float back = act_bits_to_float(t, h);
    if (std::isinf(back)) first_overflow = std::min(first_overflow, i);
    m.codes[i] = h;
  }
  if (first_overflow != std::numeric_limits<int64_t>::max())
    return out_of_range("quantize: weight " + std::to_string(w[first_overflow]) + " at (" +
                        std::to_string(first_overflow / k) + ", " +
                        std::to_string(first_overflow % k) + ") overflows " + dtype_name(t));
  *out = std::move(m);
  return Status::ok();
}

Status quantize_checked(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                        const QuantizeOptions& opt, LogicalMatrix* out) {
  if (out == nullptr) return invalid_argument("quantize: null output");
  if (w == nullptr) return invalid_argument("quantize: null weights");
  PackedLayout layout;  // checks the format, the dims and K % group
  QMOE_RETURN_IF_ERROR(packed_layout(f, n, k, &layout));
  QMOE_RETURN_IF_ERROR(check_options(opt));
  const int64_t bad = first_non_finite(w, n * k);
  if (bad >= 0)
    return invalid_argument("quantize: weight (" + std::to_string(bad / k) + ", " +
                            std::to_string(bad % k) + ") is " + std::to_string(w[bad]));

  if (f.kind == FormatKind::kDense) return round_dense(w, n, k, f.dense_dtype, out);
  quant::GroupSearch search;
  search.bits = f.bits;
  search.symmetric = f.symmetric;
  search.mse = uses_mse_scales(opt);
  search.mse_grid = opt.mse_grid;
  search.mse_min_shrink = opt.mse_min_shrink;
  if (f.kind == FormatKind::kTrellis || f.kind == FormatKind::kVector) {
    const bool trellis = f.kind == FormatKind::kTrellis;
    if (opt.method == QuantMethod::kGptq && opt.act_order)
      return unsupported("quantize: GPTQ with act_order is not implemented for " +
                         std::string(trellis ? "trellis" : "vector") + " formats (" +
                         f.to_string() + "): they quantize 128 consecutive inputs at a time");
    const bool mse = opt.method == QuantMethod::kRtnMse;
    if (opt.method != QuantMethod::kGptq)
      return trellis ? quant::quantize_trellis(w, n, k, f, mse, out)
                     : quant::quantize_vector(w, n, k, f, mse, out);
  }
  if (opt.method == QuantMethod::kGptq) return quant::quantize_gptq(w, n, k, f, search, opt, out);
  // A LUT table by k-means already minimises squared error: both RTN methods fit it so.
  if (f.kind == FormatKind::kLut) return quant::quantize_lut_rtn(w, n, k, f, out);
  return quant::quantize_rtn(w, n, k, f, search, out);
}

}  // namespace

Status quantize_logical(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                        const QuantizeOptions& opt, LogicalMatrix* out) {
  return detail::run_catching("quantize", [&] { return quantize_checked(w, n, k, f, opt, out); });
}

Status quantize(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                const QuantizeOptions& opt, PackedMatrix* out) {
  return detail::run_catching("quantize", [&] {
    if (out == nullptr) return invalid_argument("quantize: null output");
    LogicalMatrix logical;
    QMOE_RETURN_IF_ERROR(quantize_checked(w, n, k, f, opt, &logical));
    return pack(logical, out);
  });
}

Status interleave_gate_up(const float* w13, int64_t rows, int64_t cols, std::vector<float>* out) {
  return detail::run_catching("interleave_gate_up", [&] {
    if (w13 == nullptr || out == nullptr)
      return invalid_argument("interleave_gate_up: null pointer");
    if (rows < 16 || rows % 16 != 0 || cols < 1)
      return invalid_argument(
          "interleave_gate_up: needs rows a positive multiple of 16 and "
          "cols >= 1, got [" +
          std::to_string(rows) + ", " + std::to_string(cols) + "]");
    const int64_t half = rows / 2;
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      // Row r of the result: 8-row block r / 8, gate (even block) or up (odd), row r % 8 of it.
      const int64_t src = (r / 16) * 8 + r % 8 + ((r / 8) % 2 == 1 ? half : 0);
      std::copy(w13 + src * cols, w13 + (src + 1) * cols, w.begin() + r * cols);
    }
    *out = std::move(w);
    return Status::ok();
  });
}

}  // namespace qmoe
