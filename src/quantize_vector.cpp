// Vector formats (docs/formats.md §1): four weights of a row, columns 16u + 2t + {0, 1, 8, 9},
// share one code into a fixed codebook of 2^(bits - 4) magnitude vectors times 16 sign patterns,
// scaled by one fp16 value per 128 inputs. The codebook is Lloyd's on |x| for x ~ N(0, I_4), so a
// block scaled to unit RMS is what it fits; the nearest code of a vector is its signs and the
// nearest magnitude vector to |x| / s.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
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
constexpr int kMaxCandidates = kScaleSteps + 2;  // and the RMS itself

/// First column of vector v of a block: sub-tile u = v / 4, t = v % 4.
int vector_column(int v) {
  return 16 * (v / 4) + 2 * (v % 4);
}

/// Lanes of the scans over a table's entries: eight independent running minima, which the
/// compiler keeps in SIMD registers (a single running minimum is a serial dependence).
constexpr int kScanLanes = 8;

/// score[m] = h[m] - t p[m] for m in [0, n), n a multiple of kScanLanes; returns the least.
float score_entries(const float* h, const float* p, float t, int n, float* score) {
  float lane[kScanLanes];
  std::fill(lane, lane + kScanLanes, std::numeric_limits<float>::infinity());
  for (int m = 0; m < n; m += kScanLanes)
    for (int j = 0; j < kScanLanes; ++j) {
      score[m + j] = h[m + j] - t * p[m + j];
      lane[j] = std::min(lane[j], score[m + j]);
    }
  return *std::min_element(lane, lane + kScanLanes);
}

}  // namespace

// The nearest magnitude vector to a = |x| / s minimises |a - M|^2 = |a|^2 + 2 (h - a . M) with
// h = |M|^2 / 2, so the scans need h and the dot products only: one multiply-add a dimension an
// entry, by dimension so that consecutive entries are consecutive floats.
struct VectorSearch::Table {
  static constexpr int kMaxEntries = 1 << (12 - detail::kVectorSignBits);
  int padded = 0;  ///< entries rounded up to kScanLanes; the padding has h = +inf, M = 0
  float magnitude[kVectorDim][kMaxEntries] = {};  ///< M[m][d] at [d][m], exactly the fp16 value
  float half_norm[kMaxEntries] = {};
  float max_magnitude[kVectorDim] = {}, max_half_norm = 0.0f;
  float max_magnitude_norm = 0.0f;  ///< |max_magnitude|: bounds |x| . M by |x| times it
};

namespace {

/// The table of the format with `bits` code bits (6, 8, 10, 12), built once for every width
/// (fixed arrays: row decodes use it inside OpenMP regions, where nothing may allocate).
const VectorSearch::Table& vector_table(int bits) {
  static const auto tables = [] {
    std::array<VectorSearch::Table, 4> t{};
    for (int i = 0; i < 4; ++i) {
      const int width = 6 + 2 * i, entries = 1 << (width - detail::kVectorSignBits);
      const uint16_t* table = detail::vq_codebook(width);
      VectorSearch::Table& out = t[static_cast<size_t>(i)];
      out.padded = (entries + kScanLanes - 1) / kScanLanes * kScanLanes;
      std::fill(out.half_norm + entries, out.half_norm + out.padded,
                std::numeric_limits<float>::infinity());
      for (int m = 0; m < entries; ++m) {
        double norm = 0.0;
        for (int d = 0; d < kVectorDim; ++d) {
          const float v = fp16_to_float(table[m * kVectorDim + d]);
          out.magnitude[d][m] = v;
          out.max_magnitude[d] = std::max(out.max_magnitude[d], v);
          norm += static_cast<double>(v) * v;
        }
        out.half_norm[m] = static_cast<float>(norm / 2);
        out.max_half_norm = std::max(out.max_half_norm, out.half_norm[m]);
      }
      double norm = 0.0;
      for (float v : out.max_magnitude) norm += static_cast<double>(v) * v;
      out.max_magnitude_norm = static_cast<float>(std::sqrt(norm));
    }
    return t;
  }();
  return tables[static_cast<size_t>((bits - 6) / 2)];
}

/// Exact weight of dimension d of a vector with `code` (magnitude index below `entries`, signs
/// above) at scale s: float32, two fp16 significands.
float vector_weight(const VectorSearch::Table& t, int entries, int code, int d, float s) {
  const float m = t.magnitude[d][code & (entries - 1)];
  return ((code / entries) >> d) & 1 ? -m * s : m * s;
}

}  // namespace

VectorSearch::VectorSearch(int bits)
    : entries_(1 << (bits - detail::kVectorSignBits)),
      sign_shift_(bits - detail::kVectorSignBits),
      table_(&vector_table(bits)),
      projection_(static_cast<size_t>(kVectors * table_->padded)) {}

// A float32 scan finds the least score F of h - t P (t = 1 / s); every entry whose float score
// is within tol of F is then measured by the double distance |x| / s - M, in index order. tol
// bounds twice the rounding error of a float score (each is under 8 ulps of h + t |x| . M_max),
// so the double-nearest entry is among them and the pick is the one a double search of every
// entry makes, ties included.
int VectorSearch::nearest_code(int v, const double* x, double s) const {
  const Table& t = *table_;
  const float inverse = static_cast<float>(1.0 / s);
  float score[Table::kMaxEntries];
  const float least =
      score_entries(t.half_norm, projection_.data() + v * t.padded, inverse, t.padded, score);
  double a[kVectorDim];
  int signs = 0;
  float bound = t.max_half_norm;
  for (int d = 0; d < kVectorDim; ++d) {
    a[d] = std::fabs(x[d]) / s;
    bound += static_cast<float>(a[d]) * t.max_magnitude[d];
    signs |= (x[d] < 0.0) << d;
  }
  const float threshold = least + 32 * std::numeric_limits<float>::epsilon() * bound;
  int best = 0;  // (finite weights always have a candidate; NaN ones are refused upstream)
  double best_err = std::numeric_limits<double>::infinity();
  for (int m = 0; m < entries_; ++m) {
    if (!(score[m] <= threshold)) continue;
    double e = 0.0;
    for (int d = 0; d < kVectorDim; ++d)
      e += (a[d] - t.magnitude[d][m]) * (a[d] - t.magnitude[d][m]);
    if (e < best_err) best_err = e, best = m;
  }
  return best | signs << sign_shift_;
}

float VectorSearch::code_value(int code, int d, float s) const {
  return vector_weight(*table_, entries_, code, d, s);
}

double VectorSearch::assign(const double* w, float s, int* codes) const {
  double error = 0.0;
  for (int v = 0; v < kVectors; ++v) {
    double x[kVectorDim];
    for (int d = 0; d < kVectorDim; ++d) x[d] = w[vector_column(v) + kDimColumn[d]];
    codes[v] = nearest_code(v, x, s);
    for (int d = 0; d < kVectorDim; ++d) {
      const double e = x[d] - code_value(codes[v], d, s);
      error += e * e;
    }
  }
  return error;
}

// |x - s M|^2 = |x|^2 + 2 s^2 f_M(1 / s) with f_M(t) = h - t |x| . M: for a vector, each entry's
// score is a line in t, and its nearest codes over the candidates' range [t_lo, t_hi] follow the
// lower envelope of the lines. Entries never on it are dropped before the candidates are scored:
// with a (b) the entry nearest at t_lo (t_hi), the envelope lies under U = min(f_a, f_b), and
// f_M - U is piecewise linear with one kink, where f_a = f_b, so an envelope entry comes within
// tol of U at t_lo, t_hi or the kink. Three scans of the table and a few survivors scored at
// every candidate replace a scan for each candidate; the errors are float sums, to rank.
void VectorSearch::rank_scales(const double* norms, const double* scales, int count, double* errors,
                               double* slack) const {
  const Table& t = *table_;
  float inverse[kMaxCandidates + kScanLanes];
  const int lanes = (count + kScanLanes - 1) / kScanLanes * kScanLanes;
  for (int c = 0; c < lanes; ++c) inverse[c] = static_cast<float>(1.0 / scales[c < count ? c : 0]);
  const float t_lo = *std::min_element(inverse, inverse + count),
              t_hi = *std::max_element(inverse, inverse + count);
  std::fill(errors, errors + count, 0.0);
  std::fill(slack, slack + count, 0.0);
  float at_lo[Table::kMaxEntries], at_hi[Table::kMaxEntries], at_kink[Table::kMaxEntries];
  for (int v = 0; v < kVectors; ++v) {
    const float* p = projection_.data() + v * t.padded;
    const float least_lo = score_entries(t.half_norm, p, t_lo, t.padded, at_lo),
                least_hi = score_entries(t.half_norm, p, t_hi, t.padded, at_hi);
    // (The finds cannot fail for finite weights; clamped for NaN ones, refused upstream.)
    const int a = std::min(static_cast<int>(std::find(at_lo, at_lo + t.padded, least_lo) - at_lo),
                           entries_ - 1),
              b = std::min(static_cast<int>(std::find(at_hi, at_hi + t.padded, least_hi) - at_hi),
                           entries_ - 1);
    float kink = t_lo;
    if (p[a] != p[b])
      kink = std::clamp((t.half_norm[a] - t.half_norm[b]) / (p[a] - p[b]), t_lo, t_hi);
    const float under_kink = std::min(t.half_norm[a] - kink * p[a], t.half_norm[b] - kink * p[b]);
    score_entries(t.half_norm, p, kink, t.padded, at_kink);
    const float tol =
        32 * std::numeric_limits<float>::epsilon() *
        (t.max_half_norm + t_hi * static_cast<float>(std::sqrt(norms[v])) * t.max_magnitude_norm);
    float least[kMaxCandidates + kScanLanes];
    std::fill(least, least + lanes, std::numeric_limits<float>::infinity());
    for (int m = 0; m < entries_; ++m) {
      if (!(at_lo[m] <= least_lo + tol || at_hi[m] <= least_hi + tol ||
            at_kink[m] <= under_kink + tol))
        continue;
      for (int c = 0; c < lanes; ++c)
        least[c] = std::min(least[c], t.half_norm[m] - inverse[c] * p[m]);
    }
    // A float score h - t P errs by under 8 ulps of h + t P = 2 h - score <= 2 h_max - score.
    constexpr double kUlp = std::numeric_limits<float>::epsilon() / 2;
    for (int c = 0; c < count; ++c) {
      errors[c] += norms[v] + 2 * scales[c] * scales[c] * least[c];
      slack[c] += 2 * scales[c] * scales[c] * 8 * kUlp * (2.0 * t.max_half_norm - least[c]);
    }
  }
  // The exact errors are of the float32 weights s M (under an ulp each): |x|^2 + error bounds it.
  double total = 0.0;
  for (int v = 0; v < kVectors; ++v) total += norms[v];
  for (int c = 0; c < count; ++c)
    slack[c] += std::numeric_limits<float>::epsilon() * (total + errors[c]);
}

void VectorSearch::project(const double* w, double* norms) {
  const Table& t = *table_;
  for (int v = 0; v < kVectors; ++v) {
    float x[kVectorDim];
    norms[v] = 0.0;
    for (int d = 0; d < kVectorDim; ++d) {
      const double wd = w[vector_column(v) + kDimColumn[d]];
      x[d] = static_cast<float>(std::fabs(wd));
      norms[v] += wd * wd;
    }
    float* p = projection_.data() + v * t.padded;
    for (int m = 0; m < t.padded; ++m)
      p[m] = x[0] * t.magnitude[0][m] + x[1] * t.magnitude[1][m] + x[2] * t.magnitude[2][m] +
             x[3] * t.magnitude[3][m];
  }
}

bool VectorSearch::quantize_block(const double* w, bool mse, uint16_t* codes,
                                  uint16_t* scale_bits) {
  double sum_sq = 0.0;
  for (int t = 0; t < kBlock; ++t) sum_sq += w[t] * w[t];
  int best[kVectors] = {};
  if (!fp16_scale(std::sqrt(sum_sq / kBlock), scale_bits)) return false;
  // A block of zeros, or one too small for an fp16 scale, decodes to (signed) zeros: scale 0.
  if (*scale_bits == 0) {
    std::fill(codes, codes + kBlock, uint16_t{0});
    return true;
  }
  double norms[kVectors], error = 0.0;
  project(w, norms);
  if (mse) {
    // A heavy-tailed block's RMS overstates its inliers' spread: rank smaller and larger scales
    // by the float expansion of their errors.
    uint16_t bits[kMaxCandidates] = {*scale_bits};
    double scales[kMaxCandidates] = {fp16_to_float(*scale_bits)}, errors[kMaxCandidates];
    int count = 1;
    for (int i = 0; i <= kScaleSteps; ++i) {
      uint16_t trial = 0;
      if (fp16_scale(scales[0] * (kScaleLow + (kScaleHigh - kScaleLow) * i / kScaleSteps),
                     &trial) &&
          trial != 0 && trial != bits[0] && trial != bits[count - 1]) {
        bits[count] = trial;
        scales[count++] = fp16_to_float(trial);
      }
    }
    double slack[kMaxCandidates];
    rank_scales(norms, scales, count, errors, slack);
    // Every candidate the float errors cannot tell from the least is measured exactly (usually
    // one or two); the first least exact error wins, as a search of exact errors picks.
    double ceiling = std::numeric_limits<double>::infinity();
    for (int c = 0; c < count; ++c) ceiling = std::min(ceiling, errors[c] + slack[c]);
    error = std::numeric_limits<double>::infinity();
    for (int c = 0; c < count; ++c) {
      if (errors[c] - slack[c] > ceiling) continue;
      int trial[kVectors];
      const double e = assign(w, static_cast<float>(scales[c]), trial);
      if (!(e < error)) continue;
      error = e;
      *scale_bits = bits[c];
      std::copy(trial, trial + kVectors, best);
    }
  } else {
    error = assign(w, fp16_to_float(*scale_bits), best);
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
  std::fill(codes, codes + kBlock, uint16_t{0});
  for (int v = 0; v < kVectors; ++v) codes[vector_column(v)] = static_cast<uint16_t>(best[v]);
  return true;
}

namespace {

/// The exact weights of one block, out[0, 128), from the table alone (row decodes run inside
/// OpenMP regions: no search, which holds per-block scratch, is made for them).
void decode_vector_block(const VectorSearch::Table& t, int entries, const uint16_t* codes,
                         uint16_t scale_bits, float* out) {
  const float s = fp16_to_float(scale_bits);
  for (int v = 0; v < kVectors; ++v)
    for (int d = 0; d < kVectorDim; ++d)
      out[vector_column(v) + kDimColumn[d]] =
          vector_weight(t, entries, codes[vector_column(v)], d, s);
}

}  // namespace

void VectorSearch::decode_block(const uint16_t* codes, uint16_t scale_bits, float* out) const {
  decode_vector_block(*table_, entries_, codes, scale_bits, out);
}

void vector_decode_row(const LogicalMatrix& m, int64_t row, float* out) {
  const VectorSearch::Table& t = vector_table(m.format.bits);
  const int entries = 1 << (m.format.bits - detail::kVectorSignBits);
  for (int64_t b = 0; b < m.k / kBlock; ++b)
    decode_vector_block(t, entries, m.codes.data() + row * m.k + b * kBlock,
                        m.scales[static_cast<size_t>(row * (m.k / kBlock) + b)], out + b * kBlock);
}

Status quantize_vector(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                       LogicalMatrix* out) {
  std::vector<VectorSearch> searches(static_cast<size_t>(omp_get_max_threads()),
                                     VectorSearch(f.bits));
  return quantize_blocks(w, n, k, f, mse, searches, out);
}

}  // namespace qmoe::quant
