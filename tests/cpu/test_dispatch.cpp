// The offline dispatcher: allocate_formats against brute force, a greedy baseline and the
// Lagrangian bound; measure_candidates against the quantizers and packed sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "qmoe/dispatch.hpp"
#include "qmoe/packed.hpp"
#include "qmoe/quantize.hpp"
#include "src/dispatch_internal.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::gaussian;
using test::parse_format;

/// Spread of the random weights measured below: that of real projections.
constexpr float kWeightSigma = 0.02f;

double item_cost(const AllocationItem& item, int c) {
  return item.weight * item.candidates[static_cast<size_t>(c)].distortion;
}

/// Bytes and cost of a choice, summed independently of the allocator.
void totals(const std::vector<AllocationItem>& items, const std::vector<int>& choice,
            int64_t* bytes, double* cost) {
  *bytes = 0;
  *cost = 0.0;
  for (size_t i = 0; i < items.size(); ++i) {
    *bytes += items[i].candidates[static_cast<size_t>(choice[i])].bytes;
    *cost += item_cost(items[i], choice[i]);
  }
}

int64_t min_total_bytes(const std::vector<AllocationItem>& items) {
  int64_t sum = 0;
  for (const auto& item : items) {
    int64_t m = std::numeric_limits<int64_t>::max();
    for (const auto& c : item.candidates) m = std::min(m, c.bytes);
    sum += m;
  }
  return sum;
}

int64_t max_total_bytes(const std::vector<AllocationItem>& items) {
  int64_t sum = 0;
  for (const auto& item : items) {
    int64_t m = 0;
    for (const auto& c : item.candidates) m = std::max(m, c.bytes);
    sum += m;
  }
  return sum;
}

/// Every (bytes, cost) a full choice can have, by enumeration.
struct Combination {
  int64_t bytes;
  double cost;
};
std::vector<Combination> enumerate(const std::vector<AllocationItem>& items) {
  std::vector<Combination> all = {{0, 0.0}};
  for (const auto& item : items) {
    std::vector<Combination> next;
    for (const Combination& p : all)
      for (size_t c = 0; c < item.candidates.size(); ++c)
        next.push_back(
            {p.bytes + item.candidates[c].bytes, p.cost + item_cost(item, static_cast<int>(c))});
    all = std::move(next);
  }
  return all;
}

/// Lagrangian function L(lambda) = sum_i min_c (cost + lambda * bytes) - lambda * budget: a
/// lower bound on every feasible cost for every lambda >= 0 (computed here from scratch).
double lagrangian(const std::vector<AllocationItem>& items, int64_t budget, double lambda) {
  double sum = -lambda * static_cast<double>(budget);
  for (const auto& item : items) {
    double m = std::numeric_limits<double>::infinity();
    for (size_t c = 0; c < item.candidates.size(); ++c)
      m = std::min(m, item_cost(item, static_cast<int>(c)) +
                          lambda * static_cast<double>(item.candidates[c].bytes));
    sum += m;
  }
  return sum;
}

/// The baseline an exact allocator must never lose to: start from each item's smallest
/// candidate and repeatedly take the upgrade that saves the most cost per extra byte.
double greedy_cost(const std::vector<AllocationItem>& items, int64_t budget) {
  std::vector<int> choice(items.size());
  int64_t bytes = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& cands = items[i].candidates;
    for (size_t c = 1; c < cands.size(); ++c) {
      const auto& best = cands[static_cast<size_t>(choice[i])];
      if (cands[c].bytes < best.bytes ||
          (cands[c].bytes == best.bytes && cands[c].distortion < best.distortion))
        choice[i] = static_cast<int>(c);
    }
    bytes += cands[static_cast<size_t>(choice[i])].bytes;
  }
  for (;;) {
    double best_ratio = 0.0;
    size_t best_item = 0;
    int best_cand = -1;
    for (size_t i = 0; i < items.size(); ++i) {
      const double now = item_cost(items[i], choice[i]);
      const int64_t now_bytes = items[i].candidates[static_cast<size_t>(choice[i])].bytes;
      for (size_t c = 0; c < items[i].candidates.size(); ++c) {
        const double saving = now - item_cost(items[i], static_cast<int>(c));
        const int64_t extra = items[i].candidates[c].bytes - now_bytes;
        if (saving <= 0.0 || bytes + extra > budget) continue;
        const double ratio = extra <= 0 ? std::numeric_limits<double>::infinity()
                                        : saving / static_cast<double>(extra);
        if (ratio > best_ratio) {
          best_ratio = ratio;
          best_item = i;
          best_cand = static_cast<int>(c);
        }
      }
    }
    if (best_cand < 0) break;
    bytes += items[best_item].candidates[static_cast<size_t>(best_cand)].bytes -
             items[best_item].candidates[static_cast<size_t>(choice[best_item])].bytes;
    choice[best_item] = best_cand;
  }
  int64_t b;
  double cost;
  totals(items, choice, &b, &cost);
  return cost;
}

/// Small random instance. integer_values: weights and distortions are small integers, so
/// sums are exact and ties (equal costs, equal bytes, dominated candidates) are frequent.
std::vector<AllocationItem> random_small_instance(std::mt19937* rng, bool integer_values) {
  std::uniform_int_distribution<int> num_cands(1, 4), small(0, 6);
  std::uniform_int_distribution<int64_t> bytes(0, 12);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<AllocationItem> items(6);
  for (auto& item : items) {
    item.weight = integer_values ? small(*rng) : unit(*rng) * 3.0;
    item.candidates.resize(static_cast<size_t>(num_cands(*rng)));
    for (auto& c : item.candidates) {
      c.format = parse_format("int4:g128");
      c.bytes = bytes(*rng);
      c.distortion = integer_values ? small(*rng) : unit(*rng);
    }
  }
  return items;
}

TEST(DispatchAllocate, MatchesBruteForceOnEveryBudgetOfRandomSmallInstances) {
  std::mt19937 rng(20240611);
  for (int instance = 0; instance < 300; ++instance) {
    const bool integer_values = instance % 2 == 0;
    const auto items = random_small_instance(&rng, integer_values);
    const auto all = enumerate(items);
    for (int64_t budget = min_total_bytes(items); budget <= max_total_bytes(items); ++budget) {
      double best = std::numeric_limits<double>::infinity();
      for (const auto& p : all)
        if (p.bytes <= budget) best = std::min(best, p.cost);
      int64_t fewest_bytes = std::numeric_limits<int64_t>::max();  // among optimal choices
      for (const auto& p : all)
        if (p.bytes <= budget && p.cost <= best + 1e-12)
          fewest_bytes = std::min(fewest_bytes, p.bytes);

      AllocationResult r;
      ASSERT_TRUE(allocate_formats(items, budget, &r).is_ok()) << instance << " " << budget;
      int64_t bytes;
      double cost;
      totals(items, r.choice, &bytes, &cost);
      const std::string where =
          "instance " + std::to_string(instance) + " budget " + std::to_string(budget);
      ASSERT_EQ(r.bytes, bytes) << where;
      ASSERT_EQ(r.cost, cost) << where;
      ASSERT_LE(r.bytes, budget) << where;
      ASSERT_NEAR(r.cost, best, 1e-12) << where;
      ASSERT_LE(r.lower_bound, r.cost + 1e-12) << where;
      for (double lambda = 0.0; lambda <= 4.0; lambda += 1.0 / 64)
        ASSERT_LE(lagrangian(items, budget, lambda), r.lower_bound + 1e-12) << where;
      if (integer_values) {  // exact arithmetic: ties resolve to the fewest bytes
        ASSERT_EQ(r.cost, best) << where;
        ASSERT_EQ(r.bytes, fewest_bytes) << where;
      }
    }
  }
}

/// Shapes of one MoE layer's projections and a palette: every expert of a projection has
/// the same candidate sizes (as real banks do); distortion ~ 4^-bits with per-expert noise,
/// weight = routing frequency x sensitivity, both spread over orders of magnitude.
std::vector<AllocationItem> moe_like_instance(int experts, std::mt19937* rng) {
  const std::vector<const char*> palette = {"int2:g32", "int2:g128", "int3:g64",  "int3:g128",
                                            "int4:g64", "int4:g128", "int8:g128", "bf16"};
  const int64_t shapes[3][2] = {{1536, 2048}, {2048, 768}, {768, 2048}};
  std::lognormal_distribution<double> frequency(0.0, 1.0), noise(0.0, 0.15);
  std::vector<AllocationItem> items;
  for (int e = 0; e < experts; ++e) {
    const double freq = frequency(*rng);
    for (const auto& shape : shapes) {
      AllocationItem item;
      item.weight = freq * (1.0 + static_cast<double>(shape[1]) / 2048.0);
      for (const char* name : palette) {
        ExpertCandidate c;
        c.format = parse_format(name);
        PackedLayout layout;
        EXPECT_TRUE(packed_layout(c.format, shape[0], shape[1], &layout).is_ok());
        c.bytes = layout.codes_bytes + layout.scales_bytes + layout.zeros_bytes;
        const double bpw = c.format.bits_per_weight(shape[1]);
        c.distortion =
            c.format.kind == FormatKind::kDense ? 1e-6 : std::pow(4.0, -bpw) * noise(*rng);
        item.candidates.push_back(c);
      }
      items.push_back(item);
    }
  }
  return items;
}

/// Independent sizes and distortions for every item: no shared structure to exploit.
std::vector<AllocationItem> unstructured_instance(int num_items, int cands, std::mt19937* rng) {
  std::uniform_int_distribution<int64_t> bytes(1000, 1000000);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<AllocationItem> items(static_cast<size_t>(num_items));
  for (auto& item : items) {
    item.weight = unit(*rng) + 0.01;
    for (int c = 0; c < cands; ++c) {
      const int64_t b = bytes(*rng);
      item.candidates.push_back(
          {parse_format("int4:g128"), b, 1e6 / static_cast<double>(b) * unit(*rng)});
    }
  }
  return items;
}

void expect_optimal_bounds(const std::vector<AllocationItem>& items, int64_t budget,
                           const std::string& where) {
  AllocationResult r;
  ASSERT_TRUE(allocate_formats(items, budget, &r).is_ok()) << where;
  int64_t bytes;
  double cost;
  totals(items, r.choice, &bytes, &cost);
  EXPECT_EQ(r.bytes, bytes) << where;
  EXPECT_LE(r.bytes, budget) << where;
  const double tol = 1e-9 * std::max(r.cost, 1e-300);
  EXPECT_LE(r.cost, greedy_cost(items, budget) + tol) << where;
  EXPECT_LE(r.lower_bound, r.cost + tol) << where;
  // The reported bound is the best Lagrangian bound: no multiplier gives a higher one.
  for (int decade4 = -14 * 4; decade4 <= -2 * 4; ++decade4) {
    const double lambda = std::pow(10.0, decade4 / 4.0);
    EXPECT_LE(lagrangian(items, budget, lambda), r.lower_bound + tol) << where << " " << lambda;
  }
}

// Timing is measured by bench/, not here: a wall-clock limit would fail on a loaded machine.
TEST(DispatchAllocate, LargeInstancesAreNeverWorseThanGreedyAndAboveTheLagrangianBound) {
  std::mt19937 rng(7);
  const auto moe = moe_like_instance(100, &rng);  // 300 items x 8 candidates
  int64_t weights = 0;
  for (int e = 0; e < 100; ++e) weights += 1536 * 2048 + 2048 * 768 + 768 * 2048;
  for (double bits : {2.6, 3.0, 3.3, 4.0, 4.5, 6.0}) {
    int64_t budget;
    ASSERT_TRUE(budget_bytes_for_bits(bits, weights, &budget).is_ok());
    expect_optimal_bounds(moe, budget, "moe-like, " + std::to_string(bits) + " bits");
  }
  const auto unstructured = unstructured_instance(300, 8, &rng);
  const int64_t lo = min_total_bytes(unstructured), hi = max_total_bytes(unstructured);
  for (int step = 0; step <= 4; ++step)
    expect_optimal_bounds(unstructured, lo + (hi - lo) * step / 4,
                          "unstructured, step " + std::to_string(step));
}

TEST(DispatchAllocate, ThousandItemsOfTenCandidatesAreNeverWorseThanGreedy) {
  std::mt19937 rng(11);
  const auto unstructured = unstructured_instance(1000, 10, &rng);
  const int64_t lo = min_total_bytes(unstructured), hi = max_total_bytes(unstructured);
  expect_optimal_bounds(unstructured, lo + (hi - lo) / 3, "1000x10 unstructured");
}

TEST(DispatchAllocate, IdenticalItemsTieWithoutBlowingUp) {
  // 600 equal items: every split of the upgrades has the same cost; the state space must
  // collapse to one state per byte total, and the answer use the budget as well as possible.
  std::vector<AllocationItem> items(600);
  for (auto& item : items) {
    item.weight = 1.0;
    item.candidates = {{parse_format("int2:g128"), 2, 9.0},
                       {parse_format("int3:g128"), 3, 4.0},
                       {parse_format("int4:g128"), 4, 1.0},
                       {parse_format("bf16"), 16, 0.0}};
  }
  const int64_t budget = 600 * 3 + 1;  // one int4 upgrade fits beyond all-int3
  AllocationResult r;
  ASSERT_TRUE(allocate_formats(items, budget, &r).is_ok());
  EXPECT_EQ(r.cost, 600 * 4.0 - 3.0);  // all int3, one of them int4
  EXPECT_EQ(r.bytes, budget);
}

TEST(DispatchAllocate, LimitBudgetsPickSmallestOrCheapestCandidates) {
  std::vector<AllocationItem> items(2);
  items[0].candidates = {{parse_format("int4:g128"), 10, 0.5},
                         {parse_format("int2:g128"), 5, 2.0},
                         {parse_format("int3:g128"), 5, 1.0},
                         {parse_format("bf16"), 40, 0.5}};
  items[1].candidates = {{parse_format("int8:g128"), 20, 0.0}, {parse_format("int2:g128"), 4, 3.0}};
  AllocationResult r;
  ASSERT_TRUE(allocate_formats(items, 9, &r).is_ok());  // exactly the minimum
  EXPECT_EQ(r.choice, (std::vector<int>{2, 1}));
  ASSERT_TRUE(allocate_formats(items, 1000, &r).is_ok());  // unlimited: cheapest, fewest bytes
  EXPECT_EQ(r.choice, (std::vector<int>{0, 0}));
  EXPECT_EQ(r.bytes, 30);
  EXPECT_EQ(r.cost, 0.5);

  ASSERT_TRUE(allocate_formats({}, 0, &r).is_ok());
  EXPECT_TRUE(r.choice.empty());
  EXPECT_EQ(r.bytes, 0);
  EXPECT_EQ(r.cost, 0.0);
}

TEST(DispatchAllocate, InfeasibleBudgetNamesTheMinimumAndWritesNothing) {
  std::vector<AllocationItem> items(3);
  for (auto& item : items)
    item.candidates = {{parse_format("int2:g128"), 7, 1.0}, {parse_format("bf16"), 50, 0.0}};
  AllocationResult r;
  r.choice = {42};
  const Status st = allocate_formats(items, 20, &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("infeasible: needs at least 21 bytes"), std::string::npos)
      << st.message();
  EXPECT_EQ(r.choice, std::vector<int>{42});
}

TEST(DispatchAllocate, RejectsMalformedInputsAndWritesNothing) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t big = std::numeric_limits<int64_t>::max() / 2 + 1;
  auto good = [] {
    std::vector<AllocationItem> items(2);
    for (auto& item : items)
      item.candidates = {{FormatSpec::integer(4, 128, false), 10, 0.5},
                         {FormatSpec::integer(2, 128, false), 5, 2.0}};
    return items;
  };
  std::vector<std::pair<std::string, std::vector<AllocationItem>>> bad;
  auto add = [&](const std::string& what, auto edit) {
    auto items = good();
    edit(&items);
    bad.emplace_back(what, items);
  };
  add("no candidates", [](auto* v) { (*v)[1].candidates.clear(); });
  add("negative bytes", [](auto* v) { (*v)[0].candidates[1].bytes = -1; });
  add("negative weight", [](auto* v) { (*v)[0].weight = -0.5; });
  add("nan weight", [nan](auto* v) { (*v)[1].weight = nan; });
  add("inf weight", [inf](auto* v) { (*v)[1].weight = inf; });
  add("negative distortion", [](auto* v) { (*v)[0].candidates[0].distortion = -1e-9; });
  add("nan distortion", [nan](auto* v) { (*v)[0].candidates[0].distortion = nan; });
  add("cost overflow", [](auto* v) {
    (*v)[0].weight = 1e300;
    (*v)[0].candidates[0].distortion = 1e300;
  });
  add("bytes overflow", [big](auto* v) {
    (*v)[0].candidates[0].bytes = big;
    (*v)[1].candidates[0].bytes = big;
  });
  for (const auto& [what, items] : bad) {
    AllocationResult r;
    r.cost = -7.0;
    const Status st = allocate_formats(items, 100, &r);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << what;
    EXPECT_FALSE(st.message().empty()) << what;
    EXPECT_EQ(r.cost, -7.0) << what;
    EXPECT_TRUE(r.choice.empty()) << what;
  }
  AllocationResult r;
  EXPECT_EQ(allocate_formats(good(), -1, &r).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(allocate_formats(good(), 100, nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(DispatchAllocate, CostTimesBytesBeyondDoubleIsRejectedInsteadOfCrashing) {
  // Each cost and the byte total are fine alone, but lambda * bytes overflows to inf: the
  // bound becomes NaN and, unchecked, the reduction left an item without candidates.
  std::vector<AllocationItem> items(2);
  const int64_t e18 = 1000000000000000000;
  items[0].candidates = {{parse_format("int4:g128"), 0, 1e300}, {parse_format("bf16"), 1, 0.0}};
  items[1].candidates = {{parse_format("int4:g128"), e18, 1e300},
                         {parse_format("bf16"), e18 + 1, 0.0}};
  AllocationResult r;
  r.cost = -7.0;
  const Status st = allocate_formats(items, e18 + 1, &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("overflows double"), std::string::npos) << st.message();
  EXPECT_EQ(r.cost, -7.0);
  EXPECT_TRUE(r.choice.empty());
  // The same shape at a sane scale is solved: one byte to spare, the larger saving takes it.
  items[0].candidates[0].distortion = 500.0;
  items[1].candidates[0].distortion = 1000.0;
  ASSERT_TRUE(allocate_formats(items, e18 + 1, &r).is_ok());
  EXPECT_EQ(r.choice, (std::vector<int>{0, 1}));
  EXPECT_EQ(r.cost, 500.0);
}

/// n items whose upgrade saves exactly its bytes (2^i): every subset has its own byte total
/// and lies on one line of cost + bytes, so no state is dominated or bounded away and layer j
/// of the search holds up to 2^j states.
std::vector<AllocationItem> all_states_survive_instance(int n) {
  std::vector<AllocationItem> items(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const int64_t bytes = int64_t{1} << i;
    items[static_cast<size_t>(i)].candidates = {
        {parse_format("int2:g128"), 0, static_cast<double>(bytes)},
        {parse_format("int8:g128"), bytes, 0.0}};
  }
  return items;
}

TEST(DispatchAllocate, SearchBeyondItsMemoryLimitIsOutOfRangeAndWritesNothing) {
  const int n = 20;
  const auto items = all_states_survive_instance(n);
  const int64_t total = (int64_t{1} << n) - 1, budget = total / 2 + 12345;
  AllocationResult r;
  r.cost = -7.0;
  const Status st = detail::allocate_formats_within(items, budget, int64_t{1} << 20, &r);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("beyond its limit of 1 MiB"), std::string::npos) << st.message();
  EXPECT_EQ(r.cost, -7.0);
  EXPECT_TRUE(r.choice.empty());
  // The default limit holds the 2^20 states: every byte of the budget buys one unit of cost.
  ASSERT_TRUE(allocate_formats(items, budget, &r).is_ok());
  EXPECT_EQ(r.bytes, budget);
  EXPECT_EQ(r.cost, static_cast<double>(total - budget));
}

TEST(DispatchAllocate, CostNeverRisesWithBudget) {
  std::mt19937 rng(3);
  const auto items = moe_like_instance(20, &rng);
  double previous = std::numeric_limits<double>::infinity();
  const int64_t lo = min_total_bytes(items), hi = max_total_bytes(items);
  for (int step = 0; step <= 40; ++step) {
    AllocationResult r;
    ASSERT_TRUE(allocate_formats(items, lo + (hi - lo) * step / 40, &r).is_ok());
    EXPECT_LE(r.cost, previous) << step;
    previous = r.cost;
  }
}

TEST(DispatchMeasure, DistortionFallsWithBitsAndBytesArePackedPayload) {
  const int64_t n = 48, k = 512;
  const auto w = gaussian(n * k, kWeightSigma, 5);
  const std::vector<FormatSpec> palette = {parse_format("int2:g128"),    parse_format("int3:g128"),
                                           parse_format("int4:g128"),    parse_format("int8:g128"),
                                           parse_format("int4:g32:sym"), parse_format("bf16")};
  std::vector<ExpertCandidate> cands;
  ASSERT_TRUE(measure_candidates(w.data(), n, k, palette, {}, nullptr, &cands).is_ok());
  ASSERT_EQ(cands.size(), palette.size());
  for (size_t i = 0; i < palette.size(); ++i) {
    EXPECT_EQ(cands[i].format, palette[i]);
    PackedMatrix packed;
    ASSERT_TRUE(quantize(w.data(), n, k, palette[i], {}, &packed).is_ok());
    EXPECT_EQ(cands[i].bytes, packed.payload_bytes()) << palette[i].to_string();
  }
  EXPECT_GT(cands[0].distortion, cands[1].distortion);
  EXPECT_GT(cands[1].distortion, cands[2].distortion);
  EXPECT_GT(cands[2].distortion, cands[3].distortion);
  EXPECT_GT(cands[3].distortion, cands[5].distortion);
  EXPECT_GT(cands[3].distortion, 0.0);
  // Uniform quantizer error ~ step^2 / 12: about a factor 4 per bit, well away from 1 or 16.
  for (size_t i = 0; i + 1 < 3; ++i) {
    const double ratio = cands[i].distortion / cands[i + 1].distortion;
    EXPECT_GT(ratio, 2.5) << i;
    EXPECT_LT(ratio, 6.5) << i;
  }
  EXPECT_LT(cands[5].distortion, 1e-4);  // bf16 rounding: ~2^-9 relative per weight
}

// LUT and trellis formats are measured like any other: bytes are the packed payload, and on
// Gaussian rows a per-row table of 2^b levels costs clearly less error than uniform per-channel
// levels of the same b (Lloyd-Max against the best uniform grid: 0.0095 vs 0.0115 at 4 bits,
// 0.118 vs 0.119 at 2 bits; min-max RTN sits well above the best uniform grid), and a trellis
// path less again (about 0.075 at 2 bits).
TEST(DispatchMeasure, LutAndTrellisFormatsAreMeasuredLikeAnyFormat) {
  const int64_t n = 32, k = 1024;
  const auto w = gaussian(n * k, kWeightSigma, 6);
  const std::vector<FormatSpec> palette = {parse_format("int2:pc"), parse_format("nuq2"),
                                           parse_format("int4:pc"), parse_format("nuq4"),
                                           parse_format("tcq2")};
  std::vector<ExpertCandidate> cands;
  ASSERT_TRUE(measure_candidates(w.data(), n, k, palette, {}, nullptr, &cands).is_ok());
  ASSERT_EQ(cands.size(), palette.size());
  for (size_t i = 0; i < palette.size(); ++i) {
    PackedMatrix packed;
    ASSERT_TRUE(quantize(w.data(), n, k, palette[i], {}, &packed).is_ok());
    EXPECT_EQ(cands[i].bytes, packed.payload_bytes()) << palette[i].to_string();
  }
  EXPECT_LT(cands[1].distortion, 0.8 * cands[0].distortion);
  EXPECT_LT(cands[3].distortion, 0.8 * cands[2].distortion);
  EXPECT_LT(cands[3].distortion, cands[1].distortion / 8.0);
  EXPECT_LT(cands[4].distortion, 0.8 * cands[1].distortion);
}

TEST(DispatchMeasure, SecondMomentWeightsColumnsAndIgnoresItsScale) {
  const int64_t n = 32, k = 256;
  const auto w = gaussian(n * k, kWeightSigma, 9);
  const std::vector<FormatSpec> palette = {parse_format("int3:g128"), parse_format("int4:g64")};
  // h = 1 on the first 128 inputs and 0 elsewhere: the error of the left half alone, which
  // RTN quantizes the same on its own (its groups do not reach the right half).
  std::vector<float> h(static_cast<size_t>(k), 0.0f), h_scaled(static_cast<size_t>(k));
  std::fill(h.begin(), h.begin() + 128, 1.0f);
  std::vector<float> left(static_cast<size_t>(n * 128));
  for (int64_t r = 0; r < n; ++r)
    std::copy(w.begin() + r * k, w.begin() + r * k + 128, left.begin() + r * 128);
  std::vector<ExpertCandidate> masked, half, scaled;
  ASSERT_TRUE(measure_candidates(w.data(), n, k, palette, {}, h.data(), &masked).is_ok());
  ASSERT_TRUE(measure_candidates(left.data(), n, 128, palette, {}, nullptr, &half).is_ok());
  for (size_t i = 0; i < palette.size(); ++i)
    EXPECT_NEAR(masked[i].distortion, half[i].distortion, 1e-12 * half[i].distortion);

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.1f, 2.0f);
  for (auto& x : h) x = u(rng);
  for (size_t j = 0; j < h.size(); ++j) h_scaled[j] = h[j] * 8.0f;  // exact in float
  ASSERT_TRUE(measure_candidates(w.data(), n, k, palette, {}, h.data(), &masked).is_ok());
  ASSERT_TRUE(measure_candidates(w.data(), n, k, palette, {}, h_scaled.data(), &scaled).is_ok());
  for (size_t i = 0; i < palette.size(); ++i)
    EXPECT_NEAR(masked[i].distortion, scaled[i].distortion, 1e-12 * masked[i].distortion);
}

TEST(DispatchMeasure, RejectsBadInputsAndWritesNothing) {
  const int64_t n = 16, k = 128;
  const auto w = gaussian(n * k, kWeightSigma, 2);
  const std::vector<FormatSpec> palette = {parse_format("int4:g128")};
  std::vector<ExpertCandidate> out = {{parse_format("bf16"), 99, 9.0}};
  auto unchanged = [&] { return out.size() == 1 && out[0].bytes == 99; };

  EXPECT_EQ(measure_candidates(nullptr, n, k, palette, {}, nullptr, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(measure_candidates(w.data(), n, k, {}, {}, nullptr, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(measure_candidates(w.data(), 0, k, palette, {}, nullptr, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(measure_candidates(w.data(), n, k, palette, {}, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
  std::vector<float> h(static_cast<size_t>(k), 1.0f);
  h[5] = -1.0f;
  EXPECT_EQ(measure_candidates(w.data(), n, k, palette, {}, h.data(), &out).code(),
            StatusCode::kInvalidArgument);
  h[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(measure_candidates(w.data(), n, k, palette, {}, h.data(), &out).code(),
            StatusCode::kInvalidArgument);
  std::fill(h.begin(), h.end(), 0.0f);  // zero weighted norm: relative error undefined
  EXPECT_EQ(measure_candidates(w.data(), n, k, palette, {}, h.data(), &out).code(),
            StatusCode::kInvalidArgument);
  // k = 96 is not a multiple of the group: the quantizer's error, naming the format.
  const Status st = measure_candidates(
      w.data(), n, 96, {parse_format("int8:g128"), parse_format("int4:g32")}, {}, nullptr, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("int8:g128"), std::string::npos) << st.message();
  EXPECT_TRUE(unchanged());
}

TEST(DispatchBudget, BitsPerWeightGiveWholeBytesRoundedDown) {
  int64_t b = -1;
  ASSERT_TRUE(budget_bytes_for_bits(4.0, 1000, &b).is_ok());
  EXPECT_EQ(b, 500);
  ASSERT_TRUE(budget_bytes_for_bits(4.1875, 4096 * 14336, &b).is_ok());
  EXPECT_EQ(b, 4096 * 14336 / 8 * 4 + 4096 * 14336 * 3 / 128);
  ASSERT_TRUE(budget_bytes_for_bits(3.0, 5, &b).is_ok());
  EXPECT_EQ(b, 1);  // 15 bits
  ASSERT_TRUE(budget_bytes_for_bits(0.0, 5, &b).is_ok());
  EXPECT_EQ(b, 0);
  b = 77;
  EXPECT_EQ(budget_bytes_for_bits(-1.0, 5, &b).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(budget_bytes_for_bits(std::nan(""), 5, &b).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(budget_bytes_for_bits(4.0, -5, &b).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(budget_bytes_for_bits(1e300, 1 << 20, &b).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(budget_bytes_for_bits(4.0, 5, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(b, 77);
}

TEST(DispatchEndToEnd, MeasuredExpertsAllocateWithinAnAverageBitsBudget) {
  const int64_t n = 32, k = 256;
  const std::vector<FormatSpec> palette = {parse_format("int2:g64"), parse_format("int3:g128"),
                                           parse_format("int4:g128"), parse_format("int8:g128")};
  std::vector<AllocationItem> items(6);
  for (size_t e = 0; e < items.size(); ++e) {
    const auto w = gaussian(n * k, kWeightSigma, static_cast<uint32_t>(100 + e));
    ASSERT_TRUE(
        measure_candidates(w.data(), n, k, palette, {}, nullptr, &items[e].candidates).is_ok());
    items[e].weight = 1.0 + static_cast<double>(e * e);  // hotter experts later
  }
  int64_t budget;
  ASSERT_TRUE(
      budget_bytes_for_bits(3.5, n * k * static_cast<int64_t>(items.size()), &budget).is_ok());
  AllocationResult r;
  ASSERT_TRUE(allocate_formats(items, budget, &r).is_ok());
  EXPECT_LE(r.bytes, budget);
  const auto all = enumerate(items);
  double best = std::numeric_limits<double>::infinity();
  for (const auto& p : all)
    if (p.bytes <= budget) best = std::min(best, p.cost);
  EXPECT_NEAR(r.cost, best, 1e-12 * best);
  // The hottest expert never gets fewer bits than the coldest.
  EXPECT_GE(items.back().candidates[static_cast<size_t>(r.choice.back())].format.bits,
            items.front().candidates[static_cast<size_t>(r.choice.front())].format.bits);
}

}  // namespace
}  // namespace qmoe
