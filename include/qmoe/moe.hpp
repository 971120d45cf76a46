// qmoe/moe.hpp — plain data of the MoE data path around the grouped GEMM: how tokens are
// routed to experts (RouterConfig) and where each (token, slot) lands once sorted by expert
// (RoutingPlan). The exact math and layout are in docs/moe.md; the CPU reference
// (qmoe/cpu_ref.hpp) and the device kernels follow it.
#pragma once
#include <cstdint>
#include <vector>

namespace qmoe {

/// Where a token's k experts and their weights come from (docs/moe.md §1).
enum class RouterKind : uint8_t {
  kSoftmaxTopK = 0,         ///< Mixtral / Qwen: top-k of softmax(logits)
  kSigmoidGroupedTopK = 1,  ///< DeepSeek-V3: sigmoid scores, correction bias, group limit
  kGiven = 2,               ///< the caller supplies ids[T, k] and weights[T, k]; no logits
};

/// Router parameters. Fields a kind does not use must keep their defaults (checked).
struct RouterConfig {
  RouterKind kind = RouterKind::kSoftmaxTopK;
  int32_t num_experts = 0;  ///< E, >= 1
  int32_t top_k = 0;        ///< k, 1 <= k <= E
  /// Logit routers: divide the k chosen weights by their sum (Qwen norm_topk_prob,
  /// DeepSeek-V3 norm_topk_prob). kGiven: must stay false.
  bool renormalize = false;
  /// Logit routers: every weight is multiplied by this last (DeepSeek-V3: 2.5). Finite, > 0.
  /// kGiven: must stay 1.
  float routed_scaling_factor = 1.0f;
  /// kSigmoidGroupedTopK: experts form num_groups groups of E / num_groups >= 2 consecutive
  /// experts; the topk_groups best groups are kept (n_group, topk_group). Else both stay 1.
  int32_t num_groups = 1;
  int32_t topk_groups = 1;
};

/// Tokens sorted by expert (docs/moe.md §2). A pair p = t * k + j names slot j of token t;
/// a row r is a position in the sorted order. Rows of expert e are
/// [offsets[e], offsets[e+1]), in increasing p (stable). Host form of the device plan:
/// same arrays, same meaning.
struct RoutingPlan {
  int64_t num_tokens = 0;            ///< T
  int32_t num_experts = 0;           ///< E
  int32_t top_k = 0;                 ///< k
  std::vector<int32_t> counts;       ///< [E] rows of each expert
  std::vector<int32_t> offsets;      ///< [E+1] exclusive scan of counts; offsets[E] = T*k
  std::vector<int32_t> sorted_pair;  ///< [T*k] pair p of row r
  std::vector<float> sorted_weight;  ///< [T*k] routing weight of row r
  std::vector<int32_t> row_of_pair;  ///< [T*k] row r of pair p (inverse of sorted_pair)
};

}  // namespace qmoe
