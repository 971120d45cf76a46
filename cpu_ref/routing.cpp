// cpu_ref/routing.cpp — the routing stops of the MoE data path, written from docs/moe.md:
// router GEMM, top-k routers (softmax; DeepSeek-V3 sigmoid with correction bias and group
// limit), the stable counting sort by expert (RoutingPlan), gather and combine. All math in
// float64; ties always go to the lower index.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "moe_detail.hpp"
#include "no_throw.hpp"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref {
namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

// Reorders idx[0, n) so that its first `count` entries are the best `count` by key, best
// first: higher key wins, equal keys go to the lower index (docs/moe.md §1.4). The order is
// total, so the result does not depend on the incoming order of idx.
void select_best(const double* key, int32_t* idx, int64_t n, int64_t count) {
  std::partial_sort(idx, idx + count, idx + n, [key](int32_t a, int32_t b) {
    return key[a] > key[b] || (key[a] == key[b] && a < b);
  });
}

// The formula of docs/moe.md §1.2 as written: exp(-x) may overflow to inf, giving 0, never NaN.
double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// log(sigmoid(x)) without underflow: the sigmoid weights are renormalised through it, so a
// token whose chosen logits are all below -745 (sigmoid = 0 in float64) still gets s_j / sum s.
double log_sigmoid(double x) {
  return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

// Per-thread working arrays, sized before the parallel region (nothing allocates inside it).
struct TokenScratch {
  std::vector<double> key;           // [E] selection key
  std::vector<int32_t> order;        // [E] candidate experts
  std::vector<double> group_key;     // [G]
  std::vector<int32_t> group_order;  // [G]
  TokenScratch(int64_t experts, int64_t groups)
      : key(static_cast<size_t>(experts)),
        order(static_cast<size_t>(experts)),
        group_key(static_cast<size_t>(groups)),
        group_order(static_cast<size_t>(groups)) {}
};

// docs/moe.md §1.1. Selection on the logits themselves: softmax is strictly increasing, so
// this is the same set, without ties that rounding of the probabilities would make.
void route_softmax(const RouterConfig& cfg, const float* logits, TokenScratch* s, int32_t* ids,
                   float* weights) {
  const int64_t E = cfg.num_experts, k = cfg.top_k;
  for (int64_t e = 0; e < E; ++e) {
    s->key[e] = logits[e];
    s->order[e] = static_cast<int32_t>(e);
  }
  select_best(s->key.data(), s->order.data(), E, k);
  const double max_logit = s->key[s->order[0]];
  double denominator = 0.0;
  if (cfg.renormalize) {
    for (int64_t j = 0; j < k; ++j) denominator += std::exp(s->key[s->order[j]] - max_logit);
  } else {
    for (int64_t e = 0; e < E; ++e) denominator += std::exp(s->key[e] - max_logit);
  }
  for (int64_t j = 0; j < k; ++j) {
    const int32_t e = s->order[j];
    ids[j] = e;
    weights[j] = static_cast<float>(std::exp(s->key[e] - max_logit) / denominator *
                                    cfg.routed_scaling_factor);
  }
}

// docs/moe.md §1.2 (DeepSeek-V3 noaux_tc).
void route_sigmoid_grouped(const RouterConfig& cfg, const float* logits, const float* bias,
                           TokenScratch* s, int32_t* ids, float* weights) {
  const int64_t E = cfg.num_experts, k = cfg.top_k;
  const int64_t G = cfg.num_groups, group_size = E / G;
  for (int64_t e = 0; e < E; ++e)
    s->key[e] = sigmoid(logits[e]) + (bias != nullptr ? static_cast<double>(bias[e]) : 0.0);
  for (int64_t g = 0; g < G; ++g) {
    // With a bias, the sum of the two largest keys of the group (which of two equal keys
    // counts is moot); without one, the largest key, as vLLM scores groups then.
    double first = -std::numeric_limits<double>::infinity(), second = first;
    for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e) {
      const double v = s->key[e];
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) {
        second = v;
      }
    }
    s->group_key[g] = bias != nullptr ? first + second : first;
    s->group_order[g] = static_cast<int32_t>(g);
  }
  select_best(s->group_key.data(), s->group_order.data(), G, cfg.topk_groups);
  // Experts of dropped groups are not candidates at all (not scored 0, see docs/moe.md §1.2).
  int64_t candidates = 0;
  for (int64_t i = 0; i < cfg.topk_groups; ++i) {
    const int64_t g = s->group_order[i];
    for (int64_t e = g * group_size; e < (g + 1) * group_size; ++e)
      s->order[candidates++] = static_cast<int32_t>(e);
  }
  select_best(s->key.data(), s->order.data(), candidates, k);
  // Weights use the unbiased scores s_e = sigmoid(logit_e); the bias only selected.
  const double c = cfg.routed_scaling_factor;
  for (int64_t j = 0; j < k; ++j) ids[j] = s->order[j];
  if (!cfg.renormalize) {
    for (int64_t j = 0; j < k; ++j) weights[j] = static_cast<float>(sigmoid(logits[ids[j]]) * c);
    return;
  }
  // s_j / sum_i s_i as exp(l_j - m) / sum_i exp(l_i - m), l = log s, m = max l.
  double max_log = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < k; ++j) max_log = std::max(max_log, log_sigmoid(logits[ids[j]]));
  double denominator = 0.0;
  for (int64_t j = 0; j < k; ++j) denominator += std::exp(log_sigmoid(logits[ids[j]]) - max_log);
  for (int64_t j = 0; j < k; ++j)
    weights[j] =
        static_cast<float>(std::exp(log_sigmoid(logits[ids[j]]) - max_log) / denominator * c);
}

// The invariants of docs/moe.md §2 that gather and combine rely on.
Status check_plan(const RoutingPlan& p, const char* entry) {
  const std::string at = std::string(entry) + ": plan ";
  if (p.num_tokens < 0 || p.num_experts < 1 || p.top_k < 1)
    return invalid_argument(at + "has T < 0, E < 1 or k < 1");
  if (p.num_tokens > std::numeric_limits<int32_t>::max() / p.top_k)
    return invalid_argument(at + "has T*k beyond int32");
  const int64_t pairs = p.num_tokens * p.top_k, E = p.num_experts;
  if (static_cast<int64_t>(p.counts.size()) != E ||
      static_cast<int64_t>(p.offsets.size()) != E + 1 ||
      static_cast<int64_t>(p.sorted_pair.size()) != pairs ||
      static_cast<int64_t>(p.sorted_weight.size()) != pairs ||
      static_cast<int64_t>(p.row_of_pair.size()) != pairs)
    return invalid_argument(at + "arrays do not have the sizes E, E+1 and T*k");
  if (p.offsets[0] != 0) return invalid_argument(at + "has offsets[0] != 0");
  for (int64_t e = 0; e < E; ++e)
    if (p.counts[e] < 0 || static_cast<int64_t>(p.offsets[e + 1]) - p.offsets[e] != p.counts[e])
      return invalid_argument(at + "offsets are not the exclusive scan of counts at expert " +
                              str(e));
  if (p.offsets[E] != pairs) return invalid_argument(at + "has offsets[E] != T*k");
  for (int64_t r = 0; r < pairs; ++r) {
    const int32_t pair = p.sorted_pair[r];
    if (pair < 0 || pair >= pairs || p.row_of_pair[pair] != r)
      return invalid_argument(at + "sorted_pair and row_of_pair are not inverse at row " + str(r));
    if (!std::isfinite(p.sorted_weight[r]))
      return invalid_argument(at + "weight of row " + str(r) + " is not finite");
  }
  return Status::ok();
}

}  // namespace

namespace detail {

Status check_router_config(const RouterConfig& cfg, const char* entry) {
  const std::string at = std::string(entry) + ": router ";
  const bool logit_router =
      cfg.kind == RouterKind::kSoftmaxTopK || cfg.kind == RouterKind::kSigmoidGroupedTopK;
  if (!logit_router && cfg.kind != RouterKind::kGiven)
    return invalid_argument(at + "kind is not a RouterKind");
  if (cfg.num_experts < 1) return invalid_argument(at + "needs num_experts >= 1");
  if (cfg.top_k < 1 || cfg.top_k > cfg.num_experts)
    return invalid_argument(at + "top_k " + str(cfg.top_k) +
                            " is not in [1, num_experts = " + str(cfg.num_experts) + "]");
  if (cfg.kind == RouterKind::kSigmoidGroupedTopK) {
    if (cfg.num_groups < 1 || cfg.num_experts % cfg.num_groups != 0 ||
        cfg.num_experts / cfg.num_groups < 2)
      return invalid_argument(at + "num_groups " + str(cfg.num_groups) +
                              " does not split num_experts " + str(cfg.num_experts) +
                              " into groups of >= 2 experts");
    if (cfg.topk_groups < 1 || cfg.topk_groups > cfg.num_groups)
      return invalid_argument(at + "topk_groups " + str(cfg.topk_groups) +
                              " is not in [1, num_groups]");
    if (cfg.top_k > static_cast<int64_t>(cfg.topk_groups) * (cfg.num_experts / cfg.num_groups))
      return invalid_argument(at + "top_k exceeds the experts of the kept groups");
  } else if (cfg.num_groups != 1 || cfg.topk_groups != 1) {
    return invalid_argument(at + "groups are only for kSigmoidGroupedTopK (leave them 1)");
  }
  if (logit_router) {
    if (!std::isfinite(cfg.routed_scaling_factor) || !(cfg.routed_scaling_factor > 0.0f))
      return invalid_argument(at + "routed_scaling_factor must be finite and > 0");
  } else if (cfg.renormalize || cfg.routed_scaling_factor != 1.0f) {
    return invalid_argument(at +
                            "kGiven uses the given weights as they are: leave renormalize "
                            "false and routed_scaling_factor 1");
  }
  return Status::ok();
}

}  // namespace detail

Status router_logits(DType act, const uint16_t* x, int64_t num_tokens, int64_t hidden,
                     const float* router_weight, int64_t num_experts, std::vector<float>* logits) {
  return detail::no_throw("ref::router_logits", [&]() -> Status {
    if (logits == nullptr) return invalid_argument("ref::router_logits: logits is null");
    if (act != DType::kBF16 && act != DType::kFP16)
      return invalid_argument("ref::router_logits: activation type must be bf16 or fp16");
    using detail::kMaxDim;
    if (num_tokens < 0 || hidden < 1 || num_experts < 1 || num_tokens >= kMaxDim ||
        hidden >= kMaxDim || num_experts >= kMaxDim)
      return invalid_argument("ref::router_logits: needs 0 <= T, 1 <= H, 1 <= E, all < 2^31");
    if (router_weight == nullptr || (x == nullptr && num_tokens > 0))
      return invalid_argument("ref::router_logits: x or router_weight is null");
    std::vector<float> out(static_cast<size_t>(num_tokens * num_experts));
    const bool parallel = num_tokens * num_experts >= detail::kParallelMinElements / hidden;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < num_tokens; ++t) {
      for (int64_t e = 0; e < num_experts; ++e) {
        double sum = 0.0;
        for (int64_t h = 0; h < hidden; ++h)
          sum += act_bits_to_float(act, x[t * hidden + h]) *
                 static_cast<double>(router_weight[e * hidden + h]);
        out[static_cast<size_t>(t * num_experts + e)] = static_cast<float>(sum);
      }
    }
    *logits = std::move(out);
    return Status::ok();
  });
}

Status route(const RouterConfig& cfg, const float* logits, int64_t num_tokens,
             const float* correction_bias, std::vector<int32_t>* topk_ids,
             std::vector<float>* topk_weights) {
  return detail::no_throw("ref::route", [&]() -> Status {
    if (topk_ids == nullptr || topk_weights == nullptr)
      return invalid_argument("ref::route: an output is null");
    QMOE_RETURN_IF_ERROR(detail::check_router_config(cfg, "ref::route"));
    if (cfg.kind == RouterKind::kGiven)
      return invalid_argument(
          "ref::route: kGiven has no logits to route; pass the ids and "
          "weights to build_plan");
    if (correction_bias != nullptr && cfg.kind != RouterKind::kSigmoidGroupedTopK)
      return invalid_argument("ref::route: correction_bias is only for kSigmoidGroupedTopK");
    if (num_tokens < 0 || num_tokens > std::numeric_limits<int32_t>::max() / cfg.top_k)
      return invalid_argument("ref::route: num_tokens is negative or T*k does not fit int32");
    if (logits == nullptr && num_tokens > 0) return invalid_argument("ref::route: logits is null");
    const int64_t E = cfg.num_experts, k = cfg.top_k;
    for (int64_t i = 0; i < num_tokens * E; ++i)
      if (!std::isfinite(logits[i]))
        return invalid_argument("ref::route: logit of token " + str(i / E) + ", expert " +
                                str(i % E) + " is not finite");
    if (correction_bias != nullptr)
      for (int64_t e = 0; e < E; ++e)
        if (!std::isfinite(correction_bias[e]))
          return invalid_argument("ref::route: correction_bias of expert " + str(e) +
                                  " is not finite");

    std::vector<int32_t> ids(static_cast<size_t>(num_tokens * k));
    std::vector<float> weights(ids.size());
    std::vector<TokenScratch> scratch(static_cast<size_t>(omp_get_max_threads()),
                                      TokenScratch(E, cfg.num_groups));
    const bool parallel = num_tokens * E * k >= detail::kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < num_tokens; ++t) {
      TokenScratch* s = &scratch[static_cast<size_t>(omp_get_thread_num())];
      if (cfg.kind == RouterKind::kSoftmaxTopK)
        route_softmax(cfg, logits + t * E, s, ids.data() + t * k, weights.data() + t * k);
      else
        route_sigmoid_grouped(cfg, logits + t * E, correction_bias, s, ids.data() + t * k,
                              weights.data() + t * k);
    }
    *topk_ids = std::move(ids);
    *topk_weights = std::move(weights);
    return Status::ok();
  });
}

Status build_plan(const int32_t* topk_ids, const float* topk_weights, int64_t num_tokens,
                  int32_t top_k, int32_t num_experts, RoutingPlan* plan) {
  return detail::no_throw("ref::build_plan", [&]() -> Status {
    if (plan == nullptr) return invalid_argument("ref::build_plan: plan is null");
    if (num_tokens < 0 || top_k < 1 || num_experts < 1)
      return invalid_argument("ref::build_plan: needs T >= 0, k >= 1, E >= 1");
    if (num_tokens > std::numeric_limits<int32_t>::max() / top_k)
      return invalid_argument("ref::build_plan: T*k does not fit int32");
    if (num_tokens > 0 && (topk_ids == nullptr || topk_weights == nullptr))
      return invalid_argument("ref::build_plan: topk_ids or topk_weights is null");
    const int64_t pairs = num_tokens * top_k;
    for (int64_t p = 0; p < pairs; ++p) {
      if (topk_ids[p] < 0 || topk_ids[p] >= num_experts)
        return invalid_argument("ref::build_plan: id " + str(topk_ids[p]) + " of token " +
                                str(p / top_k) + ", slot " + str(p % top_k) +
                                " is not in [0, E = " + str(num_experts) + ")");
      if (!std::isfinite(topk_weights[p]))
        return invalid_argument("ref::build_plan: weight of token " + str(p / top_k) + ", slot " +
                                str(p % top_k) + " is not finite");
    }
    RoutingPlan out;
    out.num_tokens = num_tokens;
    out.num_experts = num_experts;
    out.top_k = top_k;
    out.counts.assign(static_cast<size_t>(num_experts), 0);
    for (int64_t p = 0; p < pairs; ++p) ++out.counts[static_cast<size_t>(topk_ids[p])];
    out.offsets.assign(static_cast<size_t>(num_experts) + 1, 0);
    for (int64_t e = 0; e < num_experts; ++e) out.offsets[e + 1] = out.offsets[e] + out.counts[e];
    // Pairs are placed in increasing p, so each expert's rows stay in (token, slot) order.
    std::vector<int32_t> next(out.offsets.begin(), out.offsets.end() - 1);
    out.sorted_pair.resize(static_cast<size_t>(pairs));
    out.sorted_weight.resize(static_cast<size_t>(pairs));
    out.row_of_pair.resize(static_cast<size_t>(pairs));
    for (int64_t p = 0; p < pairs; ++p) {
      const int32_t r = next[static_cast<size_t>(topk_ids[p])]++;
      out.sorted_pair[r] = static_cast<int32_t>(p);
      out.sorted_weight[r] = topk_weights[p];
      out.row_of_pair[p] = r;
    }
    *plan = std::move(out);
    return Status::ok();
  });
}

Status gather(const RoutingPlan& plan, const uint16_t* x, int64_t hidden,
              std::vector<uint16_t>* x_sorted) {
  return detail::no_throw("ref::gather", [&]() -> Status {
    if (x_sorted == nullptr) return invalid_argument("ref::gather: x_sorted is null");
    if (hidden < 1 || hidden >= detail::kMaxDim)
      return invalid_argument("ref::gather: hidden must be in [1, 2^31)");
    QMOE_RETURN_IF_ERROR(check_plan(plan, "ref::gather"));
    if (x == nullptr && plan.num_tokens > 0) return invalid_argument("ref::gather: x is null");
    const int64_t rows = plan.num_tokens * plan.top_k;
    std::vector<uint16_t> out(static_cast<size_t>(rows * hidden));
    const bool parallel = rows * hidden >= detail::kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t token = plan.sorted_pair[r] / plan.top_k;
      std::copy(x + token * hidden, x + (token + 1) * hidden, out.begin() + r * hidden);
    }
    *x_sorted = std::move(out);
    return Status::ok();
  });
}

Status combine(const RoutingPlan& plan, const double* y_sorted, int64_t hidden,
               std::vector<double>* y) {
  return detail::no_throw("ref::combine", [&]() -> Status {
    if (y == nullptr) return invalid_argument("ref::combine: y is null");
    if (hidden < 1 || hidden >= detail::kMaxDim)
      return invalid_argument("ref::combine: hidden must be in [1, 2^31)");
    QMOE_RETURN_IF_ERROR(check_plan(plan, "ref::combine"));
    if (y_sorted == nullptr && plan.num_tokens > 0)
      return invalid_argument("ref::combine: y_sorted is null");
    const int64_t T = plan.num_tokens, k = plan.top_k;
    std::vector<double> out(static_cast<size_t>(T * hidden), 0.0);
    const bool parallel = T * k * hidden >= detail::kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < T; ++t) {
      double* yt = out.data() + t * hidden;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t r = plan.row_of_pair[t * k + j];
        const double w = plan.sorted_weight[r];
        const double* src = y_sorted + r * hidden;
        for (int64_t h = 0; h < hidden; ++h) yt[h] += w * src[h];
      }
    }
    *y = std::move(out);
    return Status::ok();
  });
}

}  // namespace qmoe::ref
