// Group scale/zero search (min-max and MSE shrink) and round-to-nearest quantization.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "qmoe/numeric.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe::quant {

namespace {

/// Smallest fp16 value >= v (v > 0). Rounding the scale up, never down, keeps the whole
/// range on the grid. False when that overflows fp16.
bool fp16_at_least(double v, uint16_t* bits) {
  uint16_t h = float_to_fp16(static_cast<float>(v));
  if (static_cast<double>(fp16_to_float(h)) < v) ++h;  // next fp16 up (v > 0: sign bit clear)
  if ((h & 0x7c00u) == 0x7c00u) return false;
  *bits = h;
  return true;
}

/// v rounded to the nearest integer, ties to even, in any floating-point rounding mode:
/// std::nearbyint follows the calling thread's (under a caller's FE_UPWARD every code rounded
/// up; OpenMP workers keep a mode of their own). floor is exact, and so is a - floor(a) for
/// a >= 0 (below 1 floor(a) is 0; from 1 on floor(a) is within a factor 2 of a, Sterbenz).
double round_half_even(double v) {
  const double a = std::fabs(v), f = std::floor(a), d = a - f;
  const bool up = d > 0.5 || (d == 0.5 && std::fmod(f, 2.0) != 0.0);
  return std::copysign(up ? f + 1.0 : f, v);
}

/// Parameters whose grid covers [lo, hi], lo <= 0 <= hi. Asymmetric: s = (hi - lo) / (2^b - 1),
/// z = round(-lo / s). Symmetric (z = 2^(b-1), codes -2^(b-1)..2^(b-1)-1 around it): the
/// smallest s covering both ends, max(-lo / 2^(b-1), hi / (2^(b-1) - 1)); this never clips
/// and is never coarser than the textbook absmax / (2^(b-1) - 1).
bool params_for_range(double lo, double hi, int bits, bool symmetric, GroupParams* p) {
  if (lo == 0.0 && hi == 0.0) {
    // All-zero group: any scale decodes it exactly; GPTQ's reference picks [-1, 1].
    lo = -1.0;
    hi = 1.0;
  }
  const int max_code = (1 << bits) - 1, half = 1 << (bits - 1);
  const double s = symmetric ? std::max(-lo / half, hi / (half - 1)) : (hi - lo) / max_code;
  if (!fp16_at_least(s, &p->scale_bits)) return false;
  p->scale = fp16_to_float(p->scale_bits);
  p->zero = symmetric ? half
                      : static_cast<int>(std::clamp(round_half_even(-lo / p->scale), 0.0,
                                                    static_cast<double>(max_code)));
  return true;
}

double squared_error(const double* x, int64_t len, const GroupParams& p, int max_code) {
  double e = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double d = x[i] - dequantize_value(quantize_value(x[i], p, max_code), p);
    e += d * d;
  }
  return e;
}

}  // namespace

int quantize_value(double w, const GroupParams& p, int max_code) {
  const double q = round_half_even(w / p.scale) + p.zero;
  return static_cast<int>(std::clamp(q, 0.0, static_cast<double>(max_code)));
}

float dequantize_value(int q, const GroupParams& p) {
  return static_cast<float>(q - p.zero) * p.scale;
}

bool find_group_params(const double* x, int64_t len, const GroupSearch& search, GroupParams* p) {
  double lo = 0.0, hi = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (!params_for_range(lo, hi, search.bits, search.symmetric, p)) return false;
  if (!search.mse) return true;

  const int max_code = (1 << search.bits) - 1;
  double best = squared_error(x, len, *p, max_code);
  // Shrink factors 1 - i/grid >= min_shrink; the epsilon keeps an exact end point in.
  const int steps =
      static_cast<int>(std::floor((1.0 - search.mse_min_shrink) * search.mse_grid + 1e-9));
  for (int i = 1; i <= steps && best > 0.0; ++i) {
    const double shrink = 1.0 - static_cast<double>(i) / search.mse_grid;
    GroupParams cand;
    if (!params_for_range(shrink * lo, shrink * hi, search.bits, search.symmetric, &cand)) continue;
    const double e = squared_error(x, len, cand, max_code);
    if (e < best) {
      best = e;
      *p = cand;
    }
  }
  return true;
}

Status quantize_rtn(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                    const GroupSearch& search, LogicalMatrix* out) {
  const int64_t g = f.group_len(k), groups = k / g;
  const int max_code = (1 << f.bits) - 1;
  LogicalMatrix m = LogicalMatrix::sized(f, n, k);

  std::atomic<int64_t> overflow_group{-1};
  // One group of scratch per thread, allocated here: a throw inside the region would terminate.
  std::vector<double> scratch(static_cast<size_t>(omp_get_max_threads() * g));
#pragma omp parallel
  {
    double* x = scratch.data() + omp_get_thread_num() * g;
#pragma omp for schedule(static)
    for (int64_t rg = 0; rg < n * groups; ++rg) {
      const int64_t row = rg / groups, col0 = rg % groups * g;
      const float* src = w + row * k + col0;
      for (int64_t i = 0; i < g; ++i) x[i] = src[i];
      GroupParams p;
      if (!find_group_params(x, g, search, &p)) {
        keep_first(&overflow_group, rg);
        continue;
      }
      uint16_t* codes = m.codes.data() + row * k + col0;
      for (int64_t i = 0; i < g; ++i)
        codes[i] = static_cast<uint16_t>(quantize_value(x[i], p, max_code));
      m.scales[rg] = p.scale_bits;
      if (!f.symmetric) m.zeros[rg] = static_cast<uint8_t>(p.zero);
    }
  }
  const int64_t bad = overflow_group.load();
  if (bad >= 0)
    return out_of_range("quantize: the scale of row " + std::to_string(bad / groups) + ", group " +
                        std::to_string(bad % groups) + " overflows fp16 (weights too large for " +
                        f.to_string() + ")");
  *out = std::move(m);
  return Status::ok();
}

}  // namespace qmoe::quant
