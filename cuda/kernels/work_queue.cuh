// cuda/kernels/work_queue.cuh — dynamic hand-out of a persistent grid's later work items.
//
// Why: the decode kernel runs two blocks per SM, and they do not run at the same speed (the
// warp schedulers favour the older block's warps, presumably): the block that arrived first
// runs its items faster (H200, session 22: Mixtral int3 at T = 4, on every SM the lower-index
// block's first item took ~19 us and the other's ~50 us; int4 ~23 against ~25 us, then 16
// against 22 us per later item). With items dealt round-robin (item i to block i % grid) each
// block gets the same count, so the slow one finishes long after its neighbour and runs its last
// items alone on a half-empty SM. Items handed out on demand go to whichever block is free.
//
// How: each block takes item blockIdx.x first (no atomic before any work starts), then tickets
// from a counter in the call's workspace: item gridDim.x + ticket. Thread 0 draws the next
// ticket when the current item's k-tiles are done and publishes it through shared memory after
// the item's reduction (which hides the atomic's latency). Drawn at the item's start instead
// (one item of lookahead), a slow block held on to an item a free one could have run: H200,
// Mixtral int3/int4 at T = 4, 1.03-1.06x the time of the round-robin order against 0.93-0.95x.
// A block that draws a ticket past the last item stops; it then counts itself out, and the last
// block out resets both counters, so the workspace is ready for the next launch (graph replays
// included) without a memset node per call.
//
// The counters hold state between calls, so they are used only where prepare_workspace armed
// them (kArmed in `armed`, tickets and exits zeroed). A workspace that was not prepared, or
// that something else wrote over, runs the static order (item i + gridDim.x), which is correct
// whatever the counters hold: they are then written to but never believed.
#pragma once
#include <cstdint>

namespace qmoe::dev {

/// The first bytes of a grouped_gemm workspace (the call's 256 reserved bytes).
struct WorkCounters {
  unsigned int tickets;      ///< items handed out beyond the first round, this launch
  unsigned int exits;        ///< blocks of this launch that have taken their last ticket
  unsigned long long armed;  ///< kArmed where prepare_workspace set the counters up
};
/// A byte pattern (so that a memset writes it): 0x5A in every byte.
constexpr unsigned long long kArmed = 0x5A5A5A5A5A5A5A5Aull;
constexpr unsigned char kArmedByte = 0x5A;

/// Whether a launch hands items out through the counters: a workspace was given and some block
/// has a second item (more items than blocks). NextItem::draw and leave_work_queue must agree:
/// a launch that draws tickets must also count its blocks out, or the counters never reset.
__device__ __forceinline__ bool hands_out_items(const WorkCounters* work, long long units) {
  return work != nullptr && units > gridDim.x;
}

/// A block's claim on its next item: drawn by thread 0 when its k-tiles are done, published
/// through shared memory before the item's last block barrier, so that the atomic's latency
/// runs under the item's reduction (the draw's values are not used before publish).
struct NextItem {
  WorkCounters* work;  ///< null: the static order
  long long item;      ///< the block's current item
  long long units;     ///< items of the launch
  long long* slot;     ///< shared memory, read by the block after the barrier

  struct Draw {
    unsigned long long armed;
    unsigned int ticket;
  };
  /// Thread 0 takes a ticket where a launch has more than one round of items (units >
  /// gridDim.x; otherwise no block has a second item and there is nothing to hand out).
  __device__ __forceinline__ Draw draw() const {
    Draw d{0, 0};
    if (threadIdx.x == 0 && hands_out_items(work, units)) {
      // Both in flight together; the armed word never changes during a launch.
      d.armed = *static_cast<volatile unsigned long long*>(&work->armed);
      d.ticket = atomicAdd(&work->tickets, 1u);
    }
    return d;
  }
  __device__ __forceinline__ void publish(const Draw& d) const {
    if (threadIdx.x == 0)
      *slot = d.armed == kArmed ? static_cast<long long>(gridDim.x) + d.ticket : item + gridDim.x;
  }
};

/// Counts the block out (thread 0, after its last draw); the last block resets the counters for
/// the next launch. Every other block has drawn its last ticket before its exit count, so
/// nothing draws one after the reset. Launches of one round drew none: nothing to count.
__device__ __forceinline__ void leave_work_queue(WorkCounters* work, long long units) {
  if (threadIdx.x != 0 || !hands_out_items(work, units)) return;
  __threadfence();
  if (atomicAdd(&work->exits, 1u) == gridDim.x - 1) {
    work->tickets = 0;
    work->exits = 0;
  }
}

}  // namespace qmoe::dev
