// The decode kernel's launch model (grouped_gemv.cuh choose_variant): host code, so these
// run without a device. The kernel relies on what the first test checks (a power-of-two K
// split of at most 8 warps, strip_cap * chunks <= 4); the second pins two measured choices.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>

#include "cuda/kernels/grouped_gemv.cuh"

namespace {

using qmoe::dev::GemmProblem;
using qmoe::dev::gemv::choose_variant;
using qmoe::dev::gemv::Variant;

GemmProblem problem(int n, int k, int64_t m, int experts, int min_tile_bytes) {
  GemmProblem p{};
  p.num_experts = experts;
  p.n = n;
  p.k = k;
  p.n_strips = (n + 15) / 16;
  p.k_tiles = (k + 127) / 128;
  p.m = m;
  p.min_tokens = 1;
  p.max_tokens = INT_MAX;
  p.min_tile_bytes = min_tile_bytes;
  p.a_slot_bytes = min_tile_bytes;
  return p;
}

TEST(DecodeVariant, IsAValidLaunchForEveryShape) {
  for (int n : {1, 16, 48, 1536, 2048, 28672})
    for (int k : {1, 128, 768, 2048, 4224, 14336})
      for (int64_t m : {1, 8, 31, 128, 4096})
        for (int experts : {1, 8, 128, 1024})
          for (int grid : {1, 16, 216, 264})
            for (int tile : {512, 768, 1024, 2048, 4096}) {
              const GemmProblem p = problem(n, k, m, experts, tile);
              const Variant v = choose_variant(p, grid);
              SCOPED_TRACE(testing::Message() << "n " << n << " k " << k << " m " << m << " E "
                                              << experts << " grid " << grid << " tile " << tile);
              EXPECT_TRUE(v.strip_cap == 1 || v.strip_cap == 2 || v.strip_cap == 4);
              EXPECT_TRUE(v.chunks == 1 || v.chunks == 2);
              EXPECT_LE(v.strip_cap * v.chunks, 4);
              EXPECT_TRUE(v.group_warps == 1 || v.group_warps == 2 || v.group_warps == 4 ||
                          v.group_warps == 8);
              // Never more warps than k-tiles beyond the 8-k-tile rule's own split.
              const int rule = qmoe::dev::gemv::min_tile_warps(p.k_tiles);
              EXPECT_TRUE(v.group_warps == rule ||
                          (v.group_warps == 2 * rule && v.group_warps <= p.k_tiles));
            }
}

TEST(DecodeVariant, SplitsKFurtherOnlyWhereItemsWouldLeaveTheGridIdle) {
  // Measured on the H200 (264 resident blocks; bench/results/ab-2026-12-02-s7/perlaunch):
  // Qwen3-30B-A3B's down projection at one token per row (n 2048, k 768: 6 k-tiles, 8 active
  // experts) ran fastest at 1 strip per warp with K split over 2 warps, 256 items (the 8-k-tile
  // rule alone: 128 items, 3.2 us slower per layer) ...
  const Variant small = choose_variant(problem(2048, 768, 8, 128, 1024), 264);
  EXPECT_EQ(small.strip_cap, 1);
  EXPECT_EQ(small.group_warps, 2);
  EXPECT_EQ(small.chunks, 1);
  // ... while Mixtral's gate/up projection (n 28672, k 4096, 2 active experts) keeps 4 strips per
  // warp and the rule's 4 warps per strip group: 448 items, two rounds of long runs.
  const Variant large = choose_variant(problem(28672, 4096, 2, 8, 1024), 264);
  EXPECT_EQ(large.strip_cap, 4);
  EXPECT_EQ(large.group_warps, 4);
}

TEST(DecodeVariant, HalvesOnlyALastRoundWhoseHalvesGetABlockEach) {
  using qmoe::dev::gemv::half_items;
  EXPECT_EQ(half_items(264 + 100, 264, 2), 100);  // one whole round, then 200 halves
  EXPECT_EQ(half_items(132, 264, 0), 132);        // exactly one half per block
  EXPECT_EQ(half_items(133, 264, 0), 0);          // two halves on a block cost more than a whole
  EXPECT_EQ(half_items(448, 264, 2), 0);          // Mixtral's gate/up at one token (measured)
  EXPECT_EQ(half_items(528, 264, 1), 0);          // whole rounds only
  EXPECT_EQ(half_items(100, 264, 3), 0);          // 8 warps per strip group: none to double
}

}  // namespace
