// The MoE data path of the CPU reference (docs/moe.md): routers against brute-force
// transcriptions of their definitions (rank counting, sorted copies, HF-style masking),
// RoutingPlan invariants, gather/combine identities, the whole layer against a naive per-token
// float64 loop over dequantized weights, and a table of bad inputs that must leave outputs
// untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "qmoe/cpu_ref.hpp"
#include "qmoe/moe.hpp"
#include "qmoe/numeric.hpp"
#include "qmoe/packed.hpp"
#include "qmoe/quantize.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::act_value;
using test::random_activations;
using test::to_act;

// ---- helpers -----------------------------------------------------------------------------

// Logits [T, E]; with ties, drawn from 5 values so most tokens have equal logits.
std::vector<float> random_logits(int64_t tokens, int64_t experts, bool ties, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(tokens * experts));
  for (auto& l : logits)
    l = ties ? 0.5f * static_cast<float>(static_cast<int>(rng() % 5) - 2) : normal(rng);
  return logits;
}

// One expert [n, k] per format, with weights below 1 in magnitude (dense: below 0.2).
ExpertBank random_bank(const std::vector<std::string>& formats, int64_t n, int64_t k,
                       std::mt19937& rng) {
  return test::bank_of(formats, [&](const FormatSpec& f) {
    const float scale_limit = 1.0f / static_cast<float>(1u << f.bits);
    return test::packed(test::moderate_logical(f, n, k, 0.2f, scale_limit, rng));
  });
}

RouterConfig softmax_router(int32_t experts, int32_t k, bool renormalize) {
  RouterConfig cfg;
  cfg.kind = RouterKind::kSoftmaxTopK;
  cfg.num_experts = experts;
  cfg.top_k = k;
  cfg.renormalize = renormalize;
  return cfg;
}

RouterConfig deepseek_router(int32_t experts, int32_t groups, int32_t topk_groups, int32_t k) {
  RouterConfig cfg;
  cfg.kind = RouterKind::kSigmoidGroupedTopK;
  cfg.num_experts = experts;
  cfg.top_k = k;
  cfg.renormalize = true;
  cfg.routed_scaling_factor = 2.5f;
  cfg.num_groups = groups;
  cfg.topk_groups = topk_groups;
  return cfg;
}

RouterConfig given_router(int32_t experts, int32_t k) {
  RouterConfig cfg;
  cfg.kind = RouterKind::kGiven;
  cfg.num_experts = experts;
  cfg.top_k = k;
  return cfg;
}

// What a router chose: ids and float64 weights [T, k].
struct Choice {
  std::vector<int32_t> ids;
  std::vector<double> weights;
};

// Softmax top-k by rank counting: expert e goes to slot rank(e), the number of experts with a
// larger logit or an equal logit and a lower index (docs/moe.md §1.1, §1.4).
Choice brute_force_softmax(const RouterConfig& cfg, const std::vector<float>& logits,
                           int64_t tokens) {
  const int64_t E = cfg.num_experts, k = cfg.top_k;
  Choice c{std::vector<int32_t>(static_cast<size_t>(tokens * k), -1),
           std::vector<double>(static_cast<size_t>(tokens * k))};
  for (int64_t t = 0; t < tokens; ++t) {
    const float* l = logits.data() + t * E;
    double total = 0.0;
    for (int64_t e = 0; e < E; ++e) total += std::exp(static_cast<double>(l[e]));
    for (int64_t e = 0; e < E; ++e) {
      int64_t rank = 0;
      for (int64_t o = 0; o < E; ++o) rank += l[o] > l[e] || (l[o] == l[e] && o < e);
      if (rank < k) c.ids[static_cast<size_t>(t * k + rank)] = static_cast<int32_t>(e);
    }
    double chosen = 0.0;
    for (int64_t j = 0; j < k; ++j)
      chosen += std::exp(static_cast<double>(l[c.ids[static_cast<size_t>(t * k + j)]]));
    for (int64_t j = 0; j < k; ++j) {
      const double p = std::exp(static_cast<double>(l[c.ids[static_cast<size_t>(t * k + j)]]));
      c.weights[static_cast<size_t>(t * k + j)] =
          p / (cfg.renormalize ? chosen : total) * cfg.routed_scaling_factor;
    }
  }
  return c;
}

// DeepSeek-V3 transcribed step by step like the HF modelling code, with masked experts at
// -inf (docs/moe.md §1.2): sorted copies of each group, a stable sort of the groups, a mask,
// a stable sort of all experts. Without a bias, groups are scored by their best expert, as
// vLLM's grouped_topk does.
Choice transcribed_deepseek(const RouterConfig& cfg, const std::vector<float>& logits,
                            const std::vector<float>& bias, int64_t tokens) {
  const int64_t E = cfg.num_experts, k = cfg.top_k, G = cfg.num_groups, size = E / G;
  Choice c;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> scores(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) {
      scores[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[t * E + e])));
      choice[e] = scores[e] + (bias.empty() ? 0.0 : bias[e]);
    }
    std::vector<double> group_scores(static_cast<size_t>(G));
    for (int64_t g = 0; g < G; ++g) {
      std::vector<double> members(choice.begin() + g * size, choice.begin() + (g + 1) * size);
      std::sort(members.rbegin(), members.rend());
      group_scores[g] = bias.empty() ? members[0] : members[0] + members[1];
    }
    std::vector<int64_t> groups(static_cast<size_t>(G));
    std::iota(groups.begin(), groups.end(), 0);
    std::stable_sort(groups.begin(), groups.end(),
                     [&](int64_t a, int64_t b) { return group_scores[a] > group_scores[b]; });
    std::vector<bool> kept(static_cast<size_t>(G), false);
    for (int64_t i = 0; i < cfg.topk_groups; ++i) kept[groups[i]] = true;
    std::vector<double> masked(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e)
      masked[e] = kept[e / size] ? choice[e] : -std::numeric_limits<double>::infinity();
    std::vector<int64_t> experts(static_cast<size_t>(E));
    std::iota(experts.begin(), experts.end(), 0);
    std::stable_sort(experts.begin(), experts.end(),
                     [&](int64_t a, int64_t b) { return masked[a] > masked[b]; });
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) sum += scores[experts[j]];
    for (int64_t j = 0; j < k; ++j) {
      c.ids.push_back(static_cast<int32_t>(experts[j]));
      c.weights.push_back(scores[experts[j]] / (cfg.renormalize ? sum : 1.0) *
                          cfg.routed_scaling_factor);
    }
  }
  return c;
}

Choice routed(const RouterConfig& cfg, const std::vector<float>& logits, int64_t tokens,
              const float* bias = nullptr) {
  std::vector<int32_t> ids;
  std::vector<float> weights;
  const Status st = ref::route(cfg, logits.data(), tokens, bias, &ids, &weights);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return Choice{ids, std::vector<double>(weights.begin(), weights.end())};
}

// Same ids; weights equal to the float32 rounding of the float64 definition.
void expect_same_choice(const Choice& got, const Choice& want) {
  ASSERT_EQ(got.ids, want.ids);
  ASSERT_EQ(got.weights.size(), want.weights.size());
  for (size_t i = 0; i < got.weights.size(); ++i)
    EXPECT_NEAR(got.weights[i], want.weights[i], 1e-6 * std::fabs(want.weights[i])) << "pair " << i;
}

RoutingPlan planned(const Choice& c, int64_t tokens, int32_t k, int32_t experts) {
  const std::vector<float> weights(c.weights.begin(), c.weights.end());
  RoutingPlan plan;
  const Status st = ref::build_plan(c.ids.data(), weights.data(), tokens, k, experts, &plan);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return plan;
}

// ids [T, k] drawn uniformly from `allowed`, repeats within a token included.
Choice random_choice(int64_t tokens, int32_t k, const std::vector<int32_t>& allowed,
                     std::mt19937& rng) {
  std::uniform_real_distribution<float> weight(-1.0f, 1.0f);
  Choice c;
  for (int64_t p = 0; p < tokens * k; ++p) {
    c.ids.push_back(allowed[rng() % allowed.size()]);
    c.weights.push_back(weight(rng));
  }
  return c;
}

// ---- routers -----------------------------------------------------------------------------

TEST(MoeRefRouting, SoftmaxTopKMatchesRankCountingWithAndWithoutTies) {
  std::mt19937 rng(101);
  for (bool ties : {false, true}) {
    for (bool renormalize : {false, true}) {
      SCOPED_TRACE(std::string(ties ? "ties" : "distinct") + (renormalize ? " renorm" : ""));
      const RouterConfig cfg = softmax_router(10, 3, renormalize);
      const std::vector<float> logits = random_logits(57, 10, ties, rng);
      expect_same_choice(routed(cfg, logits, 57), brute_force_softmax(cfg, logits, 57));
    }
  }
}

TEST(MoeRefRouting, SoftmaxTiesGoToTheLowerExpertInSlotOrder) {
  const RouterConfig cfg = softmax_router(6, 4, false);
  const std::vector<float> logits = {1.0f, 3.0f, 1.0f, 3.0f, 0.0f, 1.0f};
  const Choice c = routed(cfg, logits, 1);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{1, 3, 0, 2}));
  EXPECT_EQ(c.weights[0], c.weights[1]);
  EXPECT_EQ(c.weights[2], c.weights[3]);
}

TEST(MoeRefRouting, RenormalisedWeightsSumToTheScalingFactor) {
  std::mt19937 rng(102);
  for (const float factor : {1.0f, 2.5f}) {
    RouterConfig softmax = softmax_router(64, 6, true);
    softmax.routed_scaling_factor = factor;
    RouterConfig deepseek = deepseek_router(64, 8, 3, 6);
    deepseek.routed_scaling_factor = factor;
    // Large logits too: the sigmoids of a token's chosen experts may all underflow in float64.
    std::vector<float> logits = random_logits(40, 64, false, rng);
    for (int64_t e = 0; e < 64; ++e) logits[static_cast<size_t>(39 * 64 + e)] = -1000.0f - e;
    for (const RouterConfig& cfg : {softmax, deepseek}) {
      const Choice c = routed(cfg, logits, 40);
      for (int64_t t = 0; t < 40; ++t) {
        double sum = 0.0;
        for (int64_t j = 0; j < 6; ++j) sum += c.weights[static_cast<size_t>(t * 6 + j)];
        EXPECT_NEAR(sum, factor, 1e-6 * factor) << "token " << t;
      }
    }
  }
}

TEST(MoeRefRouting, DeepSeekGroupedRoutingMatchesTranscription) {
  std::mt19937 rng(103);
  std::uniform_real_distribution<float> bias_dist(-0.3f, 0.3f);
  for (bool ties : {false, true}) {
    for (bool renormalize : {true, false}) {
      SCOPED_TRACE(std::string(ties ? "ties" : "distinct") + (renormalize ? " renorm" : ""));
      RouterConfig cfg = deepseek_router(16, 4, 2, 4);
      cfg.renormalize = renormalize;
      const std::vector<float> logits = random_logits(200, 16, ties, rng);
      std::vector<float> bias(16);
      // With ties, a bias from a small set keeps equal keys and equal group scores common.
      for (auto& b : bias) b = ties ? 0.25f * static_cast<float>(rng() % 3) : bias_dist(rng);
      expect_same_choice(routed(cfg, logits, 200, bias.data()),
                         transcribed_deepseek(cfg, logits, bias, 200));
      expect_same_choice(routed(cfg, logits, 200), transcribed_deepseek(cfg, logits, {}, 200));
    }
  }
}

TEST(MoeRefRouting, CorrectionBiasChangesTheChoiceButNotTheWeights) {
  std::mt19937 rng(104);
  const RouterConfig cfg = deepseek_router(16, 4, 2, 4);
  const std::vector<float> logits = random_logits(100, 16, false, rng);
  std::vector<float> bias(16);
  for (auto& b : bias) b = std::uniform_real_distribution<float>(-0.5f, 0.5f)(rng);
  const Choice plain = routed(cfg, logits, 100), biased = routed(cfg, logits, 100, bias.data());
  EXPECT_NE(plain.ids, biased.ids);
  // Whatever was chosen, its weight is 2.5 * sigmoid(logit) / sum of the chosen sigmoids.
  for (int64_t t = 0; t < 100; ++t) {
    double sum = 0.0;
    for (int64_t j = 0; j < 4; ++j)
      sum += 1.0 / (1.0 + std::exp(-logits[static_cast<size_t>(t * 16 + biased.ids[t * 4 + j])]));
    for (int64_t j = 0; j < 4; ++j) {
      const double s =
          1.0 / (1.0 + std::exp(-logits[static_cast<size_t>(t * 16 + biased.ids[t * 4 + j])]));
      EXPECT_NEAR(biased.weights[static_cast<size_t>(t * 4 + j)], 2.5 * s / sum, 1e-6);
    }
  }
  // A large bias on the expert with the lowest score puts it first; its weight stays small.
  std::vector<float> one_token(logits.begin(), logits.begin() + 16);
  const int32_t worst = static_cast<int32_t>(std::min_element(one_token.begin(), one_token.end()) -
                                             one_token.begin());
  std::vector<float> push(16, 0.0f);
  push[static_cast<size_t>(worst)] = 10.0f;
  const Choice pushed = routed(cfg, one_token, 1, push.data());
  EXPECT_EQ(pushed.ids[0], worst);
  EXPECT_LT(pushed.weights[0], pushed.weights[1]);
}

TEST(MoeRefRouting, GroupsScoreTopTwoSumWithABiasAndTheirBestExpertWithout) {
  // Scores 0.9, 0.1 | 0.8, 0.7: group 0 has the best expert, group 1 the larger top-2 sum.
  const RouterConfig cfg = deepseek_router(4, 2, 1, 1);
  std::vector<float> logits;
  for (double s : {0.9, 0.1, 0.8, 0.7}) logits.push_back(static_cast<float>(std::log(s / (1 - s))));
  EXPECT_EQ(routed(cfg, logits, 1).ids, std::vector<int32_t>{0});  // vLLM without a bias
  const std::vector<float> zeros(4, 0.0f);
  EXPECT_EQ(routed(cfg, logits, 1, zeros.data()).ids, std::vector<int32_t>{2});  // DeepSeek-V3
}

TEST(MoeRefRouting, ExpertsOfDroppedGroupsAreNeverChosenEvenWhenAllKeysAreNegative) {
  // With every biased key below 0, scoring masked experts 0 (instead of excluding them)
  // would pick them first. Here group 2 (experts 4, 5) is the only kept group.
  RouterConfig cfg = deepseek_router(8, 4, 1, 2);
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 3.0f, 2.0f, 0.4f, 0.5f};
  const std::vector<float> bias(8, -5.0f);
  const Choice c = routed(cfg, logits, 1, bias.data());
  EXPECT_EQ(c.ids, (std::vector<int32_t>{4, 5}));
}

TEST(MoeRefRouting, RouterGemmSumsInFloat64AndRoundsOnceToFloat) {
  std::mt19937 rng(105);
  const int64_t T = 9, H = 70, E = 5;
  for (DType act : {DType::kBF16, DType::kFP16}) {
    const std::vector<uint16_t> x = random_activations(act, T * H, 1.0f, rng);
    std::vector<float> wr(static_cast<size_t>(E * H));
    for (auto& w : wr) w = std::normal_distribution<float>(0.0f, 0.1f)(rng);
    std::vector<float> logits;
    ASSERT_TRUE(ref::router_logits(act, x.data(), T, H, wr.data(), E, &logits).is_ok());
    ASSERT_EQ(logits.size(), static_cast<size_t>(T * E));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) {
        double sum = 0.0;
        for (int64_t h = 0; h < H; ++h) sum += act_value(act, x[t * H + h]) * wr[e * H + h];
        EXPECT_EQ(logits[static_cast<size_t>(t * E + e)], static_cast<float>(sum));
      }
  }
}

// ---- plan, gather, combine -----------------------------------------------------------------

// Every invariant of docs/moe.md §2, given the ids and weights the plan was built from.
void expect_plan_invariants(const RoutingPlan& plan, const Choice& c) {
  const int64_t E = plan.num_experts, k = plan.top_k, pairs = plan.num_tokens * k;
  ASSERT_EQ(plan.counts.size(), static_cast<size_t>(E));
  ASSERT_EQ(plan.offsets.size(), static_cast<size_t>(E + 1));
  ASSERT_EQ(plan.sorted_pair.size(), static_cast<size_t>(pairs));
  ASSERT_EQ(plan.row_of_pair.size(), static_cast<size_t>(pairs));
  EXPECT_EQ(plan.offsets[0], 0);
  EXPECT_EQ(plan.offsets[E], pairs);
  int64_t total = 0;
  for (int64_t e = 0; e < E; ++e) {
    EXPECT_EQ(plan.counts[e], std::count(c.ids.begin(), c.ids.end(), static_cast<int32_t>(e)));
    EXPECT_EQ(plan.offsets[e + 1] - plan.offsets[e], plan.counts[e]);
    total += plan.counts[e];
    for (int64_t r = plan.offsets[e]; r < plan.offsets[e + 1]; ++r) {
      const int32_t p = plan.sorted_pair[r];
      EXPECT_EQ(c.ids[p], e) << "row " << r;
      EXPECT_EQ(plan.sorted_weight[r], static_cast<float>(c.weights[p])) << "row " << r;
      if (r > plan.offsets[e]) {
        EXPECT_LT(plan.sorted_pair[r - 1], p) << "unstable at row " << r;
      }
    }
  }
  EXPECT_EQ(total, pairs);
  std::vector<int> seen(static_cast<size_t>(pairs), 0);
  for (int64_t r = 0; r < pairs; ++r) {
    ++seen[plan.sorted_pair[r]];
    EXPECT_EQ(plan.row_of_pair[plan.sorted_pair[r]], r);
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), pairs) << "a pair is missing or repeated";
}

TEST(MoeRefPlan, WorkedExampleOfTheSpecHasItsLayout) {
  // docs/moe.md §2, copied from the spec.
  const std::vector<int32_t> ids = {2, 0, 2, 3, 0, 2};
  const std::vector<float> weights = {.6f, .4f, .7f, .3f, .5f, .5f};
  RoutingPlan plan;
  ASSERT_TRUE(ref::build_plan(ids.data(), weights.data(), 3, 2, 4, &plan).is_ok());
  EXPECT_EQ(plan.counts, (std::vector<int32_t>{2, 0, 3, 1}));
  EXPECT_EQ(plan.offsets, (std::vector<int32_t>{0, 2, 2, 5, 6}));
  EXPECT_EQ(plan.sorted_pair, (std::vector<int32_t>{1, 4, 0, 2, 5, 3}));
  EXPECT_EQ(plan.sorted_weight, (std::vector<float>{.4f, .5f, .6f, .7f, .5f, .3f}));
  EXPECT_EQ(plan.row_of_pair, (std::vector<int32_t>{2, 0, 3, 5, 1, 4}));
}

TEST(MoeRefPlan, InvariantsHoldForRoutedAndForRepeatedIds) {
  std::mt19937 rng(201);
  const RouterConfig cfg = softmax_router(12, 3, true);
  const Choice c = routed(cfg, random_logits(37, 12, true, rng), 37);
  expect_plan_invariants(planned(c, 37, 3, 12), c);
  // Caller-given ids may repeat an expert within a token: each (token, slot) is its own row.
  std::vector<int32_t> all(7);
  std::iota(all.begin(), all.end(), 0);
  const Choice repeats = random_choice(41, 4, all, rng);
  expect_plan_invariants(planned(repeats, 41, 4, 7), repeats);
}

TEST(MoeRefPlan, ExpertsWithoutTokensGetEmptyRanges) {
  std::mt19937 rng(202);
  const Choice c = random_choice(23, 2, {1, 4, 5}, rng);
  const RoutingPlan plan = planned(c, 23, 2, 8);
  expect_plan_invariants(plan, c);
  for (int e : {0, 2, 3, 6, 7}) EXPECT_EQ(plan.counts[e], 0) << "expert " << e;
  EXPECT_EQ(plan.offsets[8], 46);
  const RoutingPlan empty = planned(Choice{}, 0, 2, 8);
  EXPECT_EQ(empty.offsets, std::vector<int32_t>(9, 0));
  EXPECT_TRUE(empty.sorted_pair.empty());
}

TEST(MoeRefPlan, GatherCopiesEachTokenToEachOfItsRowsBitForBit) {
  std::mt19937 rng(203);
  const Choice c = random_choice(19, 3, {0, 2, 3, 5}, rng);
  const RoutingPlan plan = planned(c, 19, 3, 6);
  const int64_t H = 13;
  std::vector<uint16_t> x(static_cast<size_t>(19 * H));
  for (auto& v : x) v = static_cast<uint16_t>(rng());  // any pattern, NaNs included
  std::vector<uint16_t> xs;
  ASSERT_TRUE(ref::gather(plan, x.data(), H, &xs).is_ok());
  ASSERT_EQ(xs.size(), static_cast<size_t>(19 * 3 * H));
  for (int64_t t = 0; t < 19; ++t)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t h = 0; h < H; ++h)
        ASSERT_EQ(xs[static_cast<size_t>(plan.row_of_pair[t * 3 + j] * H + h)],
                  x[static_cast<size_t>(t * H + h)]);
}

TEST(MoeRefPlan, CombineOfGatheredRowsScalesEachTokenByItsWeightSum) {
  std::mt19937 rng(204);
  const RouterConfig cfg = softmax_router(9, 4, true);
  const std::vector<float> logits = random_logits(31, 9, false, rng);
  const Choice c = routed(cfg, logits, 31);
  const RoutingPlan plan = planned(c, 31, 4, 9);
  const int64_t H = 11;
  const std::vector<uint16_t> x = random_activations(DType::kBF16, 31 * H, 1.0f, rng);
  std::vector<uint16_t> xs;
  ASSERT_TRUE(ref::gather(plan, x.data(), H, &xs).is_ok());
  std::vector<double> ys(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) ys[i] = bf16_to_float(xs[i]);
  std::vector<double> y;
  ASSERT_TRUE(ref::combine(plan, ys.data(), H, &y).is_ok());
  for (int64_t t = 0; t < 31; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const double xv = bf16_to_float(x[static_cast<size_t>(t * H + h)]);
      double want = 0.0;
      for (int64_t j = 0; j < 4; ++j) want += static_cast<float>(c.weights[t * 4 + j]) * xv;
      EXPECT_EQ(y[static_cast<size_t>(t * H + h)], want);        // same products, same slot order
      EXPECT_NEAR(y[static_cast<size_t>(t * H + h)], xv, 1e-6);  // renormalised: weights sum 1
    }
}

TEST(MoeRefPlan, CombineIsTheWeightedAdjointOfGather) {
  // sum_t <combine(ys)[t], z[t]> = sum_r w_r <ys[r], z[token of r]> for any ys and z.
  std::mt19937 rng(205);
  const Choice c = random_choice(17, 3, {0, 1, 3, 4, 6}, rng);
  const RoutingPlan plan = planned(c, 17, 3, 7);
  const int64_t H = 6;
  std::normal_distribution<double> normal;
  std::vector<double> ys(static_cast<size_t>(17 * 3 * H)), z(static_cast<size_t>(17 * H));
  for (auto& v : ys) v = normal(rng);
  for (auto& v : z) v = normal(rng);
  std::vector<double> y;
  ASSERT_TRUE(ref::combine(plan, ys.data(), H, &y).is_ok());
  double lhs = 0.0, rhs = 0.0, magnitude = 0.0;
  for (size_t i = 0; i < y.size(); ++i) lhs += y[i] * z[i];
  for (int64_t r = 0; r < 17 * 3; ++r)
    for (int64_t h = 0; h < H; ++h) {
      const double term = plan.sorted_weight[r] * ys[static_cast<size_t>(r * H + h)] *
                          z[static_cast<size_t>(plan.sorted_pair[r] / 3 * H + h)];
      rhs += term;
      magnitude += std::fabs(term);
    }
  EXPECT_NEAR(lhs, rhs, 1e-13 * magnitude);
}

// ---- the whole layer ---------------------------------------------------------------------

// One MoE layer's weights: routed banks w13 [E][2I, H] and w2 [E][H, I], and optionally a
// shared expert [2Is, H] / [H, Is].
struct Layer {
  ExpertBank w13, w2, shared_w13, shared_w2;
  bool shared = false;
};

// The act-rounded weights of expert e as doubles, [n, k].
std::vector<double> weights_of(const ExpertBank& bank, int64_t e, DType act) {
  std::vector<uint16_t> bits;
  EXPECT_TRUE(ref::dequantize_to(bank.expert(e), act, &bits).is_ok());
  std::vector<double> w(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) w[i] = act_value(act, bits[i]);
  return w;
}

// out[c] += weight * FFN_e(x)[c] for one token, straight from docs/moe.md §3; magnitude[c]
// collects the absolute values of the added terms (the scale of float64 reordering error).
void add_expert(const ExpertBank& w13, const ExpertBank& w2, int64_t e, DType act,
                const uint16_t* x, double weight, double* out, double* magnitude) {
  const int64_t H = w13.k(), I = w13.n() / 2;
  const std::vector<double> a = weights_of(w13, e, act), d = weights_of(w2, e, act);
  std::vector<double> h(static_cast<size_t>(I));
  for (int64_t i = 0; i < I; ++i) {
    double g = 0.0, u = 0.0;
    for (int64_t c = 0; c < H; ++c) {
      g += act_value(act, x[c]) * a[static_cast<size_t>(i * H + c)];
      u += act_value(act, x[c]) * a[static_cast<size_t>((I + i) * H + c)];
    }
    const double silu = g / (1.0 + std::exp(-g));
    h[static_cast<size_t>(i)] = act_value(act, to_act(act, static_cast<float>(silu * u)));
  }
  for (int64_t c = 0; c < H; ++c) {
    double o = 0.0, m = 0.0;
    for (int64_t i = 0; i < I; ++i) {
      o += h[static_cast<size_t>(i)] * d[static_cast<size_t>(c * I + i)];
      m += std::fabs(h[static_cast<size_t>(i)] * d[static_cast<size_t>(c * I + i)]);
    }
    out[c] += weight * o;
    magnitude[c] += std::fabs(weight) * m;
  }
}

// The layer token by token against ref::moe_layer_forward(in), for the routing `want` (the
// router's definition). A logit router's float32 weights are taken from ref::route once they
// match `want`, so that the layer's float64 arithmetic can be compared tightly.
void expect_layer_matches_naive_loop(const Layer& layer, const ref::MoeLayerInputs& in,
                                     const Choice& want) {
  const int64_t T = in.num_tokens, H = layer.w13.k(), k = in.router.top_k;
  Choice c = want;
  if (in.router.kind != RouterKind::kGiven) {
    const std::vector<float> logits(in.logits, in.logits + T * in.router.num_experts);
    c = routed(in.router, logits, T, in.correction_bias);
    ASSERT_NO_FATAL_FAILURE(expect_same_choice(c, want));
  }
  std::vector<double> y = {-1.0};
  const Status st = ref::moe_layer_forward(in, &y);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(y.size(), static_cast<size_t>(T * H));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> expected(static_cast<size_t>(H), 0.0), magnitude(expected.size(), 0.0);
    const uint16_t* xt = in.x + t * H;
    for (int64_t j = 0; j < k; ++j)
      add_expert(layer.w13, layer.w2, c.ids[t * k + j], in.act, xt, c.weights[t * k + j],
                 expected.data(), magnitude.data());
    if (layer.shared)
      add_expert(layer.shared_w13, layer.shared_w2, 0, in.act, xt, 1.0, expected.data(),
                 magnitude.data());
    for (int64_t h = 0; h < H; ++h) {
      const double got = y[static_cast<size_t>(t * H + h)];
      ASSERT_TRUE(std::isfinite(got));
      ASSERT_NEAR(got, expected[h], 1e-13 * magnitude[h]) << "token " << t << " col " << h;
    }
  }
}

// Mixed formats on both banks; H = 96 and I = 32 pad to a tile on both K sides.
Layer mixed_layer(bool shared, std::mt19937& rng) {
  Layer l;
  l.w13 = random_bank({"int4:g32", "int3:g32:sym", "bf16", "int2:pc", "int8:g32", "fp16",
                       "int4:pc:sym", "int2:g32"},
                      64, 96, rng);
  l.w2 = random_bank(
      {"int4:g32", "fp16", "int3:pc", "int2:g32", "bf16", "int8:pc", "int3:g32", "int4:g32:sym"},
      96, 32, rng);
  l.shared = shared;
  if (shared) {
    l.shared_w13 = random_bank({"int4:g32"}, 48, 96, rng);  // Is = 24, not I
    l.shared_w2 = random_bank({"int8:pc"}, 96, 24, rng);
  }
  return l;
}

ref::MoeLayerInputs inputs_for(const Layer& l, DType act, const std::vector<uint16_t>& x,
                               const RouterConfig& cfg) {
  ref::MoeLayerInputs in;
  in.act = act;
  in.x = x.data();
  in.num_tokens = static_cast<int64_t>(x.size()) / l.w13.k();
  in.router = cfg;
  in.w13 = &l.w13;
  in.w2 = &l.w2;
  if (l.shared) {
    in.shared_w13 = &l.shared_w13;
    in.shared_w2 = &l.shared_w2;
  }
  return in;
}

TEST(MoeRefLayer, SoftmaxLayerWithSharedExpertMatchesNaiveLoop) {
  std::mt19937 rng(301);
  const Layer layer = mixed_layer(true, rng);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    SCOPED_TRACE(dtype_name(act));
    const int64_t T = 21;
    const std::vector<uint16_t> x = random_activations(act, T * 96, 1.0f, rng);
    const RouterConfig cfg = softmax_router(8, 2, false);
    const std::vector<float> logits = random_logits(T, 8, false, rng);
    ref::MoeLayerInputs in = inputs_for(layer, act, x, cfg);
    in.logits = logits.data();
    expect_layer_matches_naive_loop(layer, in, brute_force_softmax(cfg, logits, T));
  }
}

TEST(MoeRefLayer, DeepSeekLayerWithBiasAndSharedExpertMatchesNaiveLoop) {
  std::mt19937 rng(302);
  const Layer layer = mixed_layer(true, rng);
  const int64_t T = 17;
  const std::vector<uint16_t> x = random_activations(DType::kBF16, T * 96, 1.0f, rng);
  const RouterConfig cfg = deepseek_router(8, 4, 2, 3);
  const std::vector<float> logits = random_logits(T, 8, false, rng);
  std::vector<float> bias(8);
  for (auto& b : bias) b = std::uniform_real_distribution<float>(-0.3f, 0.3f)(rng);
  ref::MoeLayerInputs in = inputs_for(layer, DType::kBF16, x, cfg);
  in.logits = logits.data();
  in.correction_bias = bias.data();
  expect_layer_matches_naive_loop(layer, in, transcribed_deepseek(cfg, logits, bias, T));
}

TEST(MoeRefLayer, GivenRoutingWithIdleExpertsMatchesNaiveLoop) {
  std::mt19937 rng(303);
  const Layer layer = mixed_layer(false, rng);
  for (DType act : {DType::kFP16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(act));
    const int64_t T = 25;
    const std::vector<uint16_t> x = random_activations(act, T * 96, 1.0f, rng);
    // Experts 0, 1, 4 and 7 get no token; negative weights are allowed as given.
    const Choice c = random_choice(T, 3, {2, 3, 5, 6}, rng);
    const std::vector<float> weights(c.weights.begin(), c.weights.end());
    ref::MoeLayerInputs in = inputs_for(layer, act, x, given_router(8, 3));
    in.topk_ids = c.ids.data();
    in.topk_weights = weights.data();
    expect_layer_matches_naive_loop(layer, in, c);
  }
}

TEST(MoeRefLayer, OddDimsWithPerChannelFormatsMatchNaiveLoop) {
  std::mt19937 rng(304);
  Layer layer;
  layer.w13 = random_bank({"int4:pc", "fp16", "int3:pc:sym"}, 2 * 21, 45, rng);
  layer.w2 = random_bank({"bf16", "int8:pc", "int2:pc"}, 45, 21, rng);
  const int64_t T = 7;
  const std::vector<uint16_t> x = random_activations(DType::kBF16, T * 45, 1.0f, rng);
  const RouterConfig cfg = softmax_router(3, 2, true);
  const std::vector<float> logits = random_logits(T, 3, true, rng);
  ref::MoeLayerInputs in = inputs_for(layer, DType::kBF16, x, cfg);
  in.logits = logits.data();
  expect_layer_matches_naive_loop(layer, in, brute_force_softmax(cfg, logits, T));
}

TEST(MoeRefLayer, RouterWeightPathEqualsTheLogitsOfTheRouterGemm) {
  std::mt19937 rng(305);
  const Layer layer = mixed_layer(false, rng);
  const int64_t T = 12;
  const std::vector<uint16_t> x = random_activations(DType::kFP16, T * 96, 1.0f, rng);
  std::vector<float> wr(8 * 96);
  for (auto& w : wr) w = std::normal_distribution<float>(0.0f, 0.2f)(rng);
  std::vector<float> logits;
  ASSERT_TRUE(ref::router_logits(DType::kFP16, x.data(), T, 96, wr.data(), 8, &logits).is_ok());
  const RouterConfig cfg = softmax_router(8, 2, true);
  ref::MoeLayerInputs by_logits = inputs_for(layer, DType::kFP16, x, cfg);
  by_logits.logits = logits.data();
  ref::MoeLayerInputs by_weight = inputs_for(layer, DType::kFP16, x, cfg);
  by_weight.router_weight = wr.data();
  std::vector<double> y1, y2;
  ASSERT_TRUE(ref::moe_layer_forward(by_logits, &y1).is_ok());
  ASSERT_TRUE(ref::moe_layer_forward(by_weight, &y2).is_ok());
  EXPECT_EQ(y1, y2);
}

TEST(MoeRefLayer, NoTokensGivesEmptyOutput) {
  std::mt19937 rng(306);
  const Layer layer = mixed_layer(true, rng);
  const std::vector<uint16_t> no_x;
  const std::vector<float> no_logits;
  ref::MoeLayerInputs in = inputs_for(layer, DType::kBF16, no_x, softmax_router(8, 2, false));
  in.logits = no_logits.data();
  std::vector<double> y = {3.0};
  const Status st = ref::moe_layer_forward(in, &y);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_TRUE(y.empty());
}

TEST(MoeRefLayer, SiluAndMulRoundsThroughFloatToTheActivationType) {
  // g = 300, u = 300: SiLU(g) * u = 90000, beyond fp16 (inf), a plain bf16 value;
  // g = -800: SiLU underflows to -0.
  const std::vector<double> gate_up = {300.0, -800.0, 1.0, 300.0, 5.0, 3.0};
  for (DType act : {DType::kBF16, DType::kFP16}) {
    std::vector<uint16_t> h;
    ASSERT_TRUE(ref::silu_and_mul(act, gate_up.data(), 1, 3, &h).is_ok());
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0], to_act(act, 90000.0f));
    EXPECT_EQ(act_value(act, h[1]), 0.0);
    EXPECT_EQ(h[2], to_act(act, static_cast<float>(1.0 / (1.0 + std::exp(-1.0)) * 3.0)));
  }
  std::vector<uint16_t> h;
  ASSERT_TRUE(ref::silu_and_mul(DType::kFP16, gate_up.data(), 1, 3, &h).is_ok());
  EXPECT_EQ(h[0], 0x7C00);
}

TEST(MoeRefLayer, InterleavedGateUpGivesTheSameActivationBitForBit) {
  // The gated epilogue's layout end to end on the CPU: w13 gate-first and the same weights in
  // interleave_gate_up's order, quantized per expert (RTN and GPTQ), through grouped_gemm and
  // silu_and_mul / silu_and_mul_interleaved: identical h, bit for bit (every row keeps its
  // codes and scales, so every product is the same float64 sum).
  const int64_t inter = 24, hidden = 256, rows = 2 * inter;
  std::mt19937 rng(8801);
  const std::vector<float> calib = test::gaussian(64 * hidden, 1.0f, rng);
  for (const char* format : {"int4:g128", "int3:g64:sym", "int8:pc", "bf16"}) {
    SCOPED_TRACE(format);
    for (QuantMethod method : {QuantMethod::kRtnMinMax, QuantMethod::kGptq}) {
      if (method == QuantMethod::kGptq && std::string(format) == "bf16") continue;
      QuantizeOptions opt;
      opt.method = method;
      if (method == QuantMethod::kGptq) {
        opt.calib = calib.data();
        opt.calib_rows = 64;
      }
      std::vector<PackedMatrix> plain, woven;
      for (int e = 0; e < 2; ++e) {
        const std::vector<float> w = test::gaussian(rows * hidden, 0.05f, rng);
        std::vector<float> w_woven;
        ASSERT_TRUE(interleave_gate_up(w.data(), rows, hidden, &w_woven).is_ok());
        plain.push_back(test::quantized(w, rows, hidden, test::parse_format(format), opt));
        woven.push_back(test::quantized(w_woven, rows, hidden, test::parse_format(format), opt));
      }
      const ExpertBank a = test::make_bank(std::move(plain)), b = test::make_bank(std::move(woven));
      const std::vector<int32_t> offsets = {0, 3, 7};
      const std::vector<uint16_t> x = random_activations(DType::kBF16, 7 * hidden, 2.0f, 8802);
      std::vector<double> ya, yb;
      ASSERT_TRUE(ref::grouped_gemm(a, DType::kBF16, x.data(), 7, offsets.data(), &ya).is_ok());
      ASSERT_TRUE(ref::grouped_gemm(b, DType::kBF16, x.data(), 7, offsets.data(), &yb).is_ok());
      std::vector<uint16_t> ha, hb;
      ASSERT_TRUE(ref::silu_and_mul(DType::kBF16, ya.data(), 7, inter, &ha).is_ok());
      ASSERT_TRUE(ref::silu_and_mul_interleaved(DType::kBF16, yb.data(), 7, inter, &hb).is_ok());
      EXPECT_EQ(ha, hb);
      EXPECT_NE(ya, yb) << "the two banks' rows are in the same order: the test sees nothing";
    }
  }
}

TEST(MoeRefLayer, InterleaveGateUpPutsEightGateRowsThenEightUpRows) {
  // Row r of w13 [32, 2] holds (r, -r): the result's rows are gate 0-7, up 16-23, gate 8-15,
  // up 24-31.
  std::vector<float> w(64);
  for (int r = 0; r < 32; ++r) {
    w[2 * r] = static_cast<float>(r);
    w[2 * r + 1] = static_cast<float>(-r);
  }
  std::vector<float> out;
  ASSERT_TRUE(interleave_gate_up(w.data(), 32, 2, &out).is_ok());
  ASSERT_EQ(out.size(), 64u);
  const int want[32] = {0, 1, 2,  3,  4,  5,  6,  7,  16, 17, 18, 19, 20, 21, 22, 23,
                        8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
  for (int r = 0; r < 32; ++r) {
    EXPECT_EQ(out[2 * r], static_cast<float>(want[r])) << "row " << r;
    EXPECT_EQ(out[2 * r + 1], static_cast<float>(-want[r])) << "row " << r;
  }
  // silu_and_mul_interleaved reads its columns in the same order: column 16 s + 8 + j is the up
  // of output 8 s + j.
  std::vector<double> gate_up(32, 0.0);
  gate_up[8 + 3] = 2.0;  // up of output 3
  gate_up[3] = 1.0;      // gate of output 3
  std::vector<uint16_t> h;
  ASSERT_TRUE(ref::silu_and_mul_interleaved(DType::kBF16, gate_up.data(), 1, 16, &h).is_ok());
  ASSERT_EQ(h.size(), 16u);
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(h[static_cast<size_t>(i)],
              i == 3 ? to_act(DType::kBF16, static_cast<float>(1.0 / (1.0 + std::exp(-1.0)) * 2.0))
                     : to_act(DType::kBF16, 0.0f))
        << "output " << i;
}

// ---- bad inputs: kInvalidArgument, outputs untouched -------------------------------------

TEST(MoeRefBadInput, InterleavingRejectsRowsThatAreNotWholeStripsWithoutWriting) {
  const std::vector<float> w(48 * 4, 1.0f);
  std::vector<float> out = {5.0f};
  for (int64_t rows : {int64_t{0}, int64_t{8}, int64_t{24}, int64_t{-16}}) {
    EXPECT_EQ(interleave_gate_up(w.data(), rows, 4, &out).code(), StatusCode::kInvalidArgument)
        << rows;
    EXPECT_EQ(out, std::vector<float>{5.0f});
  }
  EXPECT_EQ(interleave_gate_up(w.data(), 16, 0, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(interleave_gate_up(nullptr, 16, 4, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(interleave_gate_up(w.data(), 16, 4, nullptr).code(), StatusCode::kInvalidArgument);
  const std::vector<double> gate_up(48, 1.0);
  std::vector<uint16_t> h = {7};
  for (int64_t inter : {int64_t{0}, int64_t{4}, int64_t{12}})
    EXPECT_EQ(ref::silu_and_mul_interleaved(DType::kBF16, gate_up.data(), 1, inter, &h).code(),
              StatusCode::kInvalidArgument)
        << inter;
  EXPECT_EQ(ref::silu_and_mul_interleaved(DType::kBF16, nullptr, 1, 8, &h).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::silu_and_mul_interleaved(DType::kBF16, gate_up.data(), 1, 8, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(h, std::vector<uint16_t>{7});
}

TEST(MoeRefBadInput, RouteRejectsBadConfigsAndNonFiniteInputsWithoutWriting) {
  std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 3.0f, -2.0f, 0.25f};
  const std::vector<float> bias = {0.1f, 0.0f, -0.1f, 0.2f, 0.0f, 0.0f, 0.3f, -0.2f};
  std::vector<float> nan_bias = bias;
  nan_bias[3] = std::nanf("");
  struct Case {
    const char* what;
    RouterConfig cfg;
    int bad_logit;  // index set to `bad_value`, or -1
    float bad_value;
    const float* bias;
  };
  const auto with = [](RouterConfig c, auto edit) {
    edit(c);
    return c;
  };
  const RouterConfig soft = softmax_router(8, 2, true), deep = deepseek_router(8, 4, 2, 2);
  const float inf = std::numeric_limits<float>::infinity();
  const Case cases[] = {
      {"k > E", softmax_router(8, 9, false), -1, 0, nullptr},
      {"k = 0", softmax_router(8, 0, false), -1, 0, nullptr},
      {"k < 0", softmax_router(8, -1, false), -1, 0, nullptr},
      {"E = 0", softmax_router(0, 1, false), -1, 0, nullptr},
      {"k beyond the kept groups", deepseek_router(8, 4, 2, 5), -1, 0, nullptr},
      {"groups do not divide E", deepseek_router(8, 3, 1, 2), -1, 0, nullptr},
      {"groups of one expert", deepseek_router(8, 8, 2, 2), -1, 0, nullptr},
      {"no groups", deepseek_router(8, 0, 1, 2), -1, 0, nullptr},
      {"topk_groups > groups", deepseek_router(8, 4, 5, 2), -1, 0, nullptr},
      {"topk_groups = 0", deepseek_router(8, 4, 0, 2), -1, 0, nullptr},
      {"softmax with groups", with(soft, [](RouterConfig& c) { c.num_groups = 2; }), -1, 0,
       nullptr},
      {"softmax with bias", soft, -1, 0, bias.data()},
      {"zero scaling", with(deep, [](RouterConfig& c) { c.routed_scaling_factor = 0; }), -1, 0,
       nullptr},
      {"NaN scaling", with(deep, [](RouterConfig& c) { c.routed_scaling_factor = std::nanf(""); }),
       -1, 0, nullptr},
      {"kGiven has no logits", given_router(8, 2), -1, 0, nullptr},
      {"bad kind", with(soft, [](RouterConfig& c) { c.kind = static_cast<RouterKind>(9); }), -1, 0,
       nullptr},
      {"NaN logit", soft, 5, std::nanf(""), nullptr},
      {"NaN logit (sigmoid)", deep, 0, std::nanf(""), nullptr},
      {"+inf logit", soft, 2, inf, nullptr},
      {"-inf logit", deep, 7, -inf, nullptr},
      {"NaN bias", deep, -1, 0, nan_bias.data()},
  };
  for (const Case& c : cases) {
    std::vector<float> l = logits;
    if (c.bad_logit >= 0) l[static_cast<size_t>(c.bad_logit)] = c.bad_value;
    std::vector<int32_t> ids = {-7};
    std::vector<float> weights = {-7.0f};
    const Status st = ref::route(c.cfg, l.data(), 1, c.bias, &ids, &weights);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_FALSE(st.message().empty()) << c.what;
    EXPECT_EQ(ids, std::vector<int32_t>{-7}) << c.what;
    EXPECT_EQ(weights, std::vector<float>{-7.0f}) << c.what;
  }
  std::vector<int32_t> ids;
  std::vector<float> weights;
  EXPECT_EQ(ref::route(soft, nullptr, 1, nullptr, &ids, &weights).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::route(soft, logits.data(), -1, nullptr, &ids, &weights).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::route(soft, logits.data(), 1, nullptr, nullptr, &weights).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ref::route(deep, logits.data(), 1, bias.data(), &ids, &weights).is_ok());
}

TEST(MoeRefBadInput, BuildPlanRejectsBadIdsAndWeightsWithoutWriting) {
  const std::vector<int32_t> good_ids = {0, 2, 1, 2};
  const std::vector<float> good_weights = {0.5f, 0.5f, 0.25f, 0.75f};
  struct Case {
    const char* what;
    std::vector<int32_t> ids;
    std::vector<float> weights;
    int64_t tokens;
    int32_t k, experts;
  };
  const Case cases[] = {
      {"id = E", {0, 3, 1, 2}, good_weights, 2, 2, 3},
      {"negative id", {0, 2, -1, 2}, good_weights, 2, 2, 3},
      {"NaN weight", good_ids, {0.5f, std::nanf(""), 0.25f, 0.75f}, 2, 2, 3},
      {"inf weight",
       good_ids,
       {0.5f, 0.5f, std::numeric_limits<float>::infinity(), 0.75f},
       2,
       2,
       3},
      {"k = 0", good_ids, good_weights, 2, 0, 3},
      {"E = 0", good_ids, good_weights, 2, 2, 0},
      {"T < 0", good_ids, good_weights, -1, 2, 3},
      {"T*k beyond int32", good_ids, good_weights, int64_t{1} << 31, 2, 3},
  };
  RoutingPlan sentinel;
  sentinel.num_tokens = 99;
  sentinel.counts = {42};
  for (const Case& c : cases) {
    RoutingPlan plan = sentinel;
    const Status st =
        ref::build_plan(c.ids.data(), c.weights.data(), c.tokens, c.k, c.experts, &plan);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(plan.num_tokens, 99) << c.what;
    EXPECT_EQ(plan.counts, std::vector<int32_t>{42}) << c.what;
  }
  RoutingPlan plan;
  EXPECT_EQ(ref::build_plan(nullptr, good_weights.data(), 2, 2, 3, &plan).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::build_plan(good_ids.data(), good_weights.data(), 2, 2, 3, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ref::build_plan(good_ids.data(), good_weights.data(), 2, 2, 3, &plan).is_ok());
}

TEST(MoeRefBadInput, GatherAndCombineRejectBrokenPlansWithoutWriting) {
  std::mt19937 rng(401);
  const Choice c = random_choice(5, 2, {0, 1, 2}, rng);
  const RoutingPlan good = planned(c, 5, 2, 3);
  const std::vector<uint16_t> x(5 * 4, 0x3F80);
  const std::vector<double> ys(10 * 4, 1.5);
  struct Case {
    const char* what;
    void (*edit)(RoutingPlan*);
  };
  const Case cases[] = {
      {"counts too short", [](RoutingPlan* p) { p->counts.pop_back(); }},
      {"offsets not the scan", [](RoutingPlan* p) { ++p->offsets[1]; }},
      {"offsets[0] != 0", [](RoutingPlan* p) { p->offsets[0] = 1; }},
      {"negative count",
       [](RoutingPlan* p) {
         p->counts[0] = -1;
         p->offsets[1] = p->offsets[0] - 1;
       }},
      {"pair out of range", [](RoutingPlan* p) { p->sorted_pair[3] = 10; }},
      {"not inverse", [](RoutingPlan* p) { std::swap(p->row_of_pair[0], p->row_of_pair[1]); }},
      {"NaN weight", [](RoutingPlan* p) { p->sorted_weight[2] = std::nanf(""); }},
      {"T*k != offsets[E]", [](RoutingPlan* p) { p->num_tokens = 4; }},
      {"k = 0", [](RoutingPlan* p) { p->top_k = 0; }},
  };
  for (const Case& cs : cases) {
    RoutingPlan plan = good;
    cs.edit(&plan);
    std::vector<uint16_t> xs = {9};
    EXPECT_EQ(ref::gather(plan, x.data(), 4, &xs).code(), StatusCode::kInvalidArgument) << cs.what;
    EXPECT_EQ(xs, std::vector<uint16_t>{9}) << cs.what;
    std::vector<double> y = {9.0};
    EXPECT_EQ(ref::combine(plan, ys.data(), 4, &y).code(), StatusCode::kInvalidArgument) << cs.what;
    EXPECT_EQ(y, std::vector<double>{9.0}) << cs.what;
  }
  std::vector<uint16_t> xs;
  std::vector<double> y;
  EXPECT_EQ(ref::gather(good, x.data(), 0, &xs).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::gather(good, nullptr, 4, &xs).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::combine(good, nullptr, 4, &y).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ref::gather(good, x.data(), 4, &xs).is_ok());
  EXPECT_TRUE(ref::combine(good, ys.data(), 4, &y).is_ok());
}

TEST(MoeRefBadInput, LayerRejectsMismatchedBanksAndRoutingSourcesWithoutWriting) {
  std::mt19937 rng(402);
  const Layer layer = mixed_layer(true, rng);
  const ExpertBank wrong_k = random_bank(std::vector<std::string>(8, "int4:g32"), 64, 64, rng);
  const ExpertBank odd_n = random_bank({"bf16"}, 63, 96, rng);
  const int64_t T = 3;
  const std::vector<uint16_t> x = random_activations(DType::kBF16, T * 96, 1.0f, rng);
  const std::vector<float> logits = random_logits(T, 8, false, rng);
  std::vector<float> nan_logits = logits;
  nan_logits[4] = std::nanf("");
  const std::vector<float> wr(8 * 96, 0.01f), bias(8, 0.1f);
  const std::vector<int32_t> ids(T * 2, 1);
  const std::vector<float> weights(T * 2, 0.5f);
  const RouterConfig soft = softmax_router(8, 2, false);
  const auto base = [&]() {
    ref::MoeLayerInputs in = inputs_for(layer, DType::kBF16, x, soft);
    in.logits = logits.data();
    return in;
  };
  struct Case {
    const char* what;
    ref::MoeLayerInputs in;
  };
  std::vector<Case> cases;
  const auto add = [&](const char* what, auto edit) {
    ref::MoeLayerInputs in = base();
    edit(in);
    cases.push_back({what, in});
  };
  add("router E != bank E", [&](auto& in) { in.router = softmax_router(7, 2, false); });
  add("k > E", [&](auto& in) { in.router = softmax_router(8, 9, false); });
  add("w2 is w13", [&](auto& in) { in.w2 = &layer.w13; });
  add("w13 K != w2 N", [&](auto& in) { in.w13 = &wrong_k; });
  add("shared with one bank", [&](auto& in) { in.shared_w2 = nullptr; });
  add("shared w13 with odd n", [&](auto& in) { in.shared_w13 = &odd_n; });
  add("shared bank of 8 experts", [&](auto& in) {
    in.shared_w13 = &layer.w13;
    in.shared_w2 = &layer.w2;
  });
  add("null w13", [&](auto& in) { in.w13 = nullptr; });
  add("null x", [&](auto& in) { in.x = nullptr; });
  add("negative T", [&](auto& in) { in.num_tokens = -1; });
  add("bad act", [&](auto& in) { in.act = static_cast<DType>(5); });
  add("no routing source", [&](auto& in) { in.logits = nullptr; });
  add("logits and router weight", [&](auto& in) { in.router_weight = wr.data(); });
  add("ids for a logit router", [&](auto& in) { in.topk_ids = ids.data(); });
  add("bias for softmax", [&](auto& in) { in.correction_bias = bias.data(); });
  add("NaN logit", [&](auto& in) { in.logits = nan_logits.data(); });
  add("kGiven without ids", [&](auto& in) { in.router = given_router(8, 2); });
  add("kGiven with logits", [&](auto& in) {
    in.router = given_router(8, 2);
    in.topk_ids = ids.data();
    in.topk_weights = weights.data();
  });
  add("kGiven renormalised", [&](auto& in) {
    in.router = given_router(8, 2);
    in.router.renormalize = true;
    in.logits = nullptr;
    in.topk_ids = ids.data();
    in.topk_weights = weights.data();
  });
  for (const Case& c : cases) {
    std::vector<double> y = {-5.0};
    const Status st = ref::moe_layer_forward(c.in, &y);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what << ": " << st.to_string();
    EXPECT_EQ(y, std::vector<double>{-5.0}) << c.what;
  }
  std::vector<double> y;
  EXPECT_EQ(ref::moe_layer_forward(base(), nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ref::moe_layer_forward(base(), &y).is_ok());
}

}  // namespace
}  // namespace qmoe
