// qmoe/dispatch.hpp — the offline dispatcher: one weight format per (expert, projection) from
// a palette, under a bytes budget, minimising predicted output error. docs/dispatch.md.
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/format.hpp"
#include "qmoe/quantize.hpp"
#include "qmoe/status.hpp"

namespace qmoe {

/// One way to store one (expert, projection) matrix.
struct ExpertCandidate {
  FormatSpec format;
  int64_t bytes = 0;        ///< storage it costs, >= 0 (measure_candidates: packed payload)
  double distortion = 0.0;  ///< predicted error if stored this way, finite and >= 0
};

/// One (expert, projection) matrix: its candidates and how much its error matters.
/// weight = sensitivity of the output to this matrix x routing frequency / mass of the expert.
struct AllocationItem {
  std::vector<ExpertCandidate> candidates;
  double weight = 1.0;  ///< finite and >= 0
};

struct AllocationResult {
  std::vector<int> choice;   ///< per item, the index of its chosen candidate
  int64_t bytes = 0;         ///< sum of the chosen candidates' bytes (<= budget)
  double cost = 0.0;         ///< sum of weight * distortion of the chosen candidates
  double lower_bound = 0.0;  ///< Lagrangian (= LP relaxation) bound: cost >= lower_bound
};

/// Exactly minimise sum_i weight_i * distortion_{i,choice_i} subject to
/// sum_i bytes_{i,choice_i} <= budget_bytes (a multiple-choice knapsack; algorithm,
/// complexity and tie-breaking in docs/dispatch.md). Errors (kInvalidArgument, *out untouched):
/// null out, negative budget, an item without candidates, negative or non-finite bytes,
/// weights or distortions, totals that overflow (also the largest total cost times the largest
/// total bytes beyond double range); "infeasible: needs at least N bytes" when even the
/// smallest candidates exceed the budget. kOutOfRange if the exact search would hold more
/// than 8 GiB of states (5x the hardest measured instance), or out of memory.
Status allocate_formats(const std::vector<AllocationItem>& items, int64_t budget_bytes,
                        AllocationResult* out);

/// Quantize w[n, k] (row-major, output rows x inputs) in every palette format with opt and
/// report, per format in palette order, bytes = PackedMatrix::payload_bytes() and distortion =
/// sum h_j (W - Wq)_ij^2 / sum h_j W_ij^2, the relative squared error of the dequantized
/// weights, each input column j weighted by input_second_moment h[k] = E[x_j^2] (nullptr:
/// h = 1). Errors (*out untouched): null w/out, empty palette, anything quantize_logical
/// rejects (message names the format), h negative or non-finite, a zero denominator.
Status measure_candidates(const float* w, int64_t n, int64_t k,
                          const std::vector<FormatSpec>& palette, const QuantizeOptions& opt,
                          const float* input_second_moment, std::vector<ExpertCandidate>* out);

/// Budget of an average of bits_per_weight bits over num_weights weights, in whole bytes:
/// floor(bits_per_weight * num_weights / 8). Errors (kInvalidArgument, *budget_bytes
/// untouched): null output, bits_per_weight not finite or < 0, num_weights < 0, overflow.
Status budget_bytes_for_bits(double bits_per_weight, int64_t num_weights, int64_t* budget_bytes);

}  // namespace qmoe
