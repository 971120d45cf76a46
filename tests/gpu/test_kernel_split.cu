// Which kernel takes which experts of a grouped_gemm call (kernel_split.cuh): host code, so
// these run without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>
#include <vector>

#include "cuda/kernels/grouped_gemm_tc.cuh"
#include "cuda/kernels/grouped_gemm_wgmma.cuh"
#include "cuda/kernels/kernel_split.cuh"
#include "qmoe/format.hpp"
#include "qmoe/packed.hpp"
#include "tests/gpu/tail_cases.hpp"
#include "tests/gpu/tile256_cases.hpp"

namespace {

using qmoe::KernelChoice;
using qmoe::dev::kAdaptiveDecodeMean;
using qmoe::dev::kAdaptiveDecodeMeanInt8;
using qmoe::dev::kAdaptiveDecodeMeanTwoBlock;
using qmoe::dev::split_kernels;

constexpr uint32_t kInt = 1u << qmoe::dev::kFirstIntDecoder;            // int2, g128
constexpr uint32_t kInt3 = 1u << (qmoe::dev::kFirstIntDecoder + 3);     // int3, g128
constexpr uint32_t kInt4 = 1u << (qmoe::dev::kFirstIntDecoder + 6);     // int4, g128
constexpr uint32_t kInt4G32 = 1u << (qmoe::dev::kFirstIntDecoder + 8);  // int4, g32
constexpr uint32_t kInt8 = 1u << (qmoe::dev::kFirstIntDecoder + 9);     // int8, g128
constexpr uint32_t kBF16 = 1u << qmoe::dev::kDecoderDenseBF16;
constexpr uint32_t kFP16 = 1u << qmoe::dev::kDecoderDenseFP16;
constexpr int kSms = 132;

/// decode_max of a call with m rows over `experts` experts of [n, 4096] in the formats of mask.
int decode_max(KernelChoice kernel, int threshold, int64_t m, int experts, uint32_t mask,
               bool wgmma, int64_t n = 4096,
               qmoe::IntegerDecode integer_decode = qmoe::IntegerDecode::kAuto) {
  qmoe::GroupedGemmArgs a;
  a.kernel = kernel;
  a.integer_decode = integer_decode;
  a.decode_max_tokens = threshold;
  a.x.rows = m;
  a.bank.num_experts = experts;
  a.bank.n = n;
  a.bank.format_mask = mask;
  return split_kernels(a, wgmma, kSms).decode_max;
}

TEST(KernelSplit, FixedChoicesIgnoreTheThreshold) {
  for (int t : {0, 1, 16, 64})
    for (bool wgmma : {false, true}) {
      EXPECT_EQ(decode_max(KernelChoice::kDecode, t, 5000, 8, kBF16, wgmma), INT_MAX);
      EXPECT_EQ(decode_max(KernelChoice::kPrefill, t, 1, 128, kInt, wgmma), 0);
    }
}

TEST(KernelSplit, AutoWithAThresholdSplitsPerExpert) {
  for (int t : {1, 16, 64})
    for (uint32_t mask : {kInt, kBF16, kInt | kBF16})
      for (bool wgmma : {false, true})
        EXPECT_EQ(decode_max(KernelChoice::kAuto, t, 4096, 64, mask, wgmma), t);
}

TEST(KernelSplit, AdaptiveAutoPicksOneKernelByTheMeanTokensPerExpert) {
  // Integer banks (with or without dense experts): the decode kernel for every expert up to a
  // mean of kAdaptiveDecodeMean tokens per active expert (m / min(E, m)), the tile kernel
  // above. int8 and dense tiles keep the wgmma kernel off its 32-token tile; so do too few
  // items (N = 256: one row block per expert, fewer than 3/4 x 132 of them). int8 alone: below.
  for (uint32_t mask : {kInt | kInt8, kInt | kBF16, kInt | kFP16})
    for (int experts : {8, 64, 256}) {
      const int64_t edge = int64_t{kAdaptiveDecodeMean} * experts;
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge, experts, mask, true), INT_MAX);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge + 1, experts, mask, true), 0);
      // Fewer rows than experts: at most one token each.
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, experts - 1, experts, mask, true), INT_MAX);
    }
  for (int experts : {8, 64, 98}) {
    const int64_t edge = int64_t{kAdaptiveDecodeMean} * experts;
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge, experts, kInt, true, 256), INT_MAX);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge + 1, experts, kInt, true, 256), 0);
  }
  // No rows: the decode kernel (no division by zero active experts).
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 0, 8, kInt, true), INT_MAX);
}

TEST(KernelSplit, AdaptiveAutoRunsInt8BanksInTheDecodeKernelToTheirOwnBound) {
  // int8 alone: 16-token decode items on the integer decode, up to kAdaptiveDecodeMeanInt8;
  // with the integer decode off, kAdaptiveDecodeMean.
  static_assert(kAdaptiveDecodeMeanInt8 > kAdaptiveDecodeMean, "a higher bound");
  for (int experts : {8, 64, 256}) {
    const int64_t edge = int64_t{kAdaptiveDecodeMeanInt8} * experts;
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge, experts, kInt8, true), INT_MAX);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, edge + 1, experts, kInt8, true), 0);
    const int64_t off_edge = int64_t{kAdaptiveDecodeMean} * experts;
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, off_edge, experts, kInt8, true, 4096,
                         qmoe::IntegerDecode::kOff),
              INT_MAX);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, off_edge + 1, experts, kInt8, true, 4096,
                         qmoe::IntegerDecode::kOff),
              0);
  }
}

TEST(KernelSplit, AdaptiveAutoMovesTheBoundaryWhereTheTwoBlockTileRuns) {
  // 2/3/4-bit banks whose items fill the 32-token tile's grid (2 x 132) to 3/4 or more, counted
  // in 128-row items: boundary at kAdaptiveDecodeMeanTwoBlock. Qwen3 w13 (N = 1536: 6 row
  // blocks of 256 rows x 128 experts), Mixtral w13 (N = 28672: 112 x 8), and Mixtral w2
  // (N = 4096: 16 x 8 = 128 items of 256 rows, 256 of 128 rows for the one-strip form).
  const int64_t low = kAdaptiveDecodeMeanTwoBlock, high = kAdaptiveDecodeMean;
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 128, 128, kInt, true, 1536), INT_MAX);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 128 + 1, 128, kInt, true, 1536), 0);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 8, 8, kInt, true, 28672), INT_MAX);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 8 + 1, 8, kInt, true, 28672), 0);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 8, 8, kInt, true, 4096), INT_MAX);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 8 + 1, 8, kInt, true, 4096), 0);
  // An int8 expert in the bank: the 64-token tile, the other boundary. int4 (1 KB tiles, the
  // largest the 32-token tile takes) keeps the low one.
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, high * 128, 128, kInt | kInt8, true, 1536), INT_MAX);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low * 128 + 1, 128, kInt4, true, 1536), 0);
  // 128-row items exactly at 3/4 of the two-block grid (2 x 132): 99 experts of one row block
  // (N = 256: 198 items of 128 rows) take the low boundary, 98 the high one (mean 9 between).
  static_assert(kAdaptiveDecodeMeanTwoBlock < 9 && 9 <= kAdaptiveDecodeMean, "9 lies between");
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 9 * 99, 99, kInt, true, 256), 0);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 9 * 98, 98, kInt, true, 256), INT_MAX);
}

TEST(KernelSplit, AdaptiveAutoRunsDenseBanksInTheWgmmaKernelWhenItsItemsFillTheSms) {
  for (uint32_t mask : {kBF16, kFP16, kBF16 | kFP16}) {
    // Mixtral at T = 1: 2 active experts; w13 (N = 28672) has 2 x 112 items, w2 (N = 4096) 2 x 16.
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 2, 8, mask, true, 28672), 0);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 2, 8, mask, true, 4096), INT_MAX);
    // Items for 3/4 of the 132 SMs (99): 25 experts x 4 row blocks of N = 1024, not 24 x 4.
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 25, 64, mask, true, 1024), 0);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 24, 64, mask, true, 1024), INT_MAX);
    // Few items but many tokens per expert (Mixtral w2 at T = 4096: 8 x 16 items): tile
    // kernel above the integer rule's mean, decode kernel up to it.
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 8192, 8, mask, true, 1024), 0);
    EXPECT_EQ(
        decode_max(KernelChoice::kAuto, 0, 8 * (kAdaptiveDecodeMean + 1), 8, mask, true, 1024), 0);
    EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 8 * kAdaptiveDecodeMean, 8, mask, true, 1024),
              INT_MAX);
  }
}

/// The wgmma kernel's token tile and blocks per SM for m rows over `experts` experts of
/// [n, k] whose largest code tile is slot_bytes (token_tile: host code).
qmoe::dev::wg::TokenTileChoice tile_of(int64_t m, int experts, int slot_bytes, int n = 4096,
                                       int k = 4096, bool formed = false) {
  qmoe::dev::GemmProblem p{};
  p.formed = formed ? 1 : 0;
  p.m = m;
  p.num_experts = experts;
  p.n = n;
  p.k = k;
  p.n_strips = (n + 15) / 16;
  p.min_tokens = 1;
  p.a_slot_bytes = slot_bytes;
  return qmoe::dev::wg::token_tile(p);
}

TEST(WgmmaTokenTile, FollowsTheMeanTokensPerExpert) {
  // int8 code tiles (2 KB) take only the one-strip 32-token two-block tile (below), then 64
  // tokens up to a mean of 40, 96 up to 76, 128 above, and 256 by the 2/3/4-bit rule (its
  // kernel for 2 KB slots); dense slots (4 KB) stay at 128.
  const int int8 = 2048, int4 = 1024;
  EXPECT_EQ(tile_of(8 * 40, 8, int8).tokens, 64);
  EXPECT_EQ(tile_of(8 * 41, 8, int8).tokens, 96);
  EXPECT_EQ(tile_of(8 * 76, 8, int8).tokens, 96);
  EXPECT_EQ(tile_of(8 * 76 + 1, 8, int8).tokens, 128);
  EXPECT_EQ(tile_of(8 * 255, 8, int8).tokens, 128);
  EXPECT_EQ(tile_of(8 * 256, 8, int8).tokens, 256);
  EXPECT_EQ(tile_of(8 * 256, 8, 4096).tokens, 128);
  // 2/3/4-bit tiles: the two-block 32/64-token tiles up to a mean of 48 (one-block fallback
  // for launches whose items do not fill that grid), then the one-block 96 and 128.
  EXPECT_EQ(tile_of(8 * 20, 8, int4).tokens, 32);
  EXPECT_EQ(tile_of(8 * 20, 8, int4).blocks, 2);
  EXPECT_EQ(tile_of(8 * 48, 8, int4).tokens, 64);
  EXPECT_EQ(tile_of(8 * 48, 8, int4).fallback, 96);
  EXPECT_EQ(tile_of(8 * 49, 8, int4).tokens, 96);
  EXPECT_EQ(tile_of(8 * 49, 8, int4).blocks, 1);
  // Where the 256-row items do not reach the two-block grid, the launcher runs the 32-token tile
  // with 128-row items at two blocks per SM and the 64-token one's fallback (one block per SM).
  EXPECT_EQ(tile_of(8 * 20, 8, int4).warp_strips, 2);
  EXPECT_EQ(tile_of(8 * 21, 8, int4).fallback, 64);
  // int8 slots: the 32-token two-block tile in its one-strip form alone, up to a mean of 20.
  const auto int8_20 = tile_of(8 * 20, 8, int8);
  EXPECT_EQ(int8_20.tokens, 32);
  EXPECT_EQ(int8_20.blocks, 2);
  EXPECT_EQ(int8_20.warp_strips, 1);
  EXPECT_EQ(int8_20.fallback, 64);
  EXPECT_EQ(tile_of(8 * 21, 8, int8).blocks, 1);
  EXPECT_EQ(tile_of(8 * 20, 8, 4096).blocks, 1);           // dense slots
  const auto mixtral_t256 = tile_of(512, 8, int4, 28672);  // a mean of 64
  EXPECT_EQ(mixtral_t256.tokens, 96);
  EXPECT_EQ(mixtral_t256.blocks, 1);
  EXPECT_EQ(tile_of(8 * 77, 8, int4).tokens, 128);
  // 256 tokens from a mean of 256 where K >= 4096, from 1536 at shorter K.
  EXPECT_EQ(tile_of(8 * 255, 8, int4).tokens, 128);
  EXPECT_EQ(tile_of(8 * 256, 8, int4).tokens, 256);
  EXPECT_EQ(tile_of(8 * 256, 8, int4, 4096, 2048).tokens, 128);
}

/// The decoder-id bit of an [n, k] expert in format `name` (decoder_id of its descriptor).
uint32_t decoder_bit(const char* name, int64_t n = 256, int64_t k = 512) {
  qmoe::FormatSpec f;
  EXPECT_TRUE(qmoe::FormatSpec::parse(name, &f).is_ok()) << name;
  qmoe::PackedLayout layout;
  EXPECT_TRUE(qmoe::packed_layout(f, n, k, &layout).is_ok()) << name;
  const int id = qmoe::dev::decoder_id(qmoe::make_expert_desc(f, layout, 0));
  EXPECT_GE(id, 0) << name;
  return id >= 0 ? 1u << id : 0u;
}

/// What grouped_gemm's launches know of a bank of these formats ([n, k] experts): its largest
/// code tile and whether a formed-weight (LUT or vector) decoder is among its decoders, from the
/// decoder ids of the experts' descriptors (max_tile_bytes and kFormedDecoderMask of the format
/// mask, as the call has them).
struct BankSlots {
  int slot_bytes = 0;
  bool formed = false;
};
BankSlots bank_slots(const std::vector<const char*>& names, int64_t n, int64_t k) {
  uint32_t mask = 0;
  for (const char* name : names) mask |= decoder_bit(name, n, k);
  return {qmoe::dev::max_tile_bytes(mask), (mask & qmoe::dev::kFormedDecoderMask) != 0};
}

TEST(WgmmaTokenTile, TheGpuTestOfThe256TokenTileRunsIt) {
  // GpuKernels.GroupedGemm256TokenTileMatchesReferenceSmall (test_gpu_kernels.cu) cannot see
  // which tile ran; these are its calls' tile choices, on the host, from the same case list: m =
  // the counts plus the 3 extra rows check_gemm gives x, N and K, the bank's largest code tile
  // (256 bytes per code bit: 16 x 128 codes).
  for (const Tile256Case& c : tile256_cases()) {
    SCOPED_TRACE(c.what);
    int64_t m = 3;
    for (int32_t count : c.counts) m += count;
    const BankSlots b = bank_slots(c.formats, c.n, c.k);
    EXPECT_EQ(tile_of(m, static_cast<int>(c.counts.size()), b.slot_bytes, static_cast<int>(c.n),
                      static_cast<int>(c.k), b.formed)
                  .tokens,
              256);
  }
  // Below the bound (a mean of 255 at K >= 4096) an int4 bank takes the 128-token tile.
  EXPECT_EQ(tile_of(4 * 255, 4, qmoe::dev::IntDecoder<4, 1>::kTileBytes, 200, 4160).tokens, 128);
}

TEST(WgmmaTailSplit, FewTailItemsTakeTheOneStripTile) {
  // launch_with_tail's choice on a 132-SM device: the two-block tail tiles' grid is 264 blocks,
  // the one-strip 64-token tile's 132 (one block per SM), the one-strip 32-token tile's 264.
  using qmoe::dev::wg::tail_strips;
  EXPECT_EQ(tail_strips(288, 264, 132, 1), 2);  // 48 experts x 12 row blocks / 2
  EXPECT_EQ(tail_strips(264, 264, 132, 1), 2);
  // Mixtral's down projection (8 experts x 16 row blocks / 2): 128 items of 128 rows.
  EXPECT_EQ(tail_strips(64, 264, 132, 1), 1);
  EXPECT_EQ(tail_strips(64, 264, 264, 2), 1);
  // 2 x 50 = 100 items of 128 rows fill 3/4 of 132 SMs (99); 2 x 49 do not.
  EXPECT_EQ(tail_strips(50, 264, 132, 1), 1);
  EXPECT_EQ(tail_strips(49, 264, 132, 1), 0);
  EXPECT_EQ(tail_strips(50, 264, 264, 2), 1);
  EXPECT_EQ(tail_strips(49, 264, 264, 2), 0);
  EXPECT_EQ(tail_strips(0, 264, 132, 1), 0);
}

TEST(WgmmaTailSplit, TheGpuTestOfTheTailLaunchRunsEachForm) {
  // GpuKernels.GroupedGemmShortLastBlocksRunInTheTailTileSmall (test_gpu_kernels.cu) cannot see
  // which launches ran; these are its calls' choices on a 132-SM device, from the same case list
  // (m = the counts plus the 3 extra rows check_gemm gives x): the main tile (token_tile), then
  // launch_with_tail's tail launch for the estimated tail items (half its 256-row items) against
  // the tail tiles' grids (264 two-block blocks; the one-strip 32-token tile at two blocks per
  // SM, the 64-token one at one).
  using qmoe::dev::wg::kOneStripBlocks;
  using qmoe::dev::wg::tail_strips;
  for (const TailCase& c : tail_cases()) {
    SCOPED_TRACE(c.what);
    int64_t m = 3;
    for (size_t e = 0; e < static_cast<size_t>(c.experts); ++e) m += c.counts[e % c.counts.size()];
    const BankSlots b = bank_slots(c.formats, c.n, c.k);
    const auto tile =
        tile_of(m, c.experts, b.slot_bytes, static_cast<int>(c.n), static_cast<int>(c.k), b.formed);
    ASSERT_EQ(tile.tokens, c.tile);
    ASSERT_EQ(tile.blocks, 1);
    const int per_sm = c.tile == 256 ? kOneStripBlocks<64> : kOneStripBlocks<32>;
    const int strips = b.slot_bytes > qmoe::dev::kWgmmaTwoBlockMaxSlotBytes
                           ? 0
                           : tail_strips(tile.items / 2, 2 * kSms, per_sm * kSms, per_sm);
    const TailLaunch got = strips == 2   ? TailLaunch::kTwoBlock
                           : strips == 1 ? TailLaunch::kOneStrip
                                         : TailLaunch::kNone;
    EXPECT_EQ(got, c.tail);
  }
}

TEST(WgmmaRing, FixedDepthWhereEverySlotOfAKernelGivesTheSame) {
  // ring_depth by code slot (ring_stages): the kernels whose slots all give one depth compile
  // their k-loop for it (fixed_ring_depth, over the decoders the instantiation holds: without
  // (false) or with (true) the formed-weight ones, and the trellis ones); the others branch on it
  // per launch.
  using qmoe::dev::wg::fixed_ring_depth;
  using qmoe::dev::wg::ring_depth;
  using qmoe::dev::wg::ring_stages;
  EXPECT_EQ((fixed_ring_depth<64, 2, 2, 1024, false>()), 1);  // int2/int3 three stages, int4 two
  EXPECT_EQ((ring_stages<64, 2>(512)), 3);
  EXPECT_EQ((ring_stages<64, 2>(1024)), 2);
  // vq1.5's 384-byte slots take four (the 64-token tiles give each item its own ring anyway).
  EXPECT_EQ((ring_stages<64, 2>(384)), 4);
  EXPECT_EQ((fixed_ring_depth<64, 2, 2, 1024, true>()), 0);
  EXPECT_EQ((fixed_ring_depth<256, 1, 1, 1024, false>()), 1);  // three stages
  EXPECT_EQ((fixed_ring_depth<256, 1, 1, 1024, true>()), 1);
  EXPECT_EQ((fixed_ring_depth<32, 2, 1, 1024, false>()), 2);  // four stages
  EXPECT_EQ((fixed_ring_depth<32, 2, 1, 1024, true>()), 2);
  EXPECT_EQ((fixed_ring_depth<32, 2, 1, 2048, false>()), 0);   // int8: three
  EXPECT_EQ((fixed_ring_depth<32, 2, 2, 1024, false>()), 0);   // int2/int3 four, int4 three
  EXPECT_EQ((fixed_ring_depth<128, 1, 2, 4096, false>()), 0);  // dense: two
  // The trellis experts' launch (128 tokens, one strip per warp, slots up to 1 KB, every
  // decoder held): four stages, two k-tiles ahead.
  EXPECT_EQ((fixed_ring_depth<128, 1, 1, 1024, true, true>()), 2);
  for (int slot : {512, 768, 1024}) EXPECT_EQ(ring_depth((ring_stages<64, 2>(slot))), 1) << slot;
}

// The 64-token tiles give each item its decoder's ring (own_ring): a launch reserves the
// largest of them (ring_smem_bytes), which must stay within the kernel's attribute
// (max_smem_bytes) and be no smaller than the ring of any decoder the launch may run: the
// formed-weight kernels' vector slots (384, 640 bytes) too, which the int kernels do not reserve
// (vq1.5's ring is larger than int2's: four stages of 384-byte slots against three of 512).
template <int kBlocks>
void expect_own_rings_fit() {
  using namespace qmoe::dev::wg;
  const int experts = max_experts<64>();
  for (bool formed : {false, true}) {
    const std::vector<int> slots = formed ? std::vector<int>{384, 512, 640, 768, 1024, 2048, 4096}
                                          : std::vector<int>{512, 768, 1024, 2048, 4096};
    for (int slot : slots) {
      if (slot > max_slot_bytes<64, kBlocks>()) continue;
      const size_t reserved = ring_smem_bytes<64, kBlocks>(experts, slot, formed);
      EXPECT_LE(reserved, (max_smem_bytes<64, kBlocks>(formed))) << kBlocks << " " << slot;
      for (int smaller : slots)
        if (smaller <= slot)
          EXPECT_GE(reserved, (smem_bytes<64, kBlocks>(experts, smaller)))
              << kBlocks << " " << slot << " " << smaller;
    }
  }
  // The int kernels reserve what they did before the vector slots existed: int2's ring at most;
  // at two blocks per SM the formed ones reserve vq1.5's (four 384-byte stages beat int2's three;
  // at one block both have four).
  EXPECT_EQ((ring_smem_bytes<64, kBlocks>(experts, 512, false)),
            (smem_bytes<64, kBlocks>(experts, 512)));
  if constexpr (kBlocks == 2)
    EXPECT_EQ((ring_smem_bytes<64, kBlocks>(experts, 512, true)),
              (smem_bytes<64, kBlocks>(experts, 384)));
}

TEST(WgmmaRing, OwnRingsFitTheKernelsSharedMemory) {
  using namespace qmoe::dev::wg;
  EXPECT_TRUE(own_ring<64>());
  EXPECT_FALSE(own_ring<32>() || own_ring<96>() || own_ring<128>() || own_ring<256>());
  expect_own_rings_fit<1>();
  expect_own_rings_fit<2>();
  // Where rings are not per item, the launch's largest slot lays the ring out.
  const int experts = max_experts<96>();
  EXPECT_EQ((ring_smem_bytes<96, 1>(experts, 1024, true)), (smem_bytes<96, 1>(experts, 1024)));
}

TEST(KernelSplit, AdaptiveAutoOnTheMmaSyncPathSplitsPerExpertOnlyInABandOfMeans) {
  // Without the wgmma kernel (the sm_80 path), for every bank: the decode kernel up to a mean of
  // kMmaSyncDecodeMean tokens per active expert, the per-expert threshold up to
  // kMmaSyncSplitMean, the tile kernel above.
  using qmoe::dev::kMmaSyncDecodeMean;
  using qmoe::dev::kMmaSyncSplitMean;
  using qmoe::dev::kMmaSyncSplitTokens;
  static_assert(kMmaSyncDecodeMean < kMmaSyncSplitMean, "a band between");
  for (uint32_t mask : {kInt, kInt8, kBF16, kInt | kBF16})
    for (int experts : {8, 64, 256}) {
      const int64_t low = int64_t{kMmaSyncDecodeMean} * experts;
      const int64_t high = int64_t{kMmaSyncSplitMean} * experts;
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 1, experts, mask, false), INT_MAX);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low, experts, mask, false), INT_MAX);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, low + 1, experts, mask, false),
                kMmaSyncSplitTokens);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, high, experts, mask, false),
                kMmaSyncSplitTokens);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, high + 1, experts, mask, false), 0);
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 100000, experts, mask, false), 0);
    }
  // An explicit threshold still wins.
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 5, 100000, 64, kInt, false), 5);
}

}  // namespace

TEST(TcTile, TwoStripsPerWarpWhereTheirSharedMemoryFits) {
  // Dynamic shared memory per block beside the kernel's ~2.3 KB of static: an A100 (163 KB opt-in),
  // an H100 / H200 (227 KB), an sm_86 / sm_89 part (99 KB).
  using qmoe::dev::tc::smem_bytes;
  using qmoe::dev::tc::two_strips_fit;
  constexpr size_t kStatic = 2336;
  constexpr size_t a100 = 166912 - kStatic, h100 = 232448 - kStatic, small = 101376 - kStatic;
  for (size_t room : {a100, h100}) {
    // Every 2/3/4/8-bit slot at any expert count; never dense 4 KB slots.
    for (int slot : {512, 768, 1024, 2048}) EXPECT_TRUE(two_strips_fit(1024, slot, room)) << slot;
    EXPECT_FALSE(two_strips_fit(8, 4096, room));
  }
  // ~100 KB per block: int2 fits, int4 at 64 experts does not (99344 bytes) and keeps one strip
  // per warp, which fits.
  EXPECT_TRUE(two_strips_fit(8, 512, small));
  EXPECT_FALSE(two_strips_fit(64, 1024, small));
  EXPECT_LE(smem_bytes<1>(64, 1024), small);
}

TEST(WgmmaTailSplit, HeadAndTailLaunchesPartitionEachExpertsRows) {
  // launch_with_tail: the 128- or 256-token tile takes all rows but a short last token block
  // (a quarter of the tile or less), the 32- or 64-token tile that block; together every row
  // once, the tail rows last.
  using qmoe::dev::expert_rows;
  using qmoe::dev::RowRange;
  for (const auto& [block, tail] : {std::pair{256, 64}, std::pair{128, 32}})
    for (int tokens = 0; tokens <= 3 * block + 5; ++tokens) {
      const RowRange all = expert_rows(tokens, qmoe::dev::kAllRows, block, tail);
      const RowRange head = expert_rows(tokens, qmoe::dev::kHeadRows, block, tail);
      const RowRange rest = expert_rows(tokens, qmoe::dev::kTailRows, block, tail);
      SCOPED_TRACE(testing::Message() << "block " << block << " tokens " << tokens);
      EXPECT_EQ(all.first, 0);
      EXPECT_EQ(all.count, tokens);
      EXPECT_EQ(head.first, 0);
      EXPECT_EQ(head.count + rest.count, tokens);
      const int r = tokens % block;
      const bool short_tail = r >= 1 && r <= tail;
      EXPECT_EQ(rest.count, short_tail ? r : 0);
      if (short_tail) EXPECT_EQ(rest.first, head.count);
      EXPECT_EQ(head.count % block, short_tail ? 0 : r);
    }
  // No token block (the launches that do not split): all rows in the head part.
  EXPECT_EQ(expert_rows(300, qmoe::dev::kHeadRows, 0, 64).count, 300);
  EXPECT_EQ(expert_rows(300, qmoe::dev::kTailRows, 0, 64).count, 0);
}

namespace {

/// decode_imma of a call with m rows over `experts` experts of [n, k] in the formats of mask,
/// its decode launch taking experts of at most decode_max tokens.
bool imma(qmoe::IntegerDecode choice, int64_t m, int experts, uint32_t mask, int64_t n, int64_t k,
          int decode_max = INT_MAX) {
  qmoe::GroupedGemmArgs a;
  a.integer_decode = choice;
  a.x.rows = m;
  a.bank.num_experts = experts;
  a.bank.n = n;
  a.bank.k = k;
  a.bank.format_mask = mask;
  return qmoe::dev::decode_imma(a, decode_max);
}

TEST(KernelSplit, FormatMasksNameTheirDecoders) {
  // decode_imma's masks against the registry: kInt4G32Mask is int4 g32's decoder, asymmetric or
  // symmetric, and no other int4; each bit width's mask holds its formats.
  EXPECT_EQ(decoder_bit("int4:g32"), qmoe::dev::kInt4G32Mask);
  EXPECT_EQ(decoder_bit("int4:g32:sym"), qmoe::dev::kInt4G32Mask);
  EXPECT_NE(decoder_bit("int4:g64"), qmoe::dev::kInt4G32Mask);
  EXPECT_NE(decoder_bit("int4:g128"), qmoe::dev::kInt4G32Mask);
  EXPECT_NE(decoder_bit("int4:pc"), qmoe::dev::kInt4G32Mask);
  for (const char* name : {"int8:g32", "int8:g128", "int8:pc:sym"})
    EXPECT_NE(decoder_bit(name) & qmoe::dev::kImmaInt8Mask, 0u) << name;
  for (const char* name : {"int4:g32", "int4:g64", "int4:pc"})
    EXPECT_NE(decoder_bit(name) & qmoe::dev::kImmaInt4Mask, 0u) << name;
  EXPECT_EQ(decoder_bit("int4:g128"), kInt4);
  EXPECT_EQ(decoder_bit("int4:g32"), kInt4G32);
  // The formed-weight decoders (GemmProblem::formed: kernels with them) are the LUT, vector and
  // trellis formats', and no int or dense one; the trellis ones have a mask of their own (the
  // wgmma kernel runs none of them), one decoder each (tcq3 and tcq1.5 both take 3 bits a step).
  const uint32_t trellis = decoder_bit("tcq2") | decoder_bit("tcq3") | decoder_bit("tcq4") |
                           decoder_bit("tcq1.5") | decoder_bit("tcq2.5") | decoder_bit("tcq3.5");
  EXPECT_EQ(trellis, qmoe::dev::kTrellisDecoderMask);
  EXPECT_EQ(__builtin_popcount(trellis), 6);
  EXPECT_EQ(decoder_bit("nuq2") | decoder_bit("nuq3") | decoder_bit("nuq4") | decoder_bit("vq1.5") |
                decoder_bit("vq2") | decoder_bit("vq2.5") | decoder_bit("vq3") | trellis,
            qmoe::dev::kFormedDecoderMask);
  for (const char* name : {"int2:g128", "int3:g64", "int4:g32", "int8:pc", "bf16", "fp16"})
    EXPECT_EQ(decoder_bit(name) & qmoe::dev::kFormedDecoderMask, 0u) << name;
  // Which kernels hold them: the formed instantiations the LUT and vector decoders, those of the
  // decode and tile kernels with trellis = true the trellis ones too; int and dense decoders
  // every kernel.
  for (int id = 0; id < qmoe::dev::kNumDecoders; ++id) {
    const bool is_trellis = ((trellis >> id) & 1u) != 0;
    const bool formed = ((qmoe::dev::kFormedDecoderMask >> id) & 1u) != 0;
    EXPECT_EQ(qmoe::dev::holds_decoder(true, id, true), true) << id;
    EXPECT_EQ(qmoe::dev::holds_decoder(true, id, false), !is_trellis) << id;
    EXPECT_EQ(qmoe::dev::holds_decoder(false, id, true), !formed) << id;
  }
}

TEST(KernelSplit, TrellisBanksTakeTheDecodeKernelUpToAMeanOfThirteenAndTheTileKernelsAbove) {
  // kAuto for a bank with trellis experts, on any device (trellis_split): the decode kernel for
  // every expert up to a mean of 13 tokens per active expert (m / min(E, m)), the tile kernels
  // (tile_launches, below) for every expert above it.
  const uint32_t tcq2 = decoder_bit("tcq2");
  for (bool wgmma : {false, true})
    for (uint32_t mask : {tcq2, tcq2 | kInt4}) {
      for (int64_t m : {1, 64, 832})
        EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, m, 64, mask, wgmma), INT_MAX) << m;
      for (int64_t m : {833, 1024, 4096, 16384})
        EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, m, 64, mask, wgmma), 0) << m;
      // Fewer rows than experts: the mean is over m experts at most.
      EXPECT_EQ(decode_max(KernelChoice::kAuto, 0, 16, 256, mask, wgmma), INT_MAX);
    }
  EXPECT_EQ(decode_max(KernelChoice::kPrefill, 0, 4096, 64, tcq2, true), 0);
  EXPECT_EQ(decode_max(KernelChoice::kAuto, 24, 4096, 64, tcq2, true), 24);
}

TEST(KernelSplit, TrellisExpertsTakeATileLaunchOfTheirOwn) {
  // tile_launches: without the wgmma kernel every expert's tile work is the mma.sync kernel's.
  // With it the others take a wgmma launch and the trellis experts one of their own: the wgmma
  // kernel's trellis launch where the tile launch's mean (m over min(E, m / min_tokens) experts,
  // min_tokens = decode_max + 1) reaches 50 tokens, else the mma.sync kernel. The masks are
  // disjoint and together the bank's.
  const uint32_t tcq = decoder_bit("tcq2") | decoder_bit("tcq3.5");
  const uint32_t trellis = qmoe::dev::kTrellisDecoderMask;
  qmoe::GroupedGemmArgs a;
  a.bank.num_experts = 64;
  auto launches = [&](uint32_t mask, int64_t m, int decode_max, bool wgmma) {
    a.bank.format_mask = mask;
    a.x.rows = m;
    return qmoe::dev::tile_launches(a, qmoe::dev::KernelSplit{decode_max}, wgmma);
  };
  for (uint32_t mask : {tcq, kInt4, decoder_bit("bf16"), kInt4 | decoder_bit("vq2"), tcq | kInt4,
                        tcq | decoder_bit("bf16") | decoder_bit("nuq3")}) {
    const qmoe::dev::TileLaunches off = launches(mask, 64 * 64, 0, false);
    EXPECT_EQ(off.wgmma | off.wgmma_trellis, 0u) << mask;
    EXPECT_EQ(off.mma_sync, mask) << mask;
    for (int64_t m : {64 * 49, 64 * 50}) {
      const qmoe::dev::TileLaunches on = launches(mask, m, 0, true);
      const bool high = m >= 64 * 50;
      EXPECT_EQ(on.wgmma, mask & ~trellis) << mask;
      EXPECT_EQ(on.wgmma_trellis, high ? mask & trellis : 0u) << mask << " " << m;
      EXPECT_EQ(on.mma_sync, high ? 0u : mask & trellis) << mask << " " << m;
      EXPECT_EQ(on.wgmma & on.wgmma_trellis, 0u) << mask;
      EXPECT_EQ((on.wgmma | on.wgmma_trellis) & on.mma_sync, 0u) << mask;
      EXPECT_EQ(on.wgmma | on.wgmma_trellis | on.mma_sync, mask) << mask;
    }
  }
  // The mean is over the experts that can hold decode_max + 1 tokens: m = 2048 rows on 64
  // experts is a mean of 32 above a threshold of 16 (min(64, 2048 / 17) experts), 64 above 63
  // (2048 / 64 = 32 experts), 52 above 50 (2048 / 51 = 40 experts) and 42 above 40 (49).
  EXPECT_EQ(launches(tcq | kInt4, 2048, 16, true).mma_sync, tcq);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 63, true).wgmma_trellis, tcq);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 63, true).wgmma, kInt4);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 50, true).wgmma_trellis, tcq);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 40, true).mma_sync, tcq);
  // TileKernel::kWgmma: the trellis experts take the wgmma kernel's trellis launch at any mean
  // (grouped_gemm refuses it where the device lacks the kernel; kMmaSync is a call without it).
  a.tile_kernel = qmoe::TileKernel::kWgmma;
  EXPECT_EQ(launches(tcq | kInt4, 2048, 16, true).wgmma_trellis, tcq);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 16, true).wgmma, kInt4);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 16, true).mma_sync, 0u);
  EXPECT_EQ(launches(tcq | kInt4, 2048, 16, false).mma_sync, tcq | kInt4);
  a.tile_kernel = qmoe::TileKernel::kAuto;
  // Decoders the bank's mask does not name (a malformed view) go to the first tile launch alone,
  // which runs or traps on them: each id is built into exactly one launch's items.
  for (uint32_t mask : {tcq, kInt4, tcq | kInt4}) {
    for (int64_t m : {64 * 49, 64 * 50}) {
      for (bool wgmma : {false, true}) {
        const qmoe::dev::TileLaunches t = launches(mask, m, 0, wgmma);
        uint32_t items = 0;
        bool first = true;
        for (const uint32_t launch : {t.wgmma, t.wgmma_trellis, t.mma_sync}) {
          if (launch == 0) continue;
          const uint32_t d = qmoe::dev::tile_item_decoders(t, launch, mask);
          EXPECT_EQ(d, first ? launch | ~mask : launch) << mask << " " << m;
          EXPECT_EQ(items & d, 0u) << mask << " " << m;
          items |= d;
          first = false;
        }
        EXPECT_EQ(items, ~0u) << mask << " " << m;
      }
    }
  }
}

TEST(KernelSplit, StripBytesAreATilePlusItsParameterBlock) {
  // What the decode kernel stages per strip and k-tile (decoder_strip_bytes): the 16 x 128 code
  // tile and 48 bytes of scales and zeros per group of the tile (three 16-byte chunks per group:
  // 16 fp16 scales, 16 zero bytes; symmetric formats keep the zeros' room).
  auto strip_bytes = [](const char* name) {
    const uint32_t bit = decoder_bit(name);
    return bit == 0 ? -1 : qmoe::dev::decoder_strip_bytes(__builtin_ctz(bit));
  };
  EXPECT_EQ(strip_bytes("int2:g128"), 512 + 48);
  EXPECT_EQ(strip_bytes("int2:g64:sym"), 512 + 96);
  EXPECT_EQ(strip_bytes("int2:g32"), 512 + 192);
  EXPECT_EQ(strip_bytes("int3:g128"), 768 + 48);
  EXPECT_EQ(strip_bytes("int4:g128"), 1024 + 48);
  EXPECT_EQ(strip_bytes("int4:g32"), 1024 + 192);
  EXPECT_EQ(strip_bytes("int8:g64"), 2048 + 96);
  EXPECT_EQ(strip_bytes("bf16"), 4096);
  // nuq4 stages its strip's 16 tables; the vector formats int2:g128:sym's scale block (their
  // tables are per item or in L1), beside tiles of 64 bytes per code bit.
  EXPECT_EQ(strip_bytes("nuq4"), 1024 + 512);
  EXPECT_EQ(strip_bytes("vq1.5"), 384 + 48);
  EXPECT_EQ(strip_bytes("vq2"), 512 + 48);
  EXPECT_EQ(strip_bytes("vq2.5"), 640 + 48);
  EXPECT_EQ(strip_bytes("vq3"), 768 + 48);
  // A bank's smallest and largest (GemmProblem::min_strip_bytes, max_strip_bytes).
  const uint32_t mask =
      decoder_bit("int2:g128") | decoder_bit("int8:g32") | decoder_bit("int4:g64");
  EXPECT_EQ(qmoe::dev::mask_bytes<qmoe::dev::decoder_strip_bytes>(mask, false), 560);
  EXPECT_EQ(qmoe::dev::mask_bytes<qmoe::dev::decoder_strip_bytes>(mask, true), 2048 + 192);
  EXPECT_EQ(qmoe::dev::max_tile_bytes(mask), 2048);
  EXPECT_EQ(qmoe::dev::mask_bytes<qmoe::dev::decoder_strip_bytes>(0u, true), 0);
}

TEST(KernelSplit, IntegerDecodeForcedOnIntExpertsAutoByFormatsAndSize) {
  using qmoe::IntegerDecode;
  // Forced on: wherever the bank has int experts; off: never.
  EXPECT_TRUE(imma(IntegerDecode::kOn, 1, 8, kInt, 16, 128));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 1, 8, kInt3 | kInt4, 16, 128));
  EXPECT_FALSE(imma(IntegerDecode::kOff, 4096, 8, kInt3, 28672, 4096));
  // kAuto, int3 alone: at any size (one token on the smallest shapes included).
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 1, 8, kInt3, 16, 128));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 4096, 64, kInt3, 28672, 4096));
  // Int banks of several widths with int2 or int3 among them: at any size (8-token items).
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 4096, 8, kInt3 | kInt, 28672, 4096, 8));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 1, 8, kInt3 | kInt4, 16, 128));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 1, 8, kInt | kInt8, 16, 128));
  // ... in launches of 8-token items: 16-token items keep their bf16 decode; int3 alone not.
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 8 * 8, 8, kInt3 | kInt, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 8 * 8 + 1, 8, kInt3 | kInt, 28672, 4096));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 8 * 8 + 1, 8, kInt3 | kInt, 28672, 4096, 8));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 8 * 8 + 1, 8, kInt3 | kInt, 28672, 4096));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 8 * 8 + 1, 8, kInt3, 28672, 4096));
  // ... but not beside a dense expert, nor int4 with int8 alone.
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt3 | kInt | kBF16, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt4 | kInt8, 28672, 4096));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 1, 8, kInt8 | kInt4 | kBF16, 16, 128));
  // int4: forced on only; kAuto keeps its bf16 decode at every size.
  EXPECT_TRUE(imma(IntegerDecode::kOn, 1, 8, kInt4 | kBF16, 16, 128));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt4, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 1, 8, kInt4, 16, 128));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 8, 8, kInt4, 28672, 4096));
  // int4 g32 alone: from 24 MiB of the active experts' codes, in launches of 8-token items.
  // Qwen3's down at T = 4 (32 experts of [2048, 768]: 24 MiB) on; DS-V2-Lite's gate/up at T = 1
  // (6 of [2816, 2048]: 16.5 MiB) off; beside g128 experts off.
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 32, 128, kInt4G32, 2048, 768));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 31, 128, kInt4G32, 2048, 768));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 6, 64, kInt4G32, 2816, 2048));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 2, 8, kInt4G32, 4096, 14336));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 2, 8, kInt4G32 | kInt4, 4096, 14336));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt4G32, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kOff, 2, 8, kInt4G32, 4096, 14336));
  EXPECT_FALSE(imma(IntegerDecode::kOn, 1, 8, kBF16, 16, 128));
  EXPECT_FALSE(imma(IntegerDecode::kOff, 4096, 8, kInt, 28672, 4096));
  // kAuto, int2: Mixtral's gate/up and down at one token per expert (2 active experts: 56 and
  // 28 MiB of int2 codes) against the 32 MiB bound; with 8 active experts the down too.
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 2, 8, kInt, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 2, 8, kInt, 4096, 14336));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 8, 8, kInt, 4096, 14336));
  // ... in launches of 8-token items only: 16-token items keep int2's bf16 decode.
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 64, 8, kInt, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 65, 8, kInt, 28672, 4096));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 65, 8, kInt, 28672, 4096, 8));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 65, 8, kInt, 28672, 4096));
  // Active experts are min(E, m): more rows than experts add nothing.
  EXPECT_EQ(imma(IntegerDecode::kAuto, 64, 8, kInt, 4096, 4096),
            imma(IntegerDecode::kAuto, 8, 8, kInt, 4096, 4096));
  // int8 alone: where the launch has 16-token items (a mean above 8 tokens per active expert,
  // counted at most decode_max), from 40 MiB of the active experts' codes, or forced; beside int2
  // at any size. OLMoE at T = 1 (8 experts of [2048, 2048]: 32 MiB) and DS-V2-Lite's gate/up
  // (6 of [2816, 2048]: 33 MiB) below; Qwen3's down at T = 4 (32 of [2048, 768]: 48 MiB) above.
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 8, 64, kInt8, 2048, 2048));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 6, 64, kInt8, 2816, 2048));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 32, 128, kInt8, 2048, 768));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 10, 64, kInt8, 2048, 2048));  // exactly 40 MiB
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 9, 64, kInt8, 2048, 2048));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 9 * 8 + 1, 8, kInt8, 256, 256));  // 16-token items
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 9 * 8 + 1, 8, kInt8, 256, 256, 8));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 8, 64, kInt8, 2048, 2048));
  EXPECT_FALSE(imma(IntegerDecode::kOff, 4096, 64, kInt8, 28672, 4096));
  EXPECT_TRUE(imma(IntegerDecode::kAuto, 1, 64, kInt | kInt8, 16, 128));
  EXPECT_TRUE(imma(IntegerDecode::kOn, 1, 64, kInt | kInt8, 16, 128));
  // kAuto never with dense experts in the bank, whatever the size.
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt | kInt4 | kBF16, 28672, 4096));
  EXPECT_FALSE(imma(IntegerDecode::kAuto, 4096, 8, kInt8 | kBF16, 28672, 4096));
}

}  // namespace
