// Internal to the dispatcher (dispatch.cpp) and its tests: the memory limit of the exact
// search, as a parameter, so that a test reaches the kOutOfRange path with a small instance.
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/dispatch.hpp"

namespace qmoe::detail {

/// Memory the exact search of allocate_formats may hold for its states. The hardest measured
/// instance (docs/dispatch.md §2) needs 1.5 GB; a search that would go far beyond is
/// reported as kOutOfRange before it exhausts the machine.
constexpr int64_t kMaxSearchBytes = int64_t{8} << 30;

/// allocate_formats with its search limited to about max_search_bytes (the states it holds,
/// checked before each layer of the dynamic programme grows).
Status allocate_formats_within(const std::vector<AllocationItem>& items, int64_t budget_bytes,
                               int64_t max_search_bytes, AllocationResult* out);

}  // namespace qmoe::detail
