// cuda/kernels/schedule.cuh — the device-built work list of the persistent grouped kernels.
// Token counts exist only on device (expert_offsets), so every block derives the same list
// itself: counts -> items per expert -> block-wide exclusive scan -> item i belongs to the
// expert whose [item_start[e], item_start[e+1]) holds i (binary search). Empty experts own
// no items and cost nothing after the scan. No global workspace, no second launch, nothing
// to reset between graph replays.
#pragma once
#include <climits>
#include <cstdint>
#include <cub/block/block_scan.cuh>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"

namespace qmoe::dev {

struct Schedule {
  long long* item_start;  ///< [E + 1]: first item of expert e; item_start[E] = total
  int* row_begin;         ///< [E]: first row of x / y of expert e this launch takes
  int* row_count;         ///< [E]: how many (its tokens, or part of them: expert_rows)
};

/// Carves the schedule arrays from the front of dynamic shared memory (schedule_smem_bytes).
__device__ __forceinline__ Schedule carve_schedule(unsigned char* smem, int num_experts) {
  Schedule s;
  s.item_start = reinterpret_cast<long long*>(smem);
  unsigned char* p = smem + (static_cast<size_t>(num_experts + 1) * 8 + 15) / 16 * 16;
  s.row_begin = reinterpret_cast<int*>(p);
  s.row_count = reinterpret_cast<int*>(p + (static_cast<size_t>(num_experts) * 4 + 15) / 16 * 16);
  return s;
}

/// Builds the schedule (whole block; ends with __syncthreads) and returns the item count.
/// key_of(e) -> int: what items_of needs to know of expert e (the kernels: its decoder id),
/// read for every expert before its token count is known, so that its loads and the offsets'
/// are in flight together (one memory latency per block; behind the count they were a second
/// one). rows_of(tokens) -> RowRange: the rows of an expert of `tokens` tokens this launch
/// takes (count 0: none); items_of(key, rows) -> long long: work items of an expert of that
/// key over that many rows (0 if this kernel skips it). The schedule holds those rows as the
/// expert's. Every expert's rows are clamped into [0, m), so a malformed offsets table cannot
/// make the kernels read or write outside x / y.
template <class KeyOf, class ItemsOf, class RowsOf>
__device__ long long build_schedule(const int32_t* offsets, int num_experts, int64_t m,
                                    KeyOf key_of, ItemsOf items_of, RowsOf rows_of,
                                    const Schedule& s) {
  constexpr int kPerThread = kMaxExperts / kBlockThreads;
  using Scan = cub::BlockScan<long long, kBlockThreads>;
  __shared__ typename Scan::TempStorage scan_storage;

  const int per_thread = (num_experts + kBlockThreads - 1) / kBlockThreads;
  const int e0 = static_cast<int>(threadIdx.x) * per_thread;
  const int64_t rows = m < INT_MAX ? m : INT_MAX;
  long long items[kPerThread];
  long long sum = 0;
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    items[i] = 0;
    const int e = e0 + i;
    if (i < per_thread && e < num_experts) {
      // The offsets' loads first: ptxas issues loads in program order where key_of branches
      // (decoder_id), so read after key_of they waited for its loads to land.
      const int32_t first = offsets[e], end = offsets[e + 1];
      const int key = key_of(e);
      const int64_t lo = min(max(static_cast<int64_t>(first), int64_t{0}), rows);
      const int64_t hi = min(max(static_cast<int64_t>(end), lo), rows);
      const int tokens = static_cast<int>(hi - lo);
      const RowRange rows = rows_of(tokens);
      s.row_begin[e] = static_cast<int>(lo) + rows.first;
      s.row_count[e] = rows.count;
      items[i] = rows.count > 0 ? items_of(key, rows.count) : 0;
      sum += items[i];
    }
  }
  long long start = 0, total = 0;
  Scan(scan_storage).ExclusiveSum(sum, start, total);
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int e = e0 + i;
    if (i < per_thread && e < num_experts) {
      s.item_start[e] = start;
      start += items[i];
    }
  }
  if (threadIdx.x == 0) s.item_start[num_experts] = total;
  __syncthreads();
  return total;
}

/// The expert e with item_start[e] <= item < item_start[e + 1] (item < total).
__device__ __forceinline__ int find_expert(const long long* item_start, int num_experts,
                                           long long item) {
  int lo = 0, hi = num_experts;  // item_start[lo] <= item < item_start[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) >> 1;
    if (item_start[mid] <= item)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/// find_expert for a whole warp (all 32 lanes, the same item): lane l counts the experts
/// l, l + 32, ... whose first item is <= item, and the warp adds the counts (item_start does not
/// decrease, so that count less one is the expert). Why: the binary search is log2(E) dependent
/// shared-memory loads and branches, ~1300 cycles with the remainder before it at each launch's
/// first item (the item start split, bench/results/s57-2026-12-07/diag), in series with every
/// weight copy of the block; here the loads are independent and one redux.sync adds them.
__device__ __forceinline__ int find_expert_warp(const long long* item_start, int num_experts,
                                                long long item) {
  int count = 0;
#pragma unroll 8
  for (int e = static_cast<int>(threadIdx.x) & 31; e < num_experts; e += 32)
    count += item_start[e] <= item ? 1 : 0;
  return static_cast<int>(__reduce_add_sync(0xffffffffu, static_cast<unsigned>(count))) - 1;
}

/// Item `local` (0-based within expert e) of the expert whose tokens are rows
/// [row_begin, row_begin + row_count) of x and y.
struct ItemRef {
  int expert;
  long long local;
  int row_begin, row_count;
};

/// A block's copy of the launch's work list; every grouped kernel walks it the same way:
///   const ItemList items = build_item_list(p, smem, items_of);
///   for (long long i = blockIdx.x; i < items.total; i += gridDim.x) { items.at(i) ... }
/// (a loop in the kernel, not a callback: ptxas outlines large lambdas, and a call inside
/// the wgmma pipeline serialises it).
struct ItemList {
  Schedule sched;
  int num_experts;
  long long total;

  /// kWarpSearch: every lane of the calling warps asks for the same item (find_expert_warp).
  template <bool kWarpSearch = false>
  __device__ ItemRef at(long long item) const {
    const int e = kWarpSearch ? find_expert_warp(sched.item_start, num_experts, item)
                              : find_expert(sched.item_start, num_experts, item);
    return {e, item - sched.item_start[e], sched.row_begin[e], sched.row_count[e]};
  }
};

/// Programmatic dependent launch (launch_grouped_kernel): this grid may have started while
/// the previous kernel of the stream was still running, so nothing of x, expert_offsets or y
/// is touched before that kernel has completed and its writes are visible; then the next
/// kernel's blocks may launch (they take SM slots only as this grid's blocks exit, and wait
/// the same way). A no-op for a launch without the attribute; only sm_90+ has it, and the
/// host sets the attribute only for sm_90+ code (the compute_80 PTX lacks these lines).
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/// Rows [begin, end) of x and y that a call's experts cover where its offsets table is
/// non-decreasing: [offsets[0], offsets[num_experts]), clamped into [0, rows] as build_schedule
/// clamps each expert's. The kernels over whole rows (x_digits.cuh, x_rotate.cuh,
/// gated_silu.cuh) take only these: the caller need not write x's others (a capacity-sized x
/// of a graph replayed for any batch) and y's are not written. Read after
/// wait_for_previous_kernel (the previous kernel may write the offsets).
struct RowSpan {
  int64_t begin, end;
};
__device__ __forceinline__ RowSpan offsets_span(const int32_t* offsets, int num_experts,
                                                int64_t rows) {
  const int64_t end = min(rows, max(int64_t{offsets[num_experts]}, int64_t{0}));
  return {min(max(int64_t{offsets[0]}, int64_t{0}), end), end};
}

/// Builds the work list at the front of dynamic shared memory (whole block; ends with
/// __syncthreads), after wait_for_previous_kernel where `wait` (a kernel that passes false
/// must wait before it reads x or writes y, and in every block, so that its completion still
/// implies the previous kernel's). items_of(decoder, rows) -> long long: work
/// items of an expert with that decoder id (decoder_id: -1 for none) whose token count lies in
/// [p.min_tokens, p.max_tokens] (experts outside get none without asking), over its rows, or
/// with kRowSplit over those that p's row split gives this launch (expert_rows; the kernels
/// the wgmma launcher splits calls between; the others compile without it). With `decoders`
/// (shared memory, [num_experts]) each expert's decoder id is kept there too, so that an item
/// switches on it without waiting for its descriptor's loads.
template <bool kRowSplit = false, class ItemsOf>
__device__ __forceinline__ ItemList build_item_list(const GemmProblem& p, unsigned char* smem,
                                                    ItemsOf items_of, bool wait = true,
                                                    int8_t* decoders = nullptr) {
  if (wait) wait_for_previous_kernel();
  ItemList list;
  list.sched = carve_schedule(smem, p.num_experts);
  list.num_experts = p.num_experts;
  list.total = build_schedule(
      p.offsets, p.num_experts, p.m,
      [&](int e) {
        const int id = decoder_id(load_desc(p.descs, e));
        if (decoders != nullptr) decoders[e] = static_cast<int8_t>(id);
        return id;
      },
      items_of,
      [&](int tokens) {
        if (tokens < p.min_tokens || tokens > p.max_tokens) return RowRange{0, 0};
        if constexpr (kRowSplit) return expert_rows(tokens, p.rows_part, p.rows_block, p.tail_rows);
        return RowRange{0, tokens};
      },
      list.sched);
  return list;
}

}  // namespace qmoe::dev
