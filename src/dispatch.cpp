// The offline dispatcher: exact multiple-choice knapsack (Lagrangian bound from the LP
// relaxation, reduction by reduced costs, Pareto dynamic programme over the remaining core;
// docs/dispatch.md), the distortion measurement that feeds it, and the bits -> bytes budget.
#include "qmoe/dispatch.hpp"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "qmoe/numeric.hpp"
#include "qmoe/packed.hpp"
#include "src/dispatch_internal.hpp"
#include "src/formats/status_guard.hpp"
#include "src/quantize_internal.hpp"

namespace qmoe {

namespace {

/// Slack of every pruning test, relative to the magnitude of the sums compared. Far above
/// the rounding of a sum of many doubles (n * 2^-53), so no optimal choice is ever pruned by
/// rounding; a larger slack would only keep more states.
constexpr double kPruneSlack = 1e-9;

/// The relaxation and the search add a handful of terms, each at most
/// max total cost x (1 + max total bytes) in magnitude (see check_allocation_inputs); this
/// factor keeps their sums finite too.
constexpr double kCostBytesHeadroom = 8.0;

/// A candidate of one item: its index in AllocationItem::candidates, bytes, weighted cost.
struct Option {
  int index;
  int64_t bytes;
  double cost;
};

/// One step of the LP relaxation: item moves to hull option `to` (from the previous hull
/// option), spending extra_bytes and saving `efficiency` cost per byte.
struct HullStep {
  double efficiency;
  int item;
  int to;
  int64_t extra_bytes;
};

/// How the dynamic programme reached a state: the state of the previous layer it extends and
/// the candidate index the layer's item takes.
struct StateOrigin {
  int32_t parent;
  int32_t option;
};

struct State {
  int64_t bytes;
  double cost;
  StateOrigin origin;
};

/// Order of the states of a layer: by bytes, then cost, then origin (so ties resolve the same
/// way on every run).
bool bytes_then_cost(const State& a, const State& b) {
  if (a.bytes != b.bytes) return a.bytes < b.bytes;
  if (a.cost != b.cost) return a.cost < b.cost;
  if (a.origin.parent != b.origin.parent) return a.origin.parent < b.origin.parent;
  return a.origin.option < b.origin.option;
}

bool finite_non_negative(double x) {
  return std::isfinite(x) && x >= 0.0;
}

/// x in a message, in 6 significant digits (std::to_string would print 1e300 in full).
std::string shortest(double x) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", x);
  return text;
}

Status check_allocation_inputs(const std::vector<AllocationItem>& items, int64_t budget_bytes) {
  if (budget_bytes < 0)
    return invalid_argument("allocate_formats: budget_bytes must be >= 0, got " +
                            std::to_string(budget_bytes));
  if (items.size() > static_cast<size_t>(INT_MAX))
    return invalid_argument("allocate_formats: too many items");
  int64_t max_total_bytes = 0;
  double max_total_cost = 0.0;
  for (size_t i = 0; i < items.size(); ++i) {
    const AllocationItem& item = items[i];
    const std::string where = "allocate_formats: item " + std::to_string(i);
    if (item.candidates.empty()) return invalid_argument(where + " has no candidates");
    if (item.candidates.size() > static_cast<size_t>(INT_MAX))
      return invalid_argument(where + " has too many candidates");
    if (!finite_non_negative(item.weight))
      return invalid_argument(where + ": weight must be finite and >= 0, got " +
                              std::to_string(item.weight));
    int64_t max_bytes = 0;
    double max_cost = 0.0;
    for (size_t c = 0; c < item.candidates.size(); ++c) {
      const ExpertCandidate& cand = item.candidates[c];
      const std::string what = where + " candidate " + std::to_string(c);
      if (cand.bytes < 0)
        return invalid_argument(what + ": bytes must be >= 0, got " + std::to_string(cand.bytes));
      if (!finite_non_negative(cand.distortion))
        return invalid_argument(what + ": distortion must be finite and >= 0, got " +
                                std::to_string(cand.distortion));
      const double cost = item.weight * cand.distortion;
      if (!std::isfinite(cost)) return invalid_argument(what + ": weight * distortion overflows");
      max_bytes = std::max(max_bytes, cand.bytes);
      max_cost = std::max(max_cost, cost);
    }
    if (max_bytes > std::numeric_limits<int64_t>::max() - max_total_bytes)
      return invalid_argument("allocate_formats: total bytes overflow int64");
    max_total_bytes += max_bytes;
    max_total_cost += max_cost;
  }
  if (!std::isfinite(max_total_cost))
    return invalid_argument("allocate_formats: total cost overflows");
  // The multiplier lambda is a cost saved per byte of one step, so <= max_total_cost, and it
  // is 0 unless the budget is below max_total_bytes: this product bounds every lambda * bytes
  // and lambda * budget the bound computes. If it overflowed, the bound would be inf or NaN
  // and the reduction would drop every candidate.
  const double scale = max_total_cost * (1.0 + static_cast<double>(max_total_bytes));
  if (!std::isfinite(kCostBytesHeadroom * scale))
    return invalid_argument("allocate_formats: the largest total cost (" +
                            shortest(max_total_cost) + ") times the largest total bytes (" +
                            std::to_string(max_total_bytes) +
                            ") overflows double; scale the weights or distortions down");
  return Status::ok();
}

/// The candidates worth considering: sorted by bytes, each strictly cheaper in cost than the
/// one before (a candidate with no fewer bytes and no lower cost than another never helps;
/// among exact duplicates the lowest index stays).
std::vector<Option> pareto_options(const AllocationItem& item) {
  std::vector<Option> all;
  all.reserve(item.candidates.size());
  for (size_t c = 0; c < item.candidates.size(); ++c)
    all.push_back({static_cast<int>(c), item.candidates[c].bytes,
                   item.weight * item.candidates[c].distortion});
  std::sort(all.begin(), all.end(), [](const Option& a, const Option& b) {
    if (a.bytes != b.bytes) return a.bytes < b.bytes;
    if (a.cost != b.cost) return a.cost < b.cost;
    return a.index < b.index;
  });
  std::vector<Option> front;
  for (const Option& o : all)
    if (front.empty() || o.cost < front.back().cost) front.push_back(o);
  return front;
}

double efficiency(const Option& from, const Option& to) {
  return (from.cost - to.cost) / static_cast<double>(to.bytes - from.bytes);
}

/// Steps along the lower convex hull of one item's Pareto front: strictly decreasing
/// efficiency, so a global sort by efficiency keeps each item's steps in order.
void append_hull_steps(const std::vector<Option>& front, int item, std::vector<HullStep>* steps) {
  std::vector<int> hull = {0};
  for (int j = 1; j < static_cast<int>(front.size()); ++j) {
    while (hull.size() >= 2 && efficiency(front[hull[hull.size() - 2]], front[hull.back()]) <=
                                   efficiency(front[hull.back()], front[j]))
      hull.pop_back();
    hull.push_back(j);
  }
  for (size_t h = 1; h < hull.size(); ++h) {
    const Option& from = front[hull[h - 1]];
    const Option& to = front[hull[h]];
    steps->push_back({efficiency(from, to), item, hull[h], to.bytes - from.bytes});
  }
}

/// Greedy over hull steps in order of efficiency: the LP relaxation's multiplier lambda (the
/// efficiency of the first step that does not fit; 0 if all fit) and a feasible solution
/// (positions in the fronts) made of every step that still fits after skipping an item.
double lp_greedy(const std::vector<std::vector<Option>>& fronts, int64_t budget_bytes,
                 std::vector<int>* position) {
  std::vector<HullStep> steps;
  int64_t spare_bytes = budget_bytes;
  for (size_t i = 0; i < fronts.size(); ++i) {
    append_hull_steps(fronts[i], static_cast<int>(i), &steps);
    spare_bytes -= fronts[i][0].bytes;
  }
  std::sort(steps.begin(), steps.end(), [](const HullStep& a, const HullStep& b) {
    if (a.efficiency != b.efficiency) return a.efficiency > b.efficiency;
    if (a.item != b.item) return a.item < b.item;
    return a.to < b.to;
  });
  position->assign(fronts.size(), 0);
  std::vector<char> blocked(fronts.size(), 0);
  double lambda = 0.0;
  bool found_critical = false;
  for (const HullStep& s : steps) {
    if (blocked[s.item]) continue;
    if (s.extra_bytes <= spare_bytes) {
      spare_bytes -= s.extra_bytes;
      (*position)[s.item] = s.to;
    } else {
      if (!found_critical) lambda = s.efficiency;
      found_critical = true;
      blocked[s.item] = 1;  // its later steps start from a point the greedy never reached
    }
  }
  return lambda;
}

/// The LP relaxation of the whole problem and what the exact search takes from it.
///   For any lambda >= 0 and any choice x within the budget B,
///     cost(x) >= cost(x) + lambda * (bytes(x) - B) = L(lambda) + sum_i r_i(x_i),
///   L(lambda) = sum_i m_i - lambda * B,  m_i = min_o (cost_o + lambda * bytes_o),
///   r_i(o) = cost_o + lambda * bytes_o - m_i >= 0 (the reduced cost of option o).
/// lp_greedy's lambda maximises L, which then equals the LP relaxation's optimum.
struct Relaxation {
  double lambda = 0.0;               ///< multiplier of the budget, cost per byte
  double lower_bound = 0.0;          ///< L(lambda)
  double upper_bound = 0.0;          ///< cost of the greedy's feasible choice
  double slack = 0.0;                ///< kPruneSlack times the magnitude of the sums compared
  std::vector<double> item_minimum;  ///< m_i
};

Relaxation relax(const std::vector<std::vector<Option>>& fronts, int64_t budget_bytes) {
  Relaxation rx;
  std::vector<int> greedy_position;
  rx.lambda = lp_greedy(fronts, budget_bytes, &greedy_position);
  const double budget = static_cast<double>(budget_bytes);
  rx.lower_bound = -rx.lambda * budget;
  double magnitude = rx.lambda * budget;
  rx.item_minimum.resize(fronts.size());
  for (size_t i = 0; i < fronts.size(); ++i) {
    double m = std::numeric_limits<double>::infinity();
    for (const Option& o : fronts[i])
      m = std::min(m, o.cost + rx.lambda * static_cast<double>(o.bytes));
    rx.item_minimum[i] = m;
    rx.lower_bound += m;
    rx.upper_bound += fronts[i][static_cast<size_t>(greedy_position[i])].cost;
    magnitude += fronts[i][0].cost + rx.lambda * static_cast<double>(fronts[i].back().bytes);
  }
  rx.slack = kPruneSlack * magnitude;
  return rx;
}

/// Exact search over the core items (those with several options left): a Pareto dynamic
/// programme, one layer per item, whose states are the (bytes, cost) of partial choices.
/// A state is kept only if no other has <= bytes and <= cost, the cheapest completion fits
/// core_budget, and its Lagrangian bound, bound_base + cost + lambda * bytes + the m_i of the
/// items still to come, is <= cost_limit. Writes the chosen candidate index per core item.
/// kOutOfRange, before anything grows, if the states would take more than max_search_bytes.
Status search_core(const std::vector<const std::vector<Option>*>& options,
                   const std::vector<double>& item_minimum, int64_t core_budget, double lambda,
                   double bound_base, double cost_limit, int64_t max_search_bytes,
                   std::vector<int>* choice) {
  const size_t core_size = options.size();
  std::vector<int64_t> rest_min_bytes(core_size + 1, 0);  // over core items j..end
  std::vector<double> rest_minimum(core_size + 1, 0.0);
  for (size_t j = core_size; j-- > 0;) {
    rest_min_bytes[j] = rest_min_bytes[j + 1] + (*options[j])[0].bytes;
    rest_minimum[j] = rest_minimum[j + 1] + item_minimum[j];
  }
  std::vector<std::vector<StateOrigin>> origins(core_size);
  std::vector<State> layer = {{0, 0.0, {-1, -1}}}, next;
  uint64_t origin_bytes = 0;  // held by origins[0, j)
  for (size_t j = 0; j < core_size; ++j) {
    const int64_t byte_limit = core_budget - rest_min_bytes[j + 1];
    // Calls keep(state) for each extension of the layer by option o that passes the tests.
    auto extend = [&](const Option& o, auto&& keep) {
      for (size_t s = 0; s < layer.size(); ++s) {
        const int64_t bytes = layer[s].bytes + o.bytes;
        const double cost = layer[s].cost + o.cost;
        if (bytes > byte_limit) break;
        if (bound_base + cost + lambda * static_cast<double>(bytes) + rest_minimum[j + 1] <=
            cost_limit)
          keep(State{bytes, cost, {static_cast<int32_t>(s), o.index}});
      }
    };
    // Room is checked before the layer grows: against layer x options, which is cheap and
    // almost always fits, else against the exact count of the states to come. Each costs a
    // State while the layer is built and a StateOrigin once kept.
    const uint64_t held = origin_bytes + layer.size() * sizeof(State);
    const uint64_t limit = static_cast<uint64_t>(std::max<int64_t>(max_search_bytes, 0));
    const uint64_t room = held < limit ? (limit - held) / (sizeof(State) + sizeof(StateOrigin)) : 0;
    uint64_t states = static_cast<uint64_t>(layer.size()) * options[j]->size();
    if (states > room) {
      states = 0;
      for (const Option& o : *options[j]) extend(o, [&](const State&) { ++states; });
    }
    if (states > room || states > static_cast<uint64_t>(INT32_MAX))
      return out_of_range("allocate_formats: the exact search would hold " +
                          std::to_string(states) + " states at core item " + std::to_string(j + 1) +
                          " of " + std::to_string(core_size) + ", beyond its limit of " +
                          std::to_string(max_search_bytes >> 20) +
                          " MiB (near-identical items and distortions make the search hard, "
                          "docs/dispatch.md §2)");
    next.clear();
    next.reserve(static_cast<size_t>(states));
    // One run per option, each sorted by bytes because the layer is; merging the runs takes
    // log2(options) passes where sorting would take log2(states).
    std::vector<size_t> run_ends = {0};
    for (const Option& o : *options[j]) {
      extend(o, [&](const State& st) { next.push_back(st); });
      run_ends.push_back(next.size());
    }
    while (run_ends.size() > 2) {
      std::vector<size_t> merged = {0};
      for (size_t r = 0; r + 2 < run_ends.size(); r += 2) {
        std::inplace_merge(next.begin() + static_cast<std::ptrdiff_t>(run_ends[r]),
                           next.begin() + static_cast<std::ptrdiff_t>(run_ends[r + 1]),
                           next.begin() + static_cast<std::ptrdiff_t>(run_ends[r + 2]),
                           bytes_then_cost);
        merged.push_back(run_ends[r + 2]);
      }
      if (run_ends.size() % 2 == 0) merged.push_back(run_ends.back());
      run_ends = std::move(merged);
    }
    // Pareto filter in place, then the filtered states become the layer: no allocation.
    size_t kept = 0;
    for (size_t s = 0; s < next.size(); ++s)
      if (kept == 0 || next[s].cost < next[kept - 1].cost) next[kept++] = next[s];
    next.resize(kept);
    layer.swap(next);
    origins[j].reserve(layer.size());
    for (const State& st : layer) origins[j].push_back(st.origin);
    origin_bytes += layer.size() * sizeof(StateOrigin);
  }
  // The greedy choice's path passes every test, so the last layer is never empty.
  if (layer.empty())
    return Status(StatusCode::kInternal, "allocate_formats: search lost all states");
  // Costs fall along a Pareto layer: its last state is the cheapest (fewest bytes on ties).
  choice->resize(core_size);
  int32_t state = static_cast<int32_t>(layer.size() - 1);
  for (size_t j = core_size; j-- > 0;) {
    const StateOrigin& from = origins[j][static_cast<size_t>(state)];
    (*choice)[j] = from.option;
    state = from.parent;
  }
  return Status::ok();
}

Status allocate_checked(const std::vector<AllocationItem>& items, int64_t budget_bytes,
                        int64_t max_search_bytes, AllocationResult* out) {
  QMOE_RETURN_IF_ERROR(check_allocation_inputs(items, budget_bytes));
  const size_t num_items = items.size();
  std::vector<std::vector<Option>> fronts(num_items);
  int64_t min_total_bytes = 0;
  for (size_t i = 0; i < num_items; ++i) {
    fronts[i] = pareto_options(items[i]);
    min_total_bytes += fronts[i][0].bytes;
  }
  if (min_total_bytes > budget_bytes)
    return invalid_argument("allocate_formats: infeasible: needs at least " +
                            std::to_string(min_total_bytes) + " bytes, budget is " +
                            std::to_string(budget_bytes));
  const Relaxation rx = relax(fronts, budget_bytes);

  // Reduction: an optimal choice costs <= upper_bound, so each of its options has reduced
  // cost <= upper_bound - lower_bound. Items left with one option are fixed; the rest form
  // the core.
  const double max_reduced_cost = rx.upper_bound - rx.lower_bound + rx.slack;
  // The input checks keep these finite; were they not, no candidate would pass the test below.
  if (!std::isfinite(rx.lower_bound) || !std::isfinite(max_reduced_cost))
    return Status(StatusCode::kInternal, "allocate_formats: the Lagrangian bound is not finite");
  std::vector<std::vector<Option>> survivors(num_items);
  std::vector<size_t> core;
  std::vector<const std::vector<Option>*> core_options;
  std::vector<double> core_minimum;
  int64_t fixed_bytes = 0;
  double fixed_cost = 0.0;
  for (size_t i = 0; i < num_items; ++i) {
    for (const Option& o : fronts[i])
      if (o.cost + rx.lambda * static_cast<double>(o.bytes) - rx.item_minimum[i] <=
          max_reduced_cost)
        survivors[i].push_back(o);
    if (survivors[i].empty())
      return Status(StatusCode::kInternal, "allocate_formats: no candidate of item " +
                                               std::to_string(i) + " survived the reduction");
    if (survivors[i].size() == 1) {
      fixed_bytes += survivors[i][0].bytes;
      fixed_cost += survivors[i][0].cost;
    } else {
      core.push_back(i);
      core_options.push_back(&survivors[i]);
      core_minimum.push_back(rx.item_minimum[i]);
    }
  }
  const double bound_base = fixed_cost + rx.lambda * static_cast<double>(fixed_bytes) -
                            rx.lambda * static_cast<double>(budget_bytes);
  std::vector<int> core_choice;
  QMOE_RETURN_IF_ERROR(search_core(core_options, core_minimum, budget_bytes - fixed_bytes,
                                   rx.lambda, bound_base, rx.upper_bound + rx.slack,
                                   max_search_bytes, &core_choice));

  AllocationResult result;
  result.choice.resize(num_items);
  for (size_t i = 0; i < num_items; ++i) result.choice[i] = survivors[i][0].index;
  for (size_t j = 0; j < core.size(); ++j) result.choice[core[j]] = core_choice[j];
  for (size_t i = 0; i < num_items; ++i) {
    const ExpertCandidate& c = items[i].candidates[static_cast<size_t>(result.choice[i])];
    result.bytes += c.bytes;
    result.cost += items[i].weight * c.distortion;
  }
  result.lower_bound = rx.lower_bound;
  *out = std::move(result);
  return Status::ok();
}

}  // namespace

namespace detail {

Status allocate_formats_within(const std::vector<AllocationItem>& items, int64_t budget_bytes,
                               int64_t max_search_bytes, AllocationResult* out) {
  if (out == nullptr) return invalid_argument("allocate_formats: null output");
  return run_catching("allocate_formats",
                      [&] { return allocate_checked(items, budget_bytes, max_search_bytes, out); });
}

}  // namespace detail

Status allocate_formats(const std::vector<AllocationItem>& items, int64_t budget_bytes,
                        AllocationResult* out) {
  return detail::allocate_formats_within(items, budget_bytes, detail::kMaxSearchBytes, out);
}

namespace {

/// The weights a quantized matrix stores in row `row`: docs/formats.md §1, in float32.
void dequantize_row(const LogicalMatrix& q, int64_t row, float* out) {
  const FormatSpec& f = q.format;
  if (f.kind == FormatKind::kTrellis) return quant::trellis_decode_row(q, row, out);
  if (f.kind == FormatKind::kVector) return quant::vector_decode_row(q, row, out);
  const int64_t groups = f.kind == FormatKind::kInt ? q.k / f.group_len(q.k) : 0;
  for (int64_t col = 0; col < q.k; ++col) {
    const uint16_t code = q.codes[static_cast<size_t>(row * q.k + col)];
    if (f.kind == FormatKind::kDense) {
      out[col] = act_bits_to_float(f.dense_dtype, code);
    } else if (f.kind == FormatKind::kLut) {
      out[col] = fp16_to_float(q.scales[static_cast<size_t>(row * f.lut_entries() + code)]);
    } else {
      const size_t g = static_cast<size_t>(row * groups + col / f.group_len(q.k));
      const int zero = f.symmetric ? 1 << (f.bits - 1) : q.zeros[g];
      out[col] = static_cast<float>(static_cast<int>(code) - zero) * fp16_to_float(q.scales[g]);
    }
  }
}

/// measure_candidates once out is known to be non-null. The OpenMP region below allocates
/// nothing, so every exception reaches the caller's barrier.
Status measure_checked(const float* w, int64_t n, int64_t k, const std::vector<FormatSpec>& palette,
                       const QuantizeOptions& opt, const float* input_second_moment,
                       std::vector<ExpertCandidate>* out) {
  if (w == nullptr) return invalid_argument("measure_candidates: null weights");
  if (n <= 0 || k <= 0)
    return invalid_argument("measure_candidates: dims must be positive, got [" + std::to_string(n) +
                            ", " + std::to_string(k) + "]");
  if (palette.empty()) return invalid_argument("measure_candidates: empty palette");
  std::vector<double> column_weight(static_cast<size_t>(k), 1.0);
  if (input_second_moment != nullptr) {
    for (int64_t j = 0; j < k; ++j) {
      if (!finite_non_negative(input_second_moment[j]))
        return invalid_argument("measure_candidates: input_second_moment[" + std::to_string(j) +
                                "] must be finite and >= 0");
      column_weight[static_cast<size_t>(j)] = input_second_moment[j];
    }
  }

  // Per-row partial sums, added in row order: the same distortion for any thread count.
  std::vector<double> row_error(static_cast<size_t>(n));
  // One decoded row per thread, allocated here: a throw inside the region would terminate.
  std::vector<float> rows(static_cast<size_t>(omp_get_max_threads() * k));
  auto weighted_sum = [&](const LogicalMatrix* q) {
#pragma omp parallel
    {
      float* decoded = rows.data() + omp_get_thread_num() * k;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < n; ++r) {
        if (q != nullptr) dequantize_row(*q, r, decoded);
        double sum = 0.0;
        for (int64_t j = 0; j < k; ++j) {
          const double x = w[r * k + j];
          const double e = q == nullptr ? x : x - decoded[j];
          sum += column_weight[static_cast<size_t>(j)] * e * e;
        }
        row_error[static_cast<size_t>(r)] = sum;
      }
    }
    double total = 0.0;
    for (double v : row_error) total += v;
    return total;
  };
  const double reference = weighted_sum(nullptr);
  if (!(reference > 0.0) || !std::isfinite(reference))
    return invalid_argument("measure_candidates: weighted norm of w is " +
                            std::to_string(reference) + ", need a finite positive value");

  std::vector<ExpertCandidate> result;
  result.reserve(palette.size());
  for (const FormatSpec& f : palette) {
    LogicalMatrix q;
    const Status st = quantize_logical(w, n, k, f, opt, &q);
    if (!st.is_ok())
      return Status(st.code(), "measure_candidates: " + f.to_string() + ": " + st.message());
    PackedLayout layout;
    QMOE_RETURN_IF_ERROR(packed_layout(f, n, k, &layout));
    result.push_back({f, layout.codes_bytes + layout.scales_bytes + layout.zeros_bytes,
                      weighted_sum(&q) / reference});
  }
  *out = std::move(result);
  return Status::ok();
}

}  // namespace

Status measure_candidates(const float* w, int64_t n, int64_t k,
                          const std::vector<FormatSpec>& palette, const QuantizeOptions& opt,
                          const float* input_second_moment, std::vector<ExpertCandidate>* out) {
  if (out == nullptr) return invalid_argument("measure_candidates: null output");
  return detail::run_catching("measure_candidates", [&] {
    return measure_checked(w, n, k, palette, opt, input_second_moment, out);
  });
}

Status budget_bytes_for_bits(double bits_per_weight, int64_t num_weights, int64_t* budget_bytes) {
  if (budget_bytes == nullptr) return invalid_argument("budget_bytes_for_bits: null output");
  if (!finite_non_negative(bits_per_weight))
    return invalid_argument("budget_bytes_for_bits: bits_per_weight must be finite and >= 0");
  if (num_weights < 0) return invalid_argument("budget_bytes_for_bits: num_weights must be >= 0");
  const double bytes = std::floor(bits_per_weight * static_cast<double>(num_weights) / 8.0);
  if (bytes >= std::ldexp(1.0, 63))
    return invalid_argument("budget_bytes_for_bits: overflows int64");
  *budget_bytes = static_cast<int64_t>(bytes);
  return Status::ok();
}

}  // namespace qmoe
