// cuda/kernels/grouped_gemv.cuh — the weight-streaming grouped kernel ("decode": a few tokens
// per expert). Bound by the bytes of the active experts' packed weights, so everything here
// serves two goals: many weight bytes in flight per SM, and few instructions per weight
// (ncu on the first version: 0.54 issued instructions per cycle per scheduler for 17% of
// HBM bandwidth, i.e. ~1000 instructions per 1 KB int4 tile, mostly x loads and decode).
//
// Work item = (expert with tokens in [min_tokens, max_tokens], group of 16-row strips, block of up
// to 8 or 16 tokens = one or two mma n8 chunks, by launch); the persistent grid walks the
// device-built schedule. An expert with more tokens gets one item per token block; token blocks
// vary fastest, so its weights are re-read from L2, not HBM. A block runs item blockIdx.x, then
// whichever item is next when it is free (work_queue.cuh). Block = 8 warps. Each warp owns R
// strips (R = 4 for 2/3/4-bit, 8 for banks of int2 g128/g64, vq1.5 and vq2 alone, 2 for int8, 1 for
// dense, lowered per launch; one ring stage is R tiles) and streams a contiguous run of the
// k-tiles, K split between the warps of its strip group (1, 2, 4 or 8, chosen per launch with R:
// choose_variant), so small experts still keep all 8 warps streaming. A last round that would leave
// over half the blocks idle runs as half items (half_items: twice the warps per strip group on half
// the strips). The B fragments (x) of a k-tile are loaded once and reused by the R strips. Per
// warp: a 9.5 KB ring of two stages in shared memory (R code tiles and their scale/zero blocks),
// each filled one stage ahead: on sm_90+ tiles of >= 1 KB by bulk copies from lane 0 on an mbarrier
// per slot, else each lane cp.async-copies exactly the code chunks it later reads back; the few
// lanes copying a stage's parameter blocks (cp.async) share them through one __syncwarp per k-tile.
// Weights are the mma A operand (16 rows, from the codes in registers), tokens the n8 side: dense
// weights as they are, int codes as B + q ("affine decode", int.cuh; int8 with bf16 as two
// digits) with their scales and zeros applied to the fp32 sums of each group, trellis codes as
// their values v + 1534 in fp16 against x rotated per 128-input block (trellis.cuh, x_rotate.cuh:
// the only kernel that runs them, at any token count); or, in launches that
// take the integer decode (int formats: IntDecoder::imma_a, x_digits.cuh), the codes as u8 on
// mma.m16n8k32 against x's two 8-bit digits, each group's sums exact in int32. The warps' fp32
// partial sums meet in shared memory (each warp's own ring, free once its copies have drained) in a
// fixed order (deterministic); each output is rounded once, or with the gated-SiLU epilogue each
// gate and up pair of sums becomes one activated output there (gated_silu.cuh).
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/gated_silu.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"
#include "cuda/kernels/x_digits.cuh"
#include "cuda/kernels/x_rotate.cuh"

namespace qmoe::dev {
namespace gemv {

/// Shared-memory ring per warp: two stages of code tiles and their parameter blocks. 9.5 KB: two
/// stages of 4 int4:g32 tiles with their blocks (4 x (1024 + 192) B); the strips per warp follow
/// from the tiles alone (ring_strips), as in the 8 KB ring of the codes-only stages before.
constexpr int kRingBytes = 9728;
/// Stages of a ring, whatever fits: one is multiplied while the next lands. Smaller stages used
/// to fill the ring (int2 at R = 4 four stages, R = 1 up to nine), and every form of more bytes
/// in flight per warp measured slower (A/B, bench/results/s14-2026-12-02/ab-call7: capping all
/// at two took int2:g128 to 0.88-0.95x and the one-token rows of DS-V2-Lite and OLMoE to
/// 0.78-0.88x; Mixtral int3 at T >= 2 1.02-1.04x; again with bulk copies,
/// bench/results/s21-2026-12-03/ab-stages).
constexpr int kRingStages = 2;

/// Strips per warp whose code tiles and parameter blocks (strip_bytes per strip and k-tile:
/// decoder_strip_bytes) fit the ring's stages: 8, 4, 2 or 1. Eight only for int2 at g128 and
/// g64 and for vq1.5 and vq2 (560, 608, 432 and 560 bytes), whose tiles of 512 bytes or less at
/// four strips stage half of int4's bytes per k-tile for the same x loads and loop overhead.
__host__ __device__ constexpr int ring_strips(int strip_bytes) {
  return kRingBytes / (kRingStages * strip_bytes) >= 8   ? 8
         : kRingBytes / (kRingStages * strip_bytes) >= 4 ? 4
         : kRingBytes / (kRingStages * strip_bytes) >= 2 ? 2
                                                         : 1;
}

/// Strips per warp of a decoder with strip_bytes per strip and k-tile: ring_strips, at most
/// strip_cap (8, 4, 2 or 1: the launch lowers the cap when the problem has too few strips to
/// give every block an item, e.g. a down projection at one token per expert).
__host__ __device__ constexpr int strips_per_warp(int strip_bytes, int strip_cap) {
  return ring_strips(strip_bytes) < strip_cap ? ring_strips(strip_bytes) : strip_cap;
}

/// K-tiles each warp streams per item, at least, unless choose_variant finds a shorter run
/// cheaper: an item pays one pipeline fill (a DRAM latency) and one cross-warp reduction, so a
/// warp must stream long enough to hide them (ncu, Mixtral w13 at 4 k-tiles per warp: 53% of
/// issue slots idle, no warp eligible).
constexpr int kMinTilesPerWarp = 8;

/// Warps sharing one strip group by the rule above: the most (power of two, <= 8) that still
/// gives each >= kMinTilesPerWarp k-tiles; the block's other warps take other strips.
inline int min_tile_warps(int k_tiles) {
  int warps = kBlockWarps;
  while (warps > 1 && k_tiles < kMinTilesPerWarp * warps) warps >>= 1;
  return warps;
}

/// Per warp, after the rings: one 8-byte mbarrier per ring stage, on which the stage's code
/// copies complete (sm_90+: bulk copies, run_item).
constexpr int kBarrierBytes = 8 * kRingStages;

/// Alignment of the rings' start in the block's shared memory. Measured on the H100
/// (bench/results/s58-2026-12-07): rings 16, 48 or 112 bytes off a 64-byte boundary ran every
/// decode row ~1.05x the time (the stages' 1 KB code tiles and their bulk copies off it too).
/// Where they start followed from the kernel's static shared memory and the schedule's bytes
/// (E); now the dynamic part starts on a kRingAlign boundary and the rings at ring_offset(E).
/// On the H100 (bench/results/s60-2026-12-07): banks of 2 and 6 Mixtral-sized experts, whose
/// rings that placement put 16 / 48 bytes off 64, ran 0.92-0.97x the time at T = 1 and 4 (E = 6
/// at 16 too) with 128-byte rings rounded at run time (206cb8c), and this form 0.997x of that;
/// the five model shapes' rows (their rings were on 64 bytes already) median 1.001x of before. On
/// an A100 the padding costs banks of about 88-93 experts their second block per SM
/// (docs/results.md, "Session 60").
constexpr int kRingAlign = 128;

/// Offset of the rings in the dynamic shared memory: the schedule's bytes rounded up to
/// kRingAlign. The kernel declares its dynamic shared memory __align__(kRingAlign), so the
/// toolchain starts it on such an address (after the static part, padded: in the sm_90a cubin
/// 0x400 + round_up(3376 static bytes, 128)), and the rings' address follows from E alone, as
/// cheap as the schedule's own offset. Rounding the shared address at run time instead (206cb8c)
/// cost the int4 variant 9 more spill instructions (19 local loads/stores) and int4 rows 0.5-1 %.
constexpr size_t ring_offset(int num_experts) {
  return (schedule_smem_bytes(num_experts) + kRingAlign - 1) / kRingAlign * kRingAlign;
}

/// Dynamic shared memory: the schedule, padding to the rings' alignment, the rings, their
/// mbarriers, the experts' decoder ids.
constexpr size_t smem_bytes(int num_experts) {
  return ring_offset(num_experts) +
         static_cast<size_t>(kBlockWarps) * (kRingBytes + kBarrierBytes) +
         decoder_ids_smem_bytes(num_experts);
}

/// The tokens of one work item.
struct Tokens {
  const unsigned short* x;  ///< x row of the item's first token, [count, k]
  int count;                ///< 1 .. kChunkTokens * kChunks
  int k;                    ///< row stride and bound of x
  const uint8_t* digits;    ///< x_digits records of the item's first token (or null)
  const xdig::TileInfo* info;
  int k_tiles;  ///< records per token
};

/// The integer decode's B fragments of chunk c at k-tile kt (x_digits.cuh): bd[d][2 i + h] =
/// digit d (0 lo, 1 hi) of IMMA i, half h, for token 8c + gid (token 0's beyond the item's
/// tokens, as load_b). Two 16-byte loads per digit: the lane's 32 bytes are contiguous.
__device__ __forceinline__ void load_digits(const Tokens& t, int kt, int lane, int c, int map,
                                            uint32_t (&bd)[2][8]) {
  const int tok = kChunkTokens * c + (lane >> 2);
  const uint8_t* rec = t.digits +
                       ((tok < t.count ? tok : 0) * t.k_tiles + kt) * xdig::kRecordBytes +
                       map * 2 * xdig::kDigitBytes + (lane & 3) * 32;
#pragma unroll
  for (int d = 0; d < 2; ++d)
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(rec + d * xdig::kDigitBytes + 16 * q));
      bd[d][4 * q + 0] = v.x;
      bd[d][4 * q + 1] = v.y;
      bd[d][4 * q + 2] = v.z;
      bd[d][4 * q + 3] = v.w;
    }
}

/// The lane's token columns 2 (lane % 4) + e of chunk c at k-tile kt: sums of x_int over each of
/// the tile's kGroups groups, and the x scale.
template <int kGroups>
__device__ __forceinline__ void load_x_info(const Tokens& t, int kt, int lane, int c,
                                            int (&xsum)[kGroups][2], float (&sx)[2]) {
#pragma unroll
  for (int e = 0; e < 2; ++e) {
    const int tok = kChunkTokens * c + 2 * (lane & 3) + e;
    const xdig::TileInfo* info = t.info + (tok < t.count ? tok : 0) * t.k_tiles + kt;
    const int4 v = __ldg(reinterpret_cast<const int4*>(info->xsum));
    sx[e] = __ldg(&info->scale);
    const int b[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int g = 0; g < kGroups; ++g) {
      int sum = 0;
#pragma unroll
      for (int j = g * (4 / kGroups); j < (g + 1) * (4 / kGroups); ++j) sum += b[j];
      xsum[g][e] = sum;
    }
  }
}

/// B fragments (k16 x n8, "col") of chunk c for the 8 sub-tiles of k-tile kt: lane holds
/// token 8c + gid at k = 2*tig, 2*tig+1 (b[j][0]) and 2*tig+8, 2*tig+9 (b[j][1]). Lanes
/// beyond the item's tokens read token 0's row and keep it: B column n only feeds output
/// column n, which is never stored for those tokens. Past K the values must be 0 (padded
/// weights decode to 0, but x there may hold NaN, and 0 * NaN would poison real columns).
__device__ __forceinline__ void load_b(const Tokens& t, int kt, int lane, int c,
                                       uint32_t (&b)[kSubtiles][2]) {
  const int tok = kChunkTokens * c + (lane >> 2);
  const unsigned short* row = t.x + static_cast<int64_t>(tok < t.count ? tok : 0) * t.k;
  const int k0 = kt * kTileCols + 2 * (lane & 3);
  if ((t.k & 1) == 0 && (kt + 1) * kTileCols <= t.k) {
    // Whole tile inside K, rows 4-byte aligned (even K): 32-bit loads, no masking, all 16 at
    // immediate offsets of one address (ptxas otherwise built three 64-bit bases and rebuilt
    // them per k-tile: ~22 instructions for the 16 loads, sm_90a SASS; A/B: the same time).
    const auto* words = reinterpret_cast<const unsigned int*>(row + k0);
#pragma unroll
    for (int j = 0; j < kSubtiles; ++j) {
      b[j][0] = __ldg(words + 8 * j);
      b[j][1] = __ldg(words + 8 * j + 4);
    }
    return;
  }
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int k = k0 + 16 * j + 8 * h;
      const uint32_t lo = k < t.k ? static_cast<uint32_t>(__ldg(row + k)) : 0u;
      const uint32_t hi = k + 1 < t.k ? static_cast<uint32_t>(__ldg(row + k + 1)) : 0u;
      b[j][h] = lo | (hi << 16);
    }
}

/// items % grid (grid > 0), in 32 bits where items fits them.
__host__ __device__ constexpr long long last_round(long long items, long long grid) {
  return items <= INT_MAX ? static_cast<int>(items) % static_cast<int>(grid) : items % grid;
}

/// Items of a launch's last round to run as half items: twice the warps per strip group on half
/// its strips (group_shift + 1), so that the round takes about half a whole item's time.
/// Only where every half still gets a block of its own (at most grid / 2 items in the last
/// round) and a strip group has warps to double (group_shift < 3); otherwise 0. A/B on the
/// H200 (bench/results/s13-2026-12-02): DS-V2-Lite, OLMoE and Qwen3 at T = 8 and 16 tokens
/// 0.93-0.98x the time (median per shape and T), elsewhere 0.98-1.01x; splitting every partial
/// round instead cost up to 1.22x where blocks then ran two halves (a whole item's fixed part
/// twice), and gained nothing on Mixtral's gate/up at one token (448 items on 264 blocks: a
/// block that ends early does not speed up its SM's other block).
__host__ __device__ constexpr long long half_items(long long items, long long grid,
                                                   int group_shift) {
  // A 64-bit remainder is a ~70-instruction call on the device, at the start of every block;
  // item counts fit 32 bits but for absurd problems.
  return group_shift < 3 && 2 * last_round(items, grid) <= grid ? last_round(items, grid) : 0;
}

/// One work item: R * (8 >> group_shift) strips from strip0 of one expert, t.count tokens in
/// C chunks; 1 << group_shift warps share a strip group's k-tiles. Whole block (ends with
/// __syncthreads). Powers of two throughout: shifts, not the ~20-instruction integer
/// divisions, in this once-per-item code (which a warp runs in series with its k-tiles: at one
/// item per block it is ~30 % of a small launch's time).
template <class Act, class Dec, int R, int C, bool kImmaLaunch>
__device__ void run_item(const GemmProblem& p, const ExpertParams& ep, int strip0, int group_shift,
                         const Tokens& t, unsigned short* y_rows, uint8_t* rings, uint32_t bars,
                         uint32_t& bar_phases, const NextItem& next, bool wait_first) {
  // A stage: R code tiles, then their R parameter blocks (none for dense tiles).
  constexpr int kQuantBytes = Dec::kQuantBytes;
  constexpr int kStageBytes = R * (Dec::kTileBytes + kQuantBytes);
  static_assert(kRingStages * kStageBytes <= kRingBytes, "the stages fit the ring");
  static_assert(R * C * 4 * kWarpSize * sizeof(float) <= kRingBytes,
                "the partial sums fit the ring (the reduction below)");
  // Code tiles of 1 KB and more (int4, int8, dense) by bulk copy on sm_90+: lane 0 issues one
  // copy per tile, completing on the slot's mbarrier (bars + 8 slot; bar_phases bit slot = the
  // parity of its next phase, kept across items). Diagnostic builds on the H200
  // (bench/results/s20-2026-12-03): the kernel with its multiplications removed streamed int4
  // at 63 % of the read floor with cp.async (Mixtral T = 1) and 70 % with bulk copies; neither
  // three stages, stage-contiguous tiles, L2 prefetches nor longer runs moved it. With the
  // multiplications: int4 and int8 0.94-0.99x the time, but int2 and int3 (512 and 768-byte
  // tiles: four elected copies per stage for half the bytes) 1.02-1.09x, so they keep the
  // lanes' cp.async, as do the parameter blocks (small, scattered) and sm_80.
  constexpr bool kBulk = kAsyncProxy && Dec::kTileBytes >= 1024;
  constexpr int kAhead = kRingStages - 1;  // stages in flight while one is multiplied
  // Integer-mma decode where the launch takes it (its launcher filled x's digits) and the
  // decoder has it.
  constexpr bool kImma = kImmaLaunch && Dec::kImmaMap >= 0;
  // The type of the mma and the decoded A registers: Act, or fp16 for the trellis decoders
  // (whose tokens t are the rotated x, x_rotate.cuh). The outputs are Act either way.
  using MAct = MmaAct<Act, Dec>;
  constexpr int kParts = kImma ? 0 : Dec::template kAffineParts<MAct>;
  constexpr bool kAffine = kParts > 0;
  constexpr int kGroups = Dec::kGroupsPerTile;
  constexpr int kSubtilesPerGroup = kSubtiles / kGroups;
  const uint32_t kOnes[4] = {ActTraits<MAct>::kOnes2, ActTraits<MAct>::kOnes2,
                             ActTraits<MAct>::kOnes2, ActTraits<MAct>::kOnes2};
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  constexpr int kStripShift = R == 8 ? 3 : R == 4 ? 2 : R == 2 ? 1 : 0;
  const int group_warps = 1 << group_shift;
  const int first_strip = strip0 + ((warp >> group_shift) << kStripShift);
  // This warp's k-tiles: a contiguous run of the strip group's. A/B on the H100 against
  // dealing them round-robin to the group's warps: g128 rows 1-3 % faster (with the decode
  // disabled too, so it is the memory side), DeepSeek-V3 int4:g32 6-7 % slower (not
  // understood; Mixtral int4:g32 5 % faster).
  const int run = (p.k_tiles + group_warps - 1) >> group_shift;
  const int first_kt = (warp & (group_warps - 1)) * run;
  const int tiles =
      first_strip < p.n_strips && first_kt < p.k_tiles ? min(run, p.k_tiles - first_kt) : 0;
  uint8_t* ring = rings + warp * kRingBytes;
  auto tile_of = [&](int i) { return first_kt + i; };
  // Strips past N (only in an expert's last item) copy the tiles and load the scales of the
  // item's last strip again instead of predicating every copy and load; with the unpredicated
  // scale loads below, A/B on the H200: int2/3/4 0.89-1.00x the time
  // (bench/results/ab-2026-12-01/refill). They are multiplied too (their rows are never
  // stored): with no branch per strip the k-tile is one basic block, and ptxas interleaves the
  // strips' shared-memory reads, decode chains and mma chains (A/B: 0.93-1.00x for the int
  // formats, bench/results/s9-2026-12-02).
  const int valid_strips = max(min(R, p.n_strips - first_strip), 1);
  auto strip_of = [&](int r) { return first_strip + min(r, valid_strips - 1); };
  // Tile (strip_of(r), t) lies at codes0 + min(r, valid_strips - 1) * strip_bytes +
  // t * kTileBytes: one 64-bit base per item and 32-bit offsets per copy (K <= 2^24, checked by
  // check_bank, keeps them below 2^31; the 64-bit index per copy was ~10 SASS instructions per
  // tile).
  const uint8_t* codes0 =
      ep.codes + static_cast<int64_t>(first_strip) * p.k_tiles * Dec::kTileBytes;
  const int strip_bytes = p.k_tiles * Dec::kTileBytes;
  // The stage's R parameter blocks are R * kQuantChunks 16-byte chunks, side by side: chunk q
  // is copied by lane q % 32 in pass q / 32, from a source fixed per item (one copy per lane
  // and pass per stage, no per-strip address arithmetic in the loop).
  constexpr int kQuantPasses = (R * Dec::kQuantChunks + kWarpSize - 1) / kWarpSize;
  QuantChunk quant_src[kQuantPasses > 0 ? kQuantPasses : 1];
  if constexpr (kQuantPasses > 0) {
#pragma unroll
    for (int pass = 0; pass < kQuantPasses; ++pass) {
      const int q = lane + kWarpSize * pass;
      quant_src[pass] =
          q < R * Dec::kQuantChunks
              ? Dec::quant_chunk(ep, strip_of(q / Dec::kQuantChunks), q % Dec::kQuantChunks)
              : QuantChunk{nullptr, 0};
    }
  }
  auto copy_stage = [&](int i, int slot) {
    const uint8_t* tile = codes0 + tile_of(i) * Dec::kTileBytes;
    uint8_t* stage = ring + slot * kStageBytes;
    if constexpr (kBulk) {
      if (lane == 0) {
        mbarrier_arrive_expect_tx(bars + 8 * slot, R * Dec::kTileBytes);
#pragma unroll
        for (int r = 0; r < R; ++r)
          bulk_copy_g2s(smem_addr(stage + r * Dec::kTileBytes),
                        tile + min(r, valid_strips - 1) * strip_bytes, Dec::kTileBytes,
                        bars + 8 * slot);
      }
    } else {
#pragma unroll
      for (int r = 0; r < R; ++r)
        Dec::copy_codes(tile + min(r, valid_strips - 1) * strip_bytes, stage + r * Dec::kTileBytes,
                        lane);
    }
#pragma unroll
    for (int pass = 0; pass < kQuantPasses; ++pass)
      if (quant_src[pass].src != nullptr)
        cp_async_16(smem_addr(stage + R * Dec::kTileBytes + 16 * (lane + kWarpSize * pass)),
                    quant_src[pass].src + tile_of(i) * quant_src[pass].kt_stride);
  };

  float acc[R][C][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < C; ++c)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[r][c][i] = 0.f;

#pragma unroll
  // One cp.async group per stage (empty past the last), so "stage i landed" is always
  // "at most kAhead - 1 newer groups pending".
  for (int i = 0; i < kAhead; ++i) {
    if (i < tiles) copy_stage(i, i);
    cp_async_commit();
  }
  // Per-item constants of the strips (vq1.5's and vq2's table entry), loaded while the first
  // stages land. An idle warp's strips may lie past N: it takes the last strip's.
  ItemQuantOf<MAct, Dec> item[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
    item[r] = Dec::template prepare_item<MAct>(ep, min(strip_of(r), p.n_strips - 1), lane);
  // A launch with an early schedule (GemmProblem::early_schedule) waits for the previous kernel
  // here, in its blocks' first items: the first weights are in flight, x is not read yet.
  if (wait_first) wait_for_previous_kernel();
  // Strip r's code words and parameter words of stage i (in slot i % kRingStages).
  auto read_strip = [&](int i, int r, uint32_t(&raw)[Dec::kRawWords], typename Dec::RawQuant& rq) {
    const uint8_t* stage = ring + (i % kRingStages) * kStageBytes;
    Dec::read_codes(stage + r * Dec::kTileBytes, lane, raw);
    Dec::read_quant(ep, stage + R * Dec::kTileBytes + r * kQuantBytes, lane, rq);
  };
  // Waits for stage i and refills the slot of stage i - 1.
  auto advance = [&](int i) {
    cp_async_wait<kAhead - 1>();
    if constexpr (kBulk) {
      const int slot = i % kRingStages;
      mbarrier_wait(bars + 8 * slot, (bar_phases >> slot) & 1u);
      bar_phases ^= 1u << slot;
    }
    // Parameter blocks (and bulk-copied tiles) are written by other lanes than those that read
    // them: the sync makes stage i's cp.async copies visible to the whole warp, and orders every
    // lane's reads of stage i - 1 before the refill below overwrites them. cp.async code tiles
    // need neither (lane-private).
    if constexpr (kQuantBytes > 0 || kBulk) __syncwarp();
    if (i + kAhead < tiles) copy_stage(i + kAhead, (i + kAhead) % kRingStages);
    cp_async_commit();
  };
  for (int i = 0; i < tiles; ++i) {
    if constexpr (kImma) {
      // x digits first, as x in the other path below.
      uint32_t bd[C][2][8];
      int xsum[C][kGroups][2];
      float sx[C][2];
#pragma unroll
      for (int c = 0; c < C; ++c) {
        load_digits(t, tile_of(i), lane, c, Dec::kImmaMap, bd[c]);
        load_x_info<kGroups>(t, tile_of(i), lane, c, xsum[c], sx[c]);
      }
      advance(i);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        uint32_t raw[Dec::kRawWords];
        typename Dec::RawQuant rq{};
        read_strip(i, r, raw, rq);
        const auto q = Dec::template prepare_imma<Act>(ep, rq);
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          // Per group: P = sum q x_int = 256 (sum q hi) + sum q lo, exact in int32; then
          // acc += s s_x (P - z sum x_int). C-fragment register e: row gid + 8 (e / 2), token
          // column 2 (lane % 4) + e % 2.
          int lo[C][4] = {}, hi[C][4] = {};
#pragma unroll
          for (int m = g * Dec::kImmaPerGroup; m < (g + 1) * Dec::kImmaPerGroup; ++m) {
            uint32_t a[4];
            Dec::imma_a(raw, m, a);
#pragma unroll
            for (int c = 0; c < C; ++c) {
              imma<false>(lo[c], a, bd[c][0][2 * m], bd[c][0][2 * m + 1]);
              imma<true>(hi[c], a, bd[c][1][2 * m], bd[c][1][2 * m + 1]);
            }
          }
#pragma unroll
          for (int c = 0; c < C; ++c)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int sum = hi[c][e] * 256 + lo[c][e] - q.zero[g][e >> 1] * xsum[c][g][e & 1];
              acc[r][c][e] =
                  fmaf(static_cast<float>(sum), q.scale[g][e >> 1] * sx[c][e & 1], acc[r][c][e]);
            }
        }
      }
    } else {
      // x first: its loads then wait in the memory pipeline behind none of this k-tile's code
      // copies, and their latency overlaps the stage wait and the refill.
      uint32_t b[C][kSubtiles][2];
#pragma unroll
      for (int c = 0; c < C; ++c) load_b(t, tile_of(i), lane, c, b[c]);
      advance(i);
      // Affine decode. x_sum(g, c, e): the sum of x over group g of the k-tile for token column
      // 2 * (lane % 4) + e of chunk c (the C-fragment columns), by an mma of a ones matrix per
      // sub-tile, shared by the R strips.
      if constexpr (kAffine) {
        auto x_sums = [&](int g, float(&x_sum)[C][2]) {
#pragma unroll
          for (int c = 0; c < C; ++c) {
            float sum[4] = {};
#pragma unroll
            for (int j = g * kSubtilesPerGroup; j < (g + 1) * kSubtilesPerGroup; ++j)
              ActTraits<MAct>::mma(sum, kOnes, b[c][j][0], b[c][j][1]);
            x_sum[c][0] = sum[0];  // rows gid + 8 (sum[2], sum[3]) hold the same sums
            x_sum[c][1] = sum[1];
          }
        };
        // Group g of strip r: part[d] = sum of (B + digit d) x over its sub-tiles (exact
        // products, fp32 sums of at most 128 terms), then acc += s * (sum_d w_d part[d] -
        // (B W + z) * x_sum). C-fragment register e is row gid + 8 * (e / 2), token column
        // 2 * (lane % 4) + e % 2.
        auto strip_group = [&](int r, int g, const uint32_t(&raw)[Dec::kRawWords],
                               const typename Dec::RawQuant& rq, const float(&x_sum)[C][2]) {
          const auto q = Dec::template prepare_affine<MAct>(ep, rq);  // group g's entries only
          float part[kParts][C][4] = {};
#pragma unroll
          for (int j = g * kSubtilesPerGroup; j < (g + 1) * kSubtilesPerGroup; ++j)
#pragma unroll
            for (int d = 0; d < kParts; ++d) {
              uint32_t a[4];
              Dec::template biased_subtile<MAct>(raw, j, d, a);
#pragma unroll
              for (int c = 0; c < C; ++c)
                ActTraits<MAct>::mma(part[d][c], a, b[c][j][0], b[c][j][1]);
            }
#pragma unroll
          for (int c = 0; c < C; ++c)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              float sum = part[0][c][e];
#pragma unroll
              for (int d = 1; d < kParts; ++d) sum = fmaf(Dec::part_weight(d), part[d][c][e], sum);
              acc[r][c][e] =
                  fmaf(q.scale[g][e >> 1], fmaf(-q.zero_bias[g][e >> 1], x_sum[c][e & 1], sum),
                       acc[r][c][e]);
            }
        };
        if constexpr (C == 1) {
          // One chunk: the x sums of every group first, then strip by strip (one strip's codes
          // live at a time).
          float x_sum[kGroups][C][2];
#pragma unroll
          for (int g = 0; g < kGroups; ++g) x_sums(g, x_sum[g]);
#pragma unroll
          for (int r = 0; r < R; ++r) {
            uint32_t raw[Dec::kRawWords];
            typename Dec::RawQuant rq{};
            read_strip(i, r, raw, rq);
#pragma unroll
            for (int g = 0; g < kGroups; ++g) strip_group(r, g, raw, rq, x_sum[g]);
          }
        } else {
          // Two chunks: group by group, so that one group's x sums are live at a time, not
          // every group's (ptxas spilled 772 / 1552 bytes at R = 2 with all of them live).
          uint32_t raw[R][Dec::kRawWords];
          typename Dec::RawQuant rq[R];
#pragma unroll
          for (int r = 0; r < R; ++r) {
            rq[r] = {};
            read_strip(i, r, raw[r], rq[r]);
          }
#pragma unroll
          for (int g = 0; g < kGroups; ++g) {
            float x_sum[C][2];
            x_sums(g, x_sum);
#pragma unroll
            for (int r = 0; r < R; ++r) strip_group(r, g, raw[r], rq[r], x_sum);
          }
        }
      } else {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          uint32_t raw[Dec::kRawWords];
          typename Dec::RawQuant rq{};
          read_strip(i, r, raw, rq);
          // Formed weights: dense, LUT and vector tiles (every int format takes the affine or
          // the integer path).
          const auto q = Dec::template prepare<MAct>(ep, rq, item[r]);
#pragma unroll
          for (int j = 0; j < kSubtiles; ++j) {
            uint32_t a[4];
            Dec::template decode_subtile<MAct>(raw, j, q, a);
#pragma unroll
            for (int c = 0; c < C; ++c) ActTraits<MAct>::mma(acc[r][c], a, b[c][j][0], b[c][j][1]);
          }
        }
      }
    }
  }

  // Partial sums through this warp's own ring: red[r][c][i][lane] (zeros for idle warps).
  // The ring is no longer lane-private here: a lane's red words overlap bytes other lanes
  // copied and read, so every lane's copies must have landed and its reads be done first.
  const NextItem::Draw drawn = next.draw();  // used after the reduction (work_queue.cuh)
  cp_async_wait<0>();
  __syncwarp();
  float* red = reinterpret_cast<float*>(ring);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < C; ++c)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[((r * C + c) * 4 + i) * kWarpSize + lane] = acc[r][c][i];
  __syncthreads();

  // Outputs: token tok, strip gs of the item (strip group gs / R, strip gs % R of it), row rr;
  // consecutive threads take consecutive output rows n (strips of an item are adjacent). With
  // the gated-SiLU epilogue (gated_silu.cuh) a thread takes rows rr and rr + 8 of the strip, the
  // gate and up sums of output column 8 strip + rr, and y has n / 2 columns.
  const bool gated = p.epilogue != 0;
  const int row_shift = gated ? 3 : 4;
  const int64_t y_cols = gated ? p.n / 2 : p.n;
  const int strips_shift = 3 - group_shift + kStripShift;  // log2 of the item's strips
  for (int idx = static_cast<int>(threadIdx.x); idx < t.count << (strips_shift + row_shift);
       idx += kBlockThreads) {
    const int rr = idx & ((1 << row_shift) - 1);
    const int gs = (idx >> row_shift) & ((1 << strips_shift) - 1);
    const int tok = idx >> (strips_shift + row_shift);
    const int n = (strip0 + gs) * kTileRows + rr;
    if (n >= p.n) continue;
    const int g = gs / R, r = gs % R;
    // C fragment of chunk tok / 8: row rr, column t8 = tok % 8 -> lane 4*(rr%8) + t8/2,
    // register (t8%2) + 2*(rr/8); row rr + 8 is two registers on.
    const int c = tok >> 3, t8 = tok & 7;
    const int src =
        ((r * C + c) * 4 + (t8 & 1) + 2 * (rr >> 3)) * kWarpSize + 4 * (rr & 7) + (t8 >> 1);
    auto partial_sum = [&](int at) {
      float sum = 0.f;
      for (int w = g * group_warps; w < (g + 1) * group_warps; ++w)
        sum += reinterpret_cast<const float*>(rings + w * kRingBytes)[at];
      return sum;
    };
    const float sum = partial_sum(src);
    if (gated)
      y_rows[tok * y_cols + (strip0 + gs) * (kTileRows / 2) + rr] =
          ActTraits<Act>::to_bits_rn(silu_mul(sum, partial_sum(src + 2 * kWarpSize)));
    else
      y_rows[tok * y_cols + n] = ActTraits<Act>::to_bits_rn(sum);
  }
  // This item's copies and partial sums went through the generic proxy; the next item's bulk
  // copies (whatever this item's decoder) write the rings through the async proxy.
  if constexpr (kAsyncProxy) fence_proxy_async();
  next.publish(drawn);
  __syncthreads();
}

template <class Act, int kStripCap, int kChunks, bool kImma, bool kFormed>
__global__ void __launch_bounds__(kBlockThreads, 2) grouped_gemv_kernel(const GemmProblem p) {
  constexpr int kTokens = kChunkTokens * kChunks;
  extern __shared__ __align__(kRingAlign) unsigned char smem[];
  // Shared memory: the schedule, the warps' rings (ring_offset), their mbarriers, the experts'
  // decoder ids (after the rings, so that ring_offset counts the schedule alone).
  uint8_t* rings = smem + ring_offset(p.num_experts);
  auto* decoder_ids = reinterpret_cast<int8_t*>(rings + kBlockWarps * (kRingBytes + kBarrierBytes));
  const int group_shift = __ffs(p.group_warps) - 1;  // group_warps: 1, 2, 4 or 8
  const int groups_per_item = kBlockWarps >> group_shift;
  const auto* x = static_cast<const unsigned short*>(p.x);
  auto* y = static_cast<unsigned short*>(p.y);
  // The warp's ring mbarriers (run_item), initialised once: their phases continue across items.
  const uint32_t bars = smem_addr(rings + kBlockWarps * kRingBytes +
                                  (static_cast<int>(threadIdx.x) >> 5) * kBarrierBytes);
  uint32_t bar_phases = 0;
  if constexpr (kAsyncProxy) {
    if ((threadIdx.x & 31) == 0) {
      for (int slot = 0; slot < kRingStages; ++slot) mbarrier_init(bars + 8 * slot, 1);
      mbarrier_init_fence();
    }
    __syncwarp();
  }
  // An expert's items follow from its tile size alone: no decoder dispatch per expert here.
  // With an early schedule (offsets and bank final before the previous kernel) the block waits
  // for that kernel only in its first item, once the item's first weight copies are issued:
  // schedule and fill then overlap the previous kernel's tail (PDL, sm_90+).
  bool wait_pending = p.early_schedule != 0;
  const ItemList items = build_item_list(
      p, smem,
      [&](int decoder, int tokens) -> long long {
        // Up to four strips the tile bytes alone give the same count for the dense, int and
        // vector decoders (their parameter blocks fit beside their tiles), in fewer
        // instructions on the schedule build's path, which each launch's first copies wait for;
        // not for the LUT decoders (nuq4's 512-byte tables leave room for two strips, not four).
        const int strip_bytes =
            kStripCap == 8 || (decoder >= kFirstLutDecoder && decoder < kFirstVectorDecoder)
                ? decoder_strip_bytes(decoder)
                : decoder_tile_bytes(decoder);
        if (strip_bytes == 0) return 0;  // no decoder: with_expert_decoder below would skip it
        const int strips_per_item = groups_per_item * strips_per_warp(strip_bytes, kStripCap);
        return static_cast<long long>(ceil_div(p.n_strips, strips_per_item)) *
               ceil_div(tokens, kTokens);
      },
      !wait_pending, decoder_ids);
  // The last round's items may run as half items (half_items): whole items first, then the
  // halves, two per split item, one per block.
  const long long halved = half_items(items.total, gridDim.x, group_shift);
  const long long whole = items.total - halved;
  const long long units = whole + 2 * halved;
  // Units after the first round go to whichever block is free (work_queue.cuh); each item
  // publishes the block's next unit in the slot of its parity (the other may still be read).
  __shared__ long long next_unit[2];
  int parity = 0;
  for (long long i = blockIdx.x; i < units; i = next_unit[parity], parity ^= 1) {
    const bool half_item = i >= whole;
    const ItemRef r = items.at<true>(half_item ? whole + ((i - whole) >> 1) : i);
    const int half = half_item ? static_cast<int>(i - whole) & 1 : 0;
    const int item_shift = group_shift + (half_item ? 1 : 0);
    // Token blocks vary fastest: the blocks re-reading a strip group run together (L2 hits).
    // One token block (the decode case: at most kTokens tokens) needs no 64-bit division.
    const int blocks = ceil_div(r.row_count, kTokens);
    const long long strip_group = blocks == 1 ? r.local : r.local / blocks;
    const int block = static_cast<int>(r.local - strip_group * blocks);
    const int row0 = r.row_begin + block * kTokens;
    const int64_t row_records = static_cast<int64_t>(row0) * p.k_tiles;
    const Tokens t{x + static_cast<int64_t>(row0) * p.k,
                   min(kTokens, r.row_count - block * kTokens),
                   p.k,
                   p.x_digits + row_records * xdig::kRecordBytes,
                   static_cast<const xdig::TileInfo*>(p.x_info) + row_records,
                   p.k_tiles};
    unsigned short* y_rows = y + static_cast<int64_t>(row0) * (p.epilogue != 0 ? p.n / 2 : p.n);
    const NextItem next{p.work, i, units, &next_unit[parity]};
    with_expert_decoder<kFormed, true>(
        p.blob, load_desc(p.descs, r.expert), decoder_ids[r.expert],
        [&](auto decoder, const ExpertParams& ep) {
          using Dec = decltype(decoder);
          // The trellis decoders multiply the rotated x (fp16, x_rotate.cuh), at the same rows.
          Tokens tokens = t;
          if constexpr (RotatesX<Dec>::value) {
            // A bank view whose format_mask leaves out its trellis experts got no rotated x.
            if (p.x_rotated == nullptr) __trap();
            tokens.x = p.x_rotated + static_cast<int64_t>(row0) * p.k;
          }
          constexpr int R = strips_per_warp(Dec::kTileBytes + Dec::kQuantBytes, kStripCap);
          const int strip0 =
              (static_cast<int>(strip_group) * groups_per_item + half * (groups_per_item >> 1)) * R;
          // The eight-strip variant holds only the decoders that take eight strips (the
          // launcher runs it for such banks alone): the others' code is in the four-strip one.
          if constexpr (kStripCap == 8 && R != 8)
            __trap();
          else
            run_item<Act, Dec, R, kChunks, kImma>(p, ep, strip0, item_shift, tokens, y_rows, rings,
                                                  bars, bar_phases, next, wait_pending);
        });
    wait_pending = false;
  }
  // A block without items waits too: the grid's completion must imply the previous kernel's.
  if (wait_pending) wait_for_previous_kernel();
  leave_work_queue(p.work, units);
}

/// The persistent grid of a variant (cached per variant and expert bucket).
template <class Act, bool kFormed, int kStripCap, int kChunks, bool kImma = false>
cudaError_t variant_grid(const GemmProblem& p, GridSize* grid) {
  static GridCache cache;
  const auto* kernel =
      reinterpret_cast<const void*>(grouped_gemv_kernel<Act, kStripCap, kChunks, kImma, kFormed>);
  const int bucket = expert_bucket(p.num_experts);
  return persistent_grid(kernel, smem_bytes(kMaxExperts), smem_bytes(bucket_experts(bucket)),
                         bucket, &cache, grid);
}

template <class Act, bool kFormed, int kStripCap, int kChunks, bool kImma = false>
cudaError_t launch_variant(const GemmProblem& p, cudaStream_t stream) {
  GridSize grid;
  const cudaError_t err = variant_grid<Act, kFormed, kStripCap, kChunks, kImma>(p, &grid);
  if (err != cudaSuccess) return err;
  const auto* kernel =
      reinterpret_cast<const void*>(grouped_gemv_kernel<Act, kStripCap, kChunks, kImma, kFormed>);
  return launch_grouped_kernel(kernel, grid, smem_bytes(p.num_experts), p, stream);
}

/// Experts expected to hold tokens when m rows go to num_experts experts independently and
/// uniformly at random: E (1 - (1 - 1 / E)^m), at most min(E, m). (min(E, m), the bound
/// choose_variant counts items with, overstates it where m is near E: DeepSeek-V2-Lite at T = 16,
/// 96 rows on 64 experts, routes ~51. Counting all items with this instead measured slower,
/// bench/results/s31-2026-12-04/call1: the cost model's constants were fitted to the bound.)
inline double expected_active_experts(long long m, long long num_experts) {
  if (m <= 0 || num_experts <= 0) return 0.0;
  const double e = static_cast<double>(num_experts);
  const double active = e * -std::expm1(static_cast<double>(m) * std::log1p(-1.0 / e));
  return active < static_cast<double>(m) ? active : static_cast<double>(m);
}

/// A decode-kernel launch: instantiation (at most strip_cap strips per warp, chunks n8 chunks
/// of tokens per item; strip_cap * chunks <= 4, or 8 strips of one chunk where every decoder of
/// the bank takes eight: both cost accumulator and x registers) and the warps sharing a strip
/// group's k-tiles.
struct Variant {
  int strip_cap, chunks, group_warps;
};

/// The variant for a launch. Token counts live on the device, but at most min(E, m) experts
/// have tokens, so m / min(E, m) (at most the launch's max_tokens) is their mean count:
/// above 8, two chunks per item decode each weight once for 16 tokens instead of twice.
/// With equal-cost items a persistent grid takes ceil(items / grid) rounds; an item costs a
/// warp a fixed part (pipeline fill, reduction, item set-up) and its run of k-tiles times R
/// tiles. Fewer strips per warp cost more per tile (x fragments and loop overhead shared by
/// fewer tiles: ~234, 251 and 300 SASS instructions per int4 tile at R = 4, 2, 1 on sm_90).
/// The costs below are those counts refitted, with the fixed part, to per-launch
/// measurements on the H200 (5 shapes x T = 1, 4, 16 x int2/int4/int8/bf16, every R and K
/// split forced in turn: bench/results/ab-2026-12-02-s7): at one round the latency of a
/// warp's instructions rules, so R = 1 and 2 cost the same per tile. The K split is the
/// kMinTilesPerWarp rule's or twice as many warps (shorter runs, more items: what fills the
/// grid at one token per expert); splitting further measured slower. `grid` is the resident
/// block count; max_cap bounds the strips per warp.
/// Eight strips (banks of int2 g128 / g64, vq1.5 and vq2 experts alone, ring_strips) are costed as
/// four per tile, so they are taken only where they cut rounds, and only where their items still
/// fill the grid. H200, both decodes as kAuto picks them (bench/results/s27-2026-12-04): costed as
/// the R = 2 and 4 costs' line (a + b / R) at 8, eight strips ran DeepSeek-V3 at T = 2-32
/// 0.89-0.97x the time and Mixtral at T = 1 0.92-0.97x, but 1.04-1.15x wherever they turned
/// ~2 rounds of four-strip items into one round of ~256 items on 264 blocks (OLMoE T = 8,
/// Qwen3 T = 16, Mixtral's down projection at T = 4 and 32): with one item per block, each
/// SM waits for its slower block (work_queue.cuh), which two rounds drawn on demand balance.
inline Variant choose_variant(const GemmProblem& p, int grid, int max_cap = 8) {
  constexpr int kCaps[4] = {4, 2, 1, 8};  // ties keep the earlier
  constexpr long long kTileCost[4] = {234, 280, 280, 234};
  constexpr long long kItemCost = 1000;
  const long long active = p.m < p.num_experts ? p.m : p.num_experts;
  const long long mean_tokens = decode_mean_tokens(p.m, p.num_experts, p.max_tokens);
  const int chunks = mean_tokens > kChunkTokens ? 2 : 1;
  const long long token_blocks =
      (mean_tokens + kChunkTokens * chunks - 1) / (kChunkTokens * chunks);
  // Items counted at the bank's smallest tile (its strips per warp: two ring stages). In a mixed
  // bank experts with larger tiles take fewer strips per warp, so more items than counted here
  // (counting them at the largest tile's instead made int2/3/4 + int8 banks 10 % slower at
  // 4 tokens on the small shapes: most of their experts then ran at 4 strips in too few items).
  const int strip_bytes = p.min_strip_bytes > 0 ? p.min_strip_bytes : kMaxTileBytes;
  // The eight-strip variant serves banks whose every decoder takes eight strips.
  const bool eight = p.max_strip_bytes > 0 && ring_strips(p.max_strip_bytes) == 8;
  const int min_warps = min_tile_warps(p.k_tiles);
  const int max_warps =
      2 * min_warps <= kBlockWarps && 2 * min_warps <= p.k_tiles ? 2 * min_warps : min_warps;
  // Half the rule's warps (runs of up to 2 kMinTilesPerWarp k-tiles) only where that gives one
  // round of items filling at least 3/4 of the grid, counted both over min(E, m) experts and
  // over the expected active ones (expected_active_experts), and only in banks whose experts all
  // take the same strips per warp (a mixed bank's larger tiles take fewer, hence more items than
  // counted). Every variant forced per launch on the H200 (bench/results/s31-2026-12-04/call2):
  // the rule's split left such launches two rounds (Mixtral's gate/up at T = 1: 448 items on 264
  // blocks, against 224 at half the warps) and ran 2-5 % slower; where the longer runs' one round
  // is sparser (OLMoE's gate/up at T = 8, ~42 of 64 experts routed: 168 items) 9-13 % slower.
  // A/B against the rule alone (call3): Mixtral T = 1 int2/3/4 0.94-0.96x, OLMoE T = 16-64 and
  // DeepSeek-V3 T = 2 int2/3/4 0.96-0.98x; mixed:rr banks 1.02-1.08x (hence the last condition).
  const int largest_strip_bytes = p.max_strip_bytes > strip_bytes ? p.max_strip_bytes : strip_bytes;
  const int lo_warps = min_warps > 1 && ceil_div(p.k_tiles, min_warps / 2) <= 2 * kMinTilesPerWarp
                           ? min_warps / 2
                           : min_warps;
  // Asked only where the half split is a candidate (two libm calls per launch otherwise).
  const double expected_active =
      lo_warps < min_warps ? expected_active_experts(p.m, p.num_experts) : 0.0;
  Variant best{};
  long long best_cost = -1;
  for (int warps = lo_warps; warps <= max_warps; warps *= 2)
    for (int i = 0; i < 4; ++i) {
      if (kCaps[i] > max_cap) continue;
      if (kCaps[i] == 8 ? !eight || chunks > 1 : kCaps[i] * chunks > 4) continue;
      const int r = strips_per_warp(strip_bytes, kCaps[i]);
      const long long tile_cost = kTileCost[r == 4 ? 0 : r == 2 ? 1 : r == 1 ? 2 : 3] * chunks;
      const long long item_groups = token_blocks * ceil_div(p.n_strips, r * (kBlockWarps / warps));
      const long long items = active * item_groups;
      if (r == 8 && items < grid) continue;
      if (warps < min_warps) {
        // Only where every expert of the bank takes r strips, so that the count is exact.
        if (strips_per_warp(largest_strip_bytes, kCaps[i]) != r) continue;
        const double expected_items = expected_active * static_cast<double>(item_groups);
        if (4 * items < 3LL * grid || items > grid || 4.0 * expected_items < 3.0 * grid) continue;
      }
      const long long run = ceil_div(p.k_tiles, warps);
      const long long cost = (items + grid - 1) / grid * (kItemCost + run * r * tile_cost);
      if (best_cost < 0 || cost < best_cost) {
        best = {kCaps[i], chunks, warps};
        best_cost = cost;
      }
    }
  return best;
}

/// launch_grouped_gemv for banks with (kFormed) or without formed-weight decoders
/// (with_decoder).
template <class Act, bool kFormed>
cudaError_t launch_decoders(const GemmProblem& p, cudaStream_t stream) {
  // Every variant has the same resources (launch bounds, shared memory): size by one.
  GridSize grid;
  cudaError_t err = variant_grid<Act, kFormed, 4, 1>(p, &grid);
  if (err != cudaSuccess) return err;
  const Variant v = choose_variant(p, grid.blocks);
  GemmProblem pv = p;
  pv.group_warps = v.group_warps;
  // The kernels before this launch that convert x for some decoders write neither the offsets
  // nor the bank and let this launch start only after their own wait for their predecessor, so
  // this launch may build its schedule while they run (early_schedule).
  if (p.x_rotated != nullptr) {
    // The trellis decoders' x~ (x_rotate.cuh): one warp per (row, 128-input block).
    err = launch_rotate_x<Act>(p, stream);
    if (err != cudaSuccess) return err;
    pv.early_schedule = 1;
  }
  // The integer-mma decode wherever grouped_gemm gave x's digits a workspace (decode_imma).
  const bool imma = p.x_digits != nullptr;
  if (imma) {
    // x as digits: one warp per (row, k-tile).
    const auto* x = static_cast<const unsigned short*>(p.x);
    int64_t m = p.m;
    int k = p.k, k_tiles = p.k_tiles;
    const int32_t* offsets = p.offsets;
    int num_experts = p.num_experts;
    uint8_t* records = p.x_digits;
    auto* info = static_cast<xdig::TileInfo*>(p.x_info);
    void* args[] = {&x, &m, &k, &k_tiles, &offsets, &num_experts, &records, &info};
    err = launch_warp_kernel(reinterpret_cast<const void*>(xdig::x_digits_kernel<Act>),
                             p.m * p.k_tiles, grid.pdl, args, stream);
    if (err != cudaSuccess) return err;
    pv.early_schedule = 1;
  }
  if (v.chunks == 2) {
    // 16-token items: each chunk holds its x fragments (bf16) or digits (8 registers per k-tile
    // either way). ptxas (sm_90a): the bf16 decode's two-chunk variants spill 88 / 540 B (one
    // strip) and 772 / 1552 B (two strips); the integer decode's none at one strip and 144 /
    // 628 B at two, so it runs one strip per warp, with its own K split.
    if (imma) {
      pv.group_warps = choose_variant(p, grid.blocks, 1).group_warps;
      return launch_variant<Act, kFormed, 1, 2, true>(pv, stream);
    }
    return v.strip_cap == 2 ? launch_variant<Act, kFormed, 2, 2>(pv, stream)
                            : launch_variant<Act, kFormed, 1, 2>(pv, stream);
  }
  switch (v.strip_cap) {
    case 8:
      return imma ? launch_variant<Act, kFormed, 8, 1, true>(pv, stream)
                  : launch_variant<Act, kFormed, 8, 1>(pv, stream);
    case 4:
      return imma ? launch_variant<Act, kFormed, 4, 1, true>(pv, stream)
                  : launch_variant<Act, kFormed, 4, 1>(pv, stream);
    case 2:
      return imma ? launch_variant<Act, kFormed, 2, 1, true>(pv, stream)
                  : launch_variant<Act, kFormed, 2, 1>(pv, stream);
    default:
      return imma ? launch_variant<Act, kFormed, 1, 1, true>(pv, stream)
                  : launch_variant<Act, kFormed, 1, 1>(pv, stream);
  }
}

}  // namespace gemv

template <class Act>
cudaError_t launch_grouped_gemv(const GemmProblem& p, cudaStream_t stream) {
  return p.formed != 0 ? gemv::launch_decoders<Act, true>(p, stream)
                       : gemv::launch_decoders<Act, false>(p, stream);
}

}  // namespace qmoe::dev
