// Trellis formats (docs/formats.md §1): each 128-input block of a row is one tail-biting path
// through a bitshift trellis of 2^12 states, found by Viterbi. A weight's state is the 12 code
// bits starting at its chunk, so the state of position t + 1 keeps all but the lowest chunk of
// the state of t: the predecessors of a state differ only in their lowest chunk, and a step of
// Viterbi is one minimum over each aligned run of 2^bits costs (QTIP's bitshift trellis, Tseng
// et al. 2024, with its "1MAD" computed code).
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
// Standard deviation of trellis_code over the states, for the starting scale.
constexpr double kCodeSigma = 147.8;

/// Buffers of one Viterbi run; sized once per thread, outside the parallel region.
struct ViterbiScratch {
  std::vector<double> cost, next;  // [kStates]
  std::vector<double> run_min;     // [kStates >> bits]: min over each run of 2^bits costs
  std::vector<uint8_t> back;       // [kBlock][kStates >> bits]: the argmin chunk of each run
  std::vector<double> path_value;  // [kBlock]: code values of the path
  std::vector<uint32_t> states;    // [kBlock]
  explicit ViterbiScratch(int bits)
      : cost(kStates),
        next(kStates),
        run_min(kStates >> bits),
        back(static_cast<size_t>(kBlock) * (kStates >> bits)),
        path_value(kBlock),
        states(kBlock) {}
};

/// code * s for every state: what position t decodes to in state S.
struct Codebook {
  std::vector<double> code;  // [kStates]
  Codebook() : code(kStates) {
    for (int s = 0; s < kStates; ++s) code[s] = trellis_code(static_cast<uint32_t>(s));
  }
};

/// Viterbi over x[0, kBlock) at scale s. With overlap < 0 the path is free (start and end
/// anywhere); otherwise it is tail-biting: the start state's low 12 - bits bits and the end
/// state's high 12 - bits bits both equal `overlap` (the chunks 0 .. 12/bits - 2 that both
/// windows hold). Writes the path's states; returns its squared error.
double viterbi(const double* x, double s, int bits, int overlap, const Codebook& book,
               ViterbiScratch* v) {
  const int runs = kStates >> bits, low_mask = runs - 1;
  const double inf = std::numeric_limits<double>::infinity();
  for (int st = 0; st < kStates; ++st) {
    const double d = x[0] - s * book.code[st];
    v->cost[st] = overlap < 0 || (st & low_mask) == overlap ? d * d : inf;
  }
  for (int t = 1; t < kBlock; ++t) {
    uint8_t* back = v->back.data() + static_cast<size_t>(t - 1) * runs;
    for (int p = 0; p < runs; ++p) {  // predecessors of states with low bits p: run p
      const double* c = v->cost.data() + (p << bits);
      int best = 0;
      for (int j = 1; j < (1 << bits); ++j)
        if (c[j] < c[best]) best = j;
      v->run_min[p] = c[best];
      back[p] = static_cast<uint8_t>(best);
    }
    for (int st = 0; st < kStates; ++st) {
      const double d = x[t] - s * book.code[st];
      v->next[st] = v->run_min[st & low_mask] + d * d;
    }
    v->cost.swap(v->next);
  }
  int end = -1;
  for (int st = 0; st < kStates; ++st) {
    if (overlap >= 0 && (st >> bits) != overlap) continue;
    if (end < 0 || v->cost[st] < v->cost[end]) end = st;
  }
  const double error = v->cost[end];
  uint32_t st = static_cast<uint32_t>(end);
  for (int t = kBlock - 1;; --t) {
    v->states[t] = st;
    if (t == 0) break;
    const uint32_t p = st & static_cast<uint32_t>(low_mask);
    st = (p << bits) | v->back[static_cast<size_t>(t - 1) * runs + p];
  }
  return error;
}

/// The best tail-biting path at scale s: the overlap is read from the middle of a free path over
/// the block rotated by half its length (where the free path is not distorted by its ends),
/// then the constrained path is found. Writes the states; returns the squared error.
double tail_biting_path(const double* x, double s, int bits, const Codebook& book,
                        ViterbiScratch* v, double* rotated) {
  for (int t = 0; t < kBlock; ++t) rotated[t] = x[(t + kBlock / 2) % kBlock];
  viterbi(rotated, s, bits, -1, book, v);
  const int overlap = static_cast<int>(v->states[kBlock / 2] & ((kStates >> bits) - 1));
  return viterbi(x, s, bits, overlap, book, v);
}

/// The fp16 scale nearest s (s >= 0); false when it overflows.
bool fp16_scale(double s, uint16_t* bits) {
  *bits = float_to_fp16(static_cast<float>(s));
  return (*bits & 0x7c00u) != 0x7c00u;
}

}  // namespace

int trellis_code(uint32_t state) {
  const uint32_t x = state * 34038481u + 76625530u;  // mod 2^32
  return static_cast<int>((x & 0xffu) + ((x >> 8) & 0xffu) + ((x >> 16) & 0xffu) + (x >> 24)) - 510;
}

Status quantize_trellis(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                        LogicalMatrix* out) {
  LogicalMatrix m = LogicalMatrix::sized(f, n, k);
  const int bits = f.bits;
  const int64_t blocks = k / kBlock;
  const Codebook book;
  std::atomic<int64_t> overflow_block{-1};
  // Scratch per thread, allocated here: a throw inside the region would terminate.
  const int threads = omp_get_max_threads();
  std::vector<ViterbiScratch> scratch(static_cast<size_t>(threads), ViterbiScratch(bits));
  std::vector<double> buffers(static_cast<size_t>(threads) * 3 * kBlock);
#pragma omp parallel
  {
    const int t_id = omp_get_thread_num();
    ViterbiScratch* v = &scratch[static_cast<size_t>(t_id)];
    double* x = buffers.data() + static_cast<size_t>(t_id) * 3 * kBlock;
    double* rotated = x + kBlock;
    double* best_value = x + 2 * kBlock;
    std::vector<uint32_t>& states = v->states;
#pragma omp for schedule(dynamic, 4)
    for (int64_t rb = 0; rb < n * blocks; ++rb) {
      const int64_t row = rb / blocks, col0 = rb % blocks * kBlock;
      double sum_sq = 0.0;
      for (int t = 0; t < kBlock; ++t) {
        x[t] = w[row * k + col0 + t];
        sum_sq += x[t] * x[t];
      }
      // Start: the code's spread matched to the block's, shrunk by the distortion a rate of
      // `bits` leaves at best (a Gaussian's reconstruction has variance (1 - 4^-bits) sigma^2).
      const double rms = std::sqrt(sum_sq / kBlock);
      uint16_t scale_bits = 0;
      if (!fp16_scale(rms * std::sqrt(1.0 - std::pow(4.0, -bits)) / kCodeSigma, &scale_bits)) {
        overflow_block.store(rb);
        continue;
      }
      double s = fp16_to_float(scale_bits);
      double error = tail_biting_path(x, s, bits, book, v, rotated);
      uint32_t best_states[kBlock];
      std::copy(states.begin(), states.end(), best_states);
      if (mse) {
        // Least-squares scale for the path found, then a path for that scale.
        double xc = 0.0, cc = 0.0;
        for (int t = 0; t < kBlock; ++t) {
          best_value[t] = book.code[states[t]];
          xc += x[t] * best_value[t];
          cc += best_value[t] * best_value[t];
        }
        uint16_t refit_bits = 0;
        if (cc > 0.0 && xc > 0.0 && fp16_scale(xc / cc, &refit_bits) && refit_bits != scale_bits) {
          const double e = tail_biting_path(x, fp16_to_float(refit_bits), bits, book, v, rotated);
          if (e < error) {
            error = e;
            scale_bits = refit_bits;
            std::copy(states.begin(), states.end(), best_states);
          }
        }
      }
      m.scales[static_cast<size_t>(rb)] = scale_bits;
      const uint32_t chunk_mask = (1u << bits) - 1u;
      for (int t = 0; t < kBlock; ++t)
        m.codes[static_cast<size_t>(row * k + col0 + t)] =
            static_cast<uint16_t>(best_states[t] & chunk_mask);
    }
  }
  if (overflow_block.load() >= 0)
    return out_of_range("quantize: the scale of row " +
                        std::to_string(overflow_block.load() / blocks) + ", block " +
                        std::to_string(overflow_block.load() % blocks) +
                        " overflows fp16 (weights too large for " + f.to_string() + ")");
  *out = std::move(m);
  return Status::ok();
}

}  // namespace qmoe::quant
