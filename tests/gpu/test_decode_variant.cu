// The decode kernel's launch model (grouped_gemv.cuh choose_variant): host code, so these
// run without a device. The kernel relies on what the first test checks (a power-of-two K
// split of at most 8 warps, strip_cap * chunks <= 4 or eight strips of one chunk for banks whose
// every decoder takes eight); the second pins two measured choices.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstdint>

#include "cuda/kernels/grouped_gemv.cuh"
#include "tests/gpu/decode_problem.hpp"

namespace {

using qmoe::dev::GemmProblem;
using qmoe::dev::gemv::choose_variant;
using qmoe::dev::gemv::Variant;

// One format (or a mixed bank's smallest and largest alike) of strip_bytes per strip and k-tile.
GemmProblem problem(int n, int k, int64_t m, int experts, int strip_bytes) {
  return qmoe::gpu_test::decode_problem(experts, n, k, m, INT_MAX, strip_bytes, strip_bytes);
}

TEST(DecodeVariant, IsAValidLaunchForEveryShape) {
  for (int n : {1, 16, 48, 1536, 2048, 28672})
    for (int k : {1, 128, 768, 2048, 4224, 14336})
      for (int64_t m : {1, 8, 31, 128, 4096})
        for (int experts : {1, 8, 128, 1024})
          for (int grid : {1, 16, 216, 264})
            for (int strip : {560, 704, 816, 1072, 1216, 2096, 4096}) {
              const GemmProblem p = problem(n, k, m, experts, strip);
              const Variant v = choose_variant(p, grid);
              SCOPED_TRACE(testing::Message() << "n " << n << " k " << k << " m " << m << " E "
                                              << experts << " grid " << grid << " strip " << strip);
              EXPECT_TRUE(v.strip_cap == 1 || v.strip_cap == 2 || v.strip_cap == 4 ||
                          v.strip_cap == 8);
              EXPECT_TRUE(v.chunks == 1 || v.chunks == 2);
              if (v.strip_cap == 8) {
                EXPECT_EQ(v.chunks, 1);
                EXPECT_EQ(qmoe::dev::gemv::ring_strips(strip), 8);
              } else {
                EXPECT_LE(v.strip_cap * v.chunks, 4);
              }
              EXPECT_TRUE(v.group_warps == 1 || v.group_warps == 2 || v.group_warps == 4 ||
                          v.group_warps == 8);
              // The 8-k-tile rule's split, twice it (never more warps than k-tiles beyond the
              // rule's own), or half it with runs of at most 16 k-tiles.
              const int rule = qmoe::dev::gemv::min_tile_warps(p.k_tiles);
              EXPECT_TRUE(
                  v.group_warps == rule ||
                  (v.group_warps == 2 * rule && v.group_warps <= p.k_tiles) ||
                  (2 * v.group_warps == rule && (p.k_tiles + v.group_warps - 1) / v.group_warps <=
                                                    2 * qmoe::dev::gemv::kMinTilesPerWarp));
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
  // warp and takes half the rule's 4 warps per strip group: 224 items in one round of 16-k-tile
  // runs, where the rule's split ran two rounds of 448 (2-5 % slower, s31-2026-12-04/call2) ...
  const Variant large = choose_variant(problem(28672, 4096, 2, 8, 1024), 264);
  EXPECT_EQ(large.strip_cap, 4);
  EXPECT_EQ(large.group_warps, 2);
  // ... but OLMoE's gate/up at T = 8 (n 2048, k 2048, 64 rows on 64 experts, ~41 of them
  // expected to hold tokens) keeps the rule's 2 warps: half of them would leave one round of ~164
  // items on 264 blocks (9-13 % slower in the same sweep).
  EXPECT_EQ(choose_variant(problem(2048, 2048, 64, 64, 1072), 264).group_warps, 2);
  // A mixed bank (int2 to int8: 560 to 2096 bytes per strip and k-tile) keeps the rule's split
  // where a bank of its smallest format alone takes half: its int8 experts would run twice the
  // items counted (OLMoE's gate/up at T = 64 as mixed:rr: 1.08x with half the warps).
  EXPECT_EQ(choose_variant(problem(2048, 2048, 512, 64, 1072), 264).group_warps, 1);
  qmoe::dev::GemmProblem mixed = problem(2048, 2048, 512, 64, 560);
  mixed.max_strip_bytes = 2096;
  EXPECT_EQ(choose_variant(mixed, 264).group_warps, 2);
}

TEST(DecodeVariant, ExpectedActiveExpertsFollowsUniformRouting) {
  using qmoe::dev::gemv::expected_active_experts;
  EXPECT_EQ(expected_active_experts(0, 64), 0.0);
  EXPECT_EQ(expected_active_experts(5, 0), 0.0);
  EXPECT_DOUBLE_EQ(expected_active_experts(7, 1), 1.0);
  EXPECT_DOUBLE_EQ(expected_active_experts(1, 64), 1.0);
  // 2 rows on 8 experts: 8 (1 - (7/8)^2) = 1.875.
  EXPECT_NEAR(expected_active_experts(2, 8), 1.875, 1e-12);
  // 96 rows on 64 experts: ~50.1, well below min(E, m) = 64.
  EXPECT_NEAR(expected_active_experts(96, 64), 64.0 * (1.0 - std::pow(63.0 / 64.0, 96)), 1e-9);
  EXPECT_NEAR(expected_active_experts(1 << 20, 256), 256.0, 1e-9);
}

TEST(DecodeVariant, TakesEightStripsOnlyForBanksWhoseEveryDecoderTakesEight) {
  using qmoe::dev::decoder_strip_bytes;
  using qmoe::dev::kFirstIntDecoder;
  using qmoe::dev::gemv::ring_strips;
  // int2 at g128 and g64 (decoder ids kFirstIntDecoder + 0, + 1), vq1.5 and vq2 (int2:g128's
  // scales; a table per item) stage 560, 608, 432 and 560 bytes per strip and k-tile: eight
  // strips fit two ring stages; int2:g32 and every wider format (vq2.5 688, vq3 816) do not.
  using qmoe::dev::kFirstVectorDecoder;
  EXPECT_EQ(decoder_strip_bytes(kFirstIntDecoder + 0), 560);
  EXPECT_EQ(decoder_strip_bytes(kFirstIntDecoder + 1), 608);
  EXPECT_EQ(decoder_strip_bytes(kFirstVectorDecoder), 432);
  EXPECT_EQ(decoder_strip_bytes(qmoe::dev::kDecoderVq2), 560);
  EXPECT_EQ(decoder_strip_bytes(kFirstVectorDecoder + 2), 688);
  EXPECT_EQ(decoder_strip_bytes(kFirstVectorDecoder + 3), 816);
  for (int id : {kFirstIntDecoder + 0, kFirstIntDecoder + 1, kFirstVectorDecoder + 0,
                 kFirstVectorDecoder + 1})
    EXPECT_EQ(ring_strips(decoder_strip_bytes(id)), 8) << "decoder " << id;
  for (int id = kFirstIntDecoder + 2; id < kFirstVectorDecoder; ++id)
    EXPECT_LE(ring_strips(decoder_strip_bytes(id)), 4) << "decoder " << id;
  for (int id : {kFirstVectorDecoder + 2, kFirstVectorDecoder + 3})
    EXPECT_EQ(ring_strips(decoder_strip_bytes(id)), 4) << "decoder " << id;
  // The trellis decoders (int2:g128's scales too): tcq2 and tcq1.5 (512- and 384-byte tiles)
  // take eight, tcq3, tcq4, tcq2.5 and tcq3.5 four.
  using qmoe::dev::kFirstTrellisDecoder;
  const int trellis_strip_bytes[6] = {512 + 48, 768 + 48, 1024 + 48, 384 + 48, 640 + 48, 896 + 48};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(decoder_strip_bytes(kFirstTrellisDecoder + i), trellis_strip_bytes[i]) << i;
    EXPECT_EQ(ring_strips(trellis_strip_bytes[i]), i == 0 || i == 3 ? 8 : 4) << i;
  }
  // Up to four strips the tile bytes alone give the dense, int and vector decoders' count (the
  // decode kernel's item count takes that shortcut below eight for them) ...
  for (int id = 0; id < qmoe::dev::kNumDecoders; ++id) {
    if (id >= qmoe::dev::kFirstLutDecoder && id < kFirstVectorDecoder) continue;
    for (int cap : {1, 2, 4})
      EXPECT_EQ(qmoe::dev::gemv::strips_per_warp(qmoe::dev::decoder_tile_bytes(id), cap),
                qmoe::dev::gemv::strips_per_warp(decoder_strip_bytes(id), cap))
          << "decoder " << id << " cap " << cap;
  }
  // ... but not nuq4's (1024-byte tiles and 512-byte tables: two strips, not four), which is why
  // the kernel counts the LUT decoders' items from decoder_strip_bytes.
  EXPECT_EQ(
      qmoe::dev::gemv::strips_per_warp(decoder_strip_bytes(qmoe::dev::kFirstLutDecoder + 2), 4), 2);
  EXPECT_EQ(qmoe::dev::gemv::strips_per_warp(
                qmoe::dev::decoder_tile_bytes(qmoe::dev::kFirstLutDecoder + 2), 4),
            4);
  // DeepSeek-V3's gate/up projection at T = 4 (32 rows, 256 experts) in int2:g128: eight strips
  // per warp, 512 items (two rounds) where four strips take 1024 (four) ...
  const Variant int2 = choose_variant(problem(4096, 7168, 32, 256, 560), 264);
  EXPECT_EQ(int2.strip_cap, 8);
  EXPECT_EQ(int2.chunks, 1);
  EXPECT_EQ(int2.group_warps, 4);
  // ... but not where eight strips would leave one round of fewer items than blocks: OLMoE's
  // gate/up at T = 8 (four strips: 512 items, eight: 256 on 264 blocks, measured 1.09-1.15x).
  EXPECT_EQ(choose_variant(problem(2048, 2048, 64, 64, 560), 264).strip_cap, 4);
  // The same bank with one int2:g32 expert (704 bytes: four strips) never takes eight.
  GemmProblem mixed = problem(4096, 7168, 32, 256, 560);
  mixed.max_strip_bytes = decoder_strip_bytes(kFirstIntDecoder + 2);
  EXPECT_EQ(choose_variant(mixed, 264).strip_cap, 4);
}

TEST(DecodeVariant, HalvesOnlyALastRoundWhoseHalvesGetABlockEach) {
  using qmoe::dev::gemv::half_items;
  EXPECT_EQ(half_items(264 + 100, 264, 2), 100);  // one whole round, then 200 halves
  EXPECT_EQ(half_items(132, 264, 0), 132);        // exactly one half per block
  EXPECT_EQ(half_items(133, 264, 0), 0);          // two halves on a block cost more than a whole
  EXPECT_EQ(half_items(448, 264, 2), 0);          // Mixtral's gate/up at one token (measured)
  EXPECT_EQ(half_items(528, 264, 1), 0);          // whole rounds only
  EXPECT_EQ(half_items(100, 264, 3), 0);          // 8 warps per strip group: none to double
  // Counts past 32 bits take the 64-bit remainder (2^40 = 196 mod 264).
  EXPECT_EQ(half_items((1LL << 40) + 100, 264, 2), 68);
  EXPECT_EQ(half_items((1LL << 40) + 200, 264, 2), 0);
}

}  // namespace
