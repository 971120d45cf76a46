// Trellis formats (docs/formats.md §1): each 128-input block of a row is one tail-biting path
// through a bitshift trellis of 2^12 states, found by Viterbi. A weight's state is the 12 code
// bits starting at its chunk, so the state of position t + 1 keeps all but the lowest chunk of
// the state of t: the predecessors of a state differ only in their lowest chunk, and a step of
// Viterbi is one minimum over each aligned run of 2^bits costs (QTIP's bitshift trellis, Tseng
// et al. 2024, with its "1MAD" computed code). The path codes the block after fixed signs and a
// 128-point Hadamard transform (QTIP's incoherence processing, along K only): an outlier is
// spread over the block, which the Gaussian code can then follow.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "qmoe/numeric.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe::quant {

namespace {

constexpr int kStates = 1 << kTrellisStateBits;
constexpr int kBlock = kTileCols;  // positions of one tail-biting path
// Steps on each side of a block's wrap that the free path choosing the tail-biting overlap
// covers (a state holds at most 6 steps). Measured on the demo's one-value formats: 32 (half a
// 128-step block) errs within 0.7 % of a free path over the whole rotated block at 0.7x the
// time; 16 costs 1.5-2 % more error. Two-value blocks have 64 steps: their window is the block.
constexpr int kOverlapSteps = 32;
// Standard deviation of trellis_code over the 4096 states, for the starting scale.
constexpr double kCodeSigma = 148.4;

/// trellis_code of both values of every state, [value][state], computed once.
const std::vector<double>& code_table() {
  static const std::vector<double> table = [] {
    std::vector<double> t(2 * kStates);
    for (int x = 0; x < 2 * kStates; ++x)
      t[x] = trellis_code(static_cast<uint32_t>(x % kStates), x / kStates);
    return t;
  }();
  return table;
}

/// code_table() in float.
const std::vector<float>& code_table_float() {
  static const std::vector<float> table(code_table().begin(), code_table().end());
  return table;
}

/// Runs of at least this many predecessors are scanned as kRunLanes interleaved runs (tcq3 and
/// tcq4's runs of 8 and 16 quantized 1.2-2.6x slower that way: the merge costs more than the
/// lanes save).
constexpr int kRunLanes = 8, kMinLanedRun = 32;

/// The least of c[0, width) and its first index, width a multiple of kRunLanes: the running
/// minima of kRunLanes interleaved runs, which the compiler keeps in SIMD registers, merged with
/// ties to the lower index (as one sequential scan picks). Masks, not selects: GCC branches on
/// the selects here, and the costs are noise to a predictor. The costs are sums of squares or
/// +inf (never -0 or NaN), so a minimum's value always belongs to its index.
void laned_run_minimum(const float* c, int width, float* low, uint8_t* back) {
  float lane[kRunLanes];
  int32_t best[kRunLanes];
  for (int l = 0; l < kRunLanes; ++l) lane[l] = c[l], best[l] = l;
  for (int j = kRunLanes; j < width; j += kRunLanes)
#pragma omp simd
    for (int l = 0; l < kRunLanes; ++l) {
      const int32_t lower = -static_cast<int32_t>(c[j + l] < lane[l]);
      lane[l] = std::min(lane[l], c[j + l]);  // c[j + l] exactly when the mask takes it
      best[l] = (best[l] & ~lower) | ((j + l) & lower);
    }
  float m = lane[0];
  int32_t index = best[0];
  for (int l = 1; l < kRunLanes; ++l) {
    const int32_t take =
        -static_cast<int32_t>((lane[l] < m) | ((lane[l] == m) & (best[l] < index)));
    m = std::min(lane[l], m);
    index = (index & ~take) | (best[l] & take);
  }
  *low = m;
  *back = static_cast<uint8_t>(index);
}

/// The state of step p of a block: the 12 bits of its circular chunk string from chunk p on
/// (chunk q is the logical code at position values * q).
uint32_t block_state(const uint16_t* chunks, int bits, int values, int p) {
  const int steps = kBlock / values;
  uint32_t state = 0;
  for (int i = 0; i * bits < kTrellisStateBits; ++i)
    state |= uint32_t{chunks[values * ((p + i) % steps)]} << (i * bits);
  return state & (kStates - 1u);
}

}  // namespace

TrellisSearch::TrellisSearch(int bits, int values)
    : bits_(bits),
      values_(values),
      steps_(kBlock / values),
      runs_(kStates >> bits),
      code_(code_table()),
      code_f_(code_table_float()),
      cost_(kStates),
      next_(kStates),
      run_min_(static_cast<size_t>(runs_)),
      back_(static_cast<size_t>(kBlock) * runs_),
      rotated_(kBlock) {}

double TrellisSearch::viterbi(const double* x, double s, int overlap, int steps, uint32_t* states) {
  const int low_mask = runs_ - 1;
  const float inf = std::numeric_limits<float>::infinity(), sf = static_cast<float>(s);
  for (int st = 0; st < kStates; ++st) {
    float e = 0.0f;
    for (int i = 0; i < values_; ++i) {
      const float d = static_cast<float>(x[i]) - sf * code_f_[i * kStates + st];
      e += d * d;
    }
    cost_[st] = overlap < 0 || (st & low_mask) == overlap ? e : inf;
  }
  for (int t = 1; t < steps; ++t) {
    uint8_t* back = back_.data() + static_cast<size_t>(t - 1) * runs_;
    for (int p = 0; p < runs_; ++p) {  // predecessors of states with low bits p: run p
      const float* c = cost_.data() + (p << bits_);
      if (1 << bits_ >= kMinLanedRun) {  // tcq2.5, tcq3.5: tcq3.5 quantizes 2.1x faster
        laned_run_minimum(c, 1 << bits_, &run_min_[p], &back[p]);
        continue;
      }
      float low = c[0];
      int best = 0;
      for (int j = 1; j < (1 << bits_); ++j) {  // branch-free: the costs are noise to a predictor
        const bool lower = c[j] < low;
        low = lower ? c[j] : low;
        best = lower ? j : best;
      }
      run_min_[p] = low;
      back[p] = static_cast<uint8_t>(best);
    }
    // States with low bits p share predecessor run p: state hi * runs + p, hi < 2^bits, so the
    // inner loops run over contiguous states and run minima (vectorisable).
    const float* run_min = run_min_.data();
    for (int hi = 0; hi < (1 << bits_); ++hi) {
      float* next = next_.data() + hi * runs_;
      const float* code = code_f_.data() + hi * runs_;
      const float x0 = static_cast<float>(x[values_ * t]);
#pragma omp simd
      for (int p = 0; p < runs_; ++p) {
        const float d = x0 - sf * code[p];
        next[p] = run_min[p] + d * d;
      }
      if (values_ == 2) {  // the state's second value
        const float x1 = static_cast<float>(x[values_ * t + 1]);
        const float* code1 = code + kStates;
#pragma omp simd
        for (int p = 0; p < runs_; ++p) {
          const float d = x1 - sf * code1[p];
          next[p] += d * d;
        }
      }
    }
    cost_.swap(next_);
  }
  int end = -1;
  for (int st = 0; st < kStates; ++st) {
    if (overlap >= 0 && (st >> bits_) != overlap) continue;
    if (end < 0 || cost_[st] < cost_[end]) end = st;
  }
  uint32_t st = static_cast<uint32_t>(end);
  for (int t = steps - 1;; --t) {
    states[t] = st;
    if (t == 0) break;
    const uint32_t p = st & static_cast<uint32_t>(low_mask);
    st = (p << bits_) | back_[static_cast<size_t>(t - 1) * runs_ + p];
  }
  double error = 0.0;  // in double, from the path's states
  for (int t = 0; t < steps * values_; ++t) {
    const double d = x[t] - s * code_[(t % values_) * kStates + states[t / values_]];
    error += d * d;
  }
  return error;
}

double TrellisSearch::path(const double* x, double s, uint32_t* states) {
  // The overlap (the chunks both the first and the last window hold) is read from the middle of
  // a free path over the kOverlapSteps steps on either side of the block's wrap, where the free
  // path's ends do not disturb it; then the path constrained to that overlap is found.
  const int half = std::min(kOverlapSteps, steps_ / 2);
  for (int t = 0; t < 2 * half * values_; ++t)
    rotated_[t] = x[(t + kBlock - half * values_) % kBlock];
  viterbi(rotated_.data(), s, -1, 2 * half, states);
  const int overlap = static_cast<int>(states[half] & static_cast<uint32_t>(runs_ - 1));
  return viterbi(x, s, overlap, steps_, states);
}

int trellis_code(uint32_t state, int value) {
  const uint32_t x = value == 0 ? state * 34038481u + 76625530u  // mod 2^32
                                : state * 2654435761u + 2135587861u;
  return static_cast<int>((x & 0xffu) + ((x >> 8) & 0xffu) + ((x >> 16) & 0xffu) + (x >> 24)) - 510;
}

int trellis_sign(int t) {
  return static_cast<uint32_t>(t) * 2654435761u >= 0x80000000u ? -1 : 1;
}

namespace {

/// In place: v = H v for v[0, 128) (unnormalised Walsh-Hadamard butterflies, Sylvester order).
template <typename T>
void hadamard(T* v) {
  for (int h = 1; h < kBlock; h *= 2)
    for (int i = 0; i < kBlock; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const T a = v[j], b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
}

}  // namespace

void trellis_rotate(const double* w, double* z) {
  for (int t = 0; t < kBlock; ++t) z[t] = trellis_sign(t) * w[t];
  hadamard(z);
  for (int t = 0; t < kBlock; ++t) z[t] /= kBlock;
}

void trellis_decode_block(const uint16_t* chunks, int bits, int values, uint16_t scale_bits,
                          float* out) {
  int32_t u[kBlock];  // the codes of the block's positions, then H of them: |u| < 2^16
  for (int t = 0; t < kBlock; ++t)
    u[t] = trellis_code(block_state(chunks, bits, values, t / values), t % values);
  hadamard(u);
  const float s = fp16_to_float(scale_bits);
  for (int t = 0; t < kBlock; ++t)
    out[t] = static_cast<float>(trellis_sign(t) * u[t]) * s;  // one rounding
}

void trellis_decode_row(const LogicalMatrix& m, int64_t row, float* out) {
  for (int64_t b = 0; b < m.k / kBlock; ++b)
    trellis_decode_block(m.codes.data() + row * m.k + b * kBlock, m.format.bits,
                         m.format.values_per_state,
                         m.scales[static_cast<size_t>(row * (m.k / kBlock) + b)], out + b * kBlock);
}

void TrellisSearch::decode_block(const uint16_t* chunks, uint16_t scale_bits, float* out) const {
  trellis_decode_block(chunks, bits_, values_, scale_bits, out);
}

bool TrellisSearch::quantize_block(const double* w, bool mse, uint16_t* chunks,
                                   uint16_t* scale_bits) {
  double x[kBlock];
  uint32_t states[kBlock], best[kBlock];
  trellis_rotate(w, x);  // the path is chosen for the rotated block (incoherent)
  double sum_sq = 0.0;
  for (int t = 0; t < kBlock; ++t) sum_sq += x[t] * x[t];
  // Start: the code's spread matched to the block's, shrunk by the distortion a rate of `bits`
  // over `values` leaves at best (a Gaussian's reconstruction has variance (1 - 4^-rate) sigma^2).
  const double rms = std::sqrt(sum_sq / kBlock), rate = static_cast<double>(bits_) / values_;
  if (!fp16_scale(rms * std::sqrt(1.0 - std::pow(4.0, -rate)) / kCodeSigma, scale_bits))
    return false;
  double error = path(x, fp16_to_float(*scale_bits), best);
  if (mse) {
    // Least-squares scale for the path found, then a path for that scale.
    double xc = 0.0, cc = 0.0;
    for (int t = 0; t < kBlock; ++t) {
      const double c = code_[(t % values_) * kStates + best[t / values_]];
      xc += x[t] * c;
      cc += c * c;
    }
    uint16_t refit = 0;
    if (cc > 0.0 && xc > 0.0 && fp16_scale(xc / cc, &refit) && refit != *scale_bits) {
      const double e = path(x, fp16_to_float(refit), states);
      if (e < error) {
        *scale_bits = refit;
        std::copy(states, states + steps_, best);
      }
    }
  }
  const uint32_t chunk_mask = (1u << bits_) - 1u;
  for (int t = 0; t < kBlock; ++t)
    chunks[t] = t % values_ == 0 ? static_cast<uint16_t>(best[t / values_] & chunk_mask) : 0;
  return true;
}

Status quantize_trellis(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                        LogicalMatrix* out) {
  std::vector<TrellisSearch> searches(static_cast<size_t>(omp_get_max_threads()),
                                      TrellisSearch(f.bits, f.values_per_state));
  return quantize_blocks(w, n, k, f, mse, searches, out);
}

}  // namespace qmoe::quant
