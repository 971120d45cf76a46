// cpu_ref/moe_detail.hpp — internal to the CPU reference, shared by routing.cpp and
// moe_layer.cpp: the one check of a RouterConfig (docs/moe.md §1) and when to go parallel.
#pragma once
#include <cstdint>

#include "qmoe/moe.hpp"
#include "qmoe/status.hpp"

namespace qmoe::ref::detail {

/// Loops over fewer elements than this run on one thread: below it, waking the OpenMP team
/// and its barrier cost more than the loop (and, on a loaded machine, far more).
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

/// Every dimension (T, H, E, I, rows) stays below this, so a product of two never leaves
/// int64 and sizes computed from them cannot wrap.
constexpr int64_t kMaxDim = int64_t{1} << 31;

/// kInvalidArgument, prefixed with `entry`, if cfg is not a valid router of its kind: E < 1,
/// k outside [1, E], groups that do not split E into groups of >= 2 experts holding >= k
/// candidates, a non-finite or non-positive scaling factor, or a field the kind does not use
/// away from its default.
Status check_router_config(const RouterConfig& cfg, const char* entry);

}  // namespace qmoe::ref::detail
