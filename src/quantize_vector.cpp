// Vector formats (docs/formats.md §1): four weights of a row, columns 16u + 2t + {0, 1, 8, 9},
// share one code into a fixed codebook of 2^(bits - 4) magnitude vectors times 16 sign patterns,
// scaled by one fp16 value per 128 inputs. The codebook is Lloyd's on |x| for x ~ N(0, I_4), so a
// block scaled to unit RMS is what it fits; the nearest code of a vector is its signs and the
// nearest magnitude vector to |x| / s.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "qmoe/numeric.hpp"
#include "src/formats/vq_codebook.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe::quant {

namespace {

constexpr int kBlock = kTileCols;                     // inputs per scale
constexpr int kVectors = kBlock / kVectorDim;         // 32 a block
constexpr int kDimColumn[kVectorDim] = {0, 1, 8, 9};  // column of dimension d after 16u + 2t
// The MSE method's scale search: kScaleSteps + 1 multiples of the block's RMS, evenly spaced.
constexpr double kScaleLow = 0.4, kScaleHigh = 1.3;
constexpr int kScaleSteps = 36;

/// First column of vector v of a block: sub-tile u = v / 4, t = v % 4.
int vector_column(int v) {
  return 16 * (v / 4) + 2 * (v % 4);
}

/// The magnitude table of the format with `bits` code bits (6, 8, 10, 12), widened exactly to
/// float, built once for every width (fixed arrays: row decodes call this inside OpenMP regions,
/// where nothing may allocate).
const float* widened_codebook(int bits) {
  constexpr int kMaxValues = (1 << (12 - detail::kVectorSignBits)) * kVectorDim;
  static const auto tables = [] {
    std::array<std::array<float, kMaxValues>, 4> t{};
    for (int i = 0; i < 4; ++i) {
      const int width = 6 + 2 * i;
      const uint16_t* table = detail::vq_codebook(width);
      for (int j = 0; j < (kVectorDim << (width - detail::kVectorSignBits)); ++j)
        t[i][j] = fp16_to_float(table[j]);
    }
    return t;
  }();
  return tables[static_cast<size_t>((bits - 6) / 2)].data();
}

}  // namespace

VectorSearch::VectorSearch(int bits)
    : entries_(1 << (bits - detail::kVectorSignBits)),
      sign_shift_(bits - detail::kVectorSignBits),
      magnitude_(widened_codebook(bits)) {}

int VectorSearch::nearest_code(const double* x, double s) const {
  double a[kVectorDim];
  int signs = 0;
  for (int d = 0; d < kVectorDim; ++d) {
    a[d] = std::fabs(x[d]) / s;
    signs |= (x[d] < 0.0) << d;
  }
  int best = 0;
  double best_err = 0.0;
  for (int m = 0; m < entries_; ++m) {
    const float* v = magnitude_ + m * kVectorDim;
    double e = 0.0;
    for (int d = 0; d < kVectorDim; ++d) e += (a[d] - v[d]) * (a[d] - v[d]);
    if (m == 0 || e < best_err) best_err = e, best = m;
  }
  return best | signs << sign_shift_;
}

float VectorSearch::code_value(int code, int d, float s) const {
  const float m = magnitude_[(code & (entries_ - 1)) * kVectorDim + d];
  return ((code >> (sign_shift_ + d)) & 1 ? -m : m) * s;
}

double VectorSearch::assign(const double* w, float s, int* codes) const {
  double error = 0.0;
  for (int v = 0; v < kVectors; ++v) {
    double x[kVectorDim];
    for (int d = 0; d < kVectorDim; ++d) x[d] = w[vector_column(v) + kDimColumn[d]];
    codes[v] = nearest_code(x, s);
    for (int d = 0; d < kVectorDim; ++d) {
      const double e = x[d] - code_value(codes[v], d, s);
      error += e * e;
    }
  }
  return error;
}

bool VectorSearch::quantize_block(const double* w, bool mse, uint16_t* codes,
                                  uint16_t* scale_bits) {
  double sum_sq = 0.0;
  for (int t = 0; t < kBlock; ++t) sum_sq += w[t] * w[t];
  int best[kVectors] = {};
  if (!fp16_scale(std::sqrt(sum_sq / kBlock), scale_bits)) return false;
  // A block of zeros, or one too small for an fp16 scale, decodes to (signed) zeros: scale 0.
  if (*scale_bits != 0) {
    double error = assign(w, fp16_to_float(*scale_bits), best);
    // A heavy-tailed block's RMS overstates its inliers' spread: try smaller and larger scales.
    const double rms = fp16_to_float(*scale_bits);
    for (int i = 0; mse && i <= kScaleSteps; ++i) {
      uint16_t trial_bits = 0;
      if (!fp16_scale(rms * (kScaleLow + (kScaleHigh - kScaleLow) * i / kScaleSteps),
                      &trial_bits) ||
          trial_bits == 0 || trial_bits == *scale_bits)
        continue;
      int trial[kVectors];
      const double e = assign(w, fp16_to_float(trial_bits), trial);
      if (!(e < error)) continue;
      error = e;
      *scale_bits = trial_bits;
      std::copy(trial, trial + kVectors, best);
    }
    // Least-squares scale of the chosen codes: sum |w| M / sum M^2 over the block (the signs
    // already agree), kept while it lowers the error.
    for (int round = 0; mse && round < 8; ++round) {
      double wm = 0.0, mm = 0.0;
      for (int v = 0; v < kVectors; ++v)
        for (int d = 0; d < kVectorDim; ++d) {
          const double m = code_value(best[v] & (entries_ - 1), d, 1.0f);
          wm += std::fabs(w[vector_column(v) + kDimColumn[d]]) * m;
          mm += m * m;
        }
      uint16_t refit = 0;
      if (!(wm > 0.0) || !fp16_scale(wm / mm, &refit) || refit == 0 || refit == *scale_bits) break;
      int trial[kVectors];
      const double e = assign(w, fp16_to_float(refit), trial);
      if (!(e < error)) break;
      error = e;
      *scale_bits = refit;
      std::copy(trial, trial + kVectors, best);
    }
  }
  std::fill(codes, codes + kBlock, uint16_t{0});
  for (int v = 0; v < kVectors; ++v) codes[vector_column(v)] = static_cast<uint16_t>(best[v]);
  return true;
}

void VectorSearch::decode_block(const uint16_t* codes, uint16_t scale_bits, float* out) const {
  const float s = fp16_to_float(scale_bits);
  for (int v = 0; v < kVectors; ++v)
    for (int d = 0; d < kVectorDim; ++d)
      out[vector_column(v) + kDimColumn[d]] = code_value(codes[vector_column(v)], d, s);
}

void vector_decode_row(const LogicalMatrix& m, int64_t row, float* out) {
  const VectorSearch search(m.format.bits);
  for (int64_t b = 0; b < m.k / kBlock; ++b)
    search.decode_block(m.codes.data() + row * m.k + b * kBlock,
                        m.scales[static_cast<size_t>(row * (m.k / kBlock) + b)], out + b * kBlock);
}

Status quantize_vector(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                       LogicalMatrix* out) {
  std::vector<VectorSearch> searches(static_cast<size_t>(omp_get_max_threads()),
                                     VectorSearch(f.bits));
  return quantize_blocks(w, n, k, f, mse, searches, out);
}

}  // namespace qmoe::quant
