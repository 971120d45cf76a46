// cuda/kernels/grouped_gemm_wgmma.cuh — the Hopper (sm_90a) tensor-core grouped GEMM
// ("prefill"): the sibling of grouped_gemm_tc.cuh with warpgroup MMA (wgmma) in place of
// mma.sync.
//
// Work item = (expert with tokens in [min_tokens, max_tokens], block of 256 weight rows (128
// at 256 tokens, at 32 tokens where 256-row items would not fill the grid or the bank has int8
// experts, and in the trellis experts' launch, launch_trellis: 128 tokens, fp16 wgmmas against
// the rotated x, their sums scaled by 128 in the epilogue), block of kTokens tokens); the
// persistent grid walks the same device-built schedule as the tc kernel, token blocks fastest.
// Every row block re-reads the token block's x from L2, so 256 rows (not 128) halve that traffic
// per FLOP: a k-tile stages kTokens x 256 bytes of x and 16 code tiles for 256 x kTokens x 128
// multiply-adds (at 256 tokens: 512 bytes of x per token and 8 code tiles for 128 x 256 x 128).
// kTokens (the wgmma N) is 128, or 96, 64 or 32 where experts hold few tokens: the tensor cores
// multiply every column of the token block, so an expert with 64 tokens or fewer would spend
// at least half of them on zero padding at N = 128 (launch_grouped_gemm_wgmma picks it). At
// 32 and 64 tokens, for banks of 2/3/4-bit codes, two blocks share an SM (kBlocks): with few
// tokens the kernel streams weights and its decode chains, not the tensor cores, set the pace,
// and one block's 2 warps per scheduler hide too little of their latency. At 256 tokens (banks
// of 2/3/4-bit codes, many tokens per expert) a warpgroup owns one m64 block instead of two:
// the same 128 accumulators per thread, but each weight is decoded once per 256 tokens.
// For the same reason a call at 128 or 256 tokens runs the experts' short last token blocks
// (a quarter of the tile or less) in a second launch, of the two-block 32- or 64-token tile,
// or where those blocks are few of a one-strip 32- or 64-token tile with 128-row items
// (launch_with_tail, tail_strips; the rows each launch takes: expert_rows, launch.cuh).
// Block = 2 warpgroups of 4 warps. Warpgroup g owns m64 blocks 2g and 2g + 1 of the row
// block; warp i of it decodes strips 8g + i and 8g + 4 + i (16 rows each), i.e. rows
// 16i .. 16i + 15 of each of its m64 blocks, into A fragments exactly as the tc kernel does:
// per warp the register A operand of wgmma is the mma.sync A fragment of those 16 rows. Per
// k16 sub-tile the warpgroup issues one wgmma.m64nNk16 (N = kTokens) per m64 block, A from
// registers (the decoded weights never touch shared memory), B = the x tile in shared memory
// through a matrix descriptor (the same for both), fp32 accumulators (2 x N / 2 per thread).
// (At 256 tokens: m64 block g, strip 4g + i, 8 wgmmas per k-tile, N / 2 = 128 accumulators.)
// A k-tile's 16 wgmmas go strip-major (8 sub-tiles of strip 8g + i, then 8 of 8g + 4 + i),
// so only one strip's codes and scales are live in registers at a time; each is committed
// alone, and the warpgroup keeps up to two in flight while it decodes the next A fragment
// (a_buffers: three A buffers for 2/3/4-bit, two for int8 and dense). The item's first wgmma
// of each strip overwrites the accumulators (scale-d = 0): no ordinary instruction writes
// them, which ptxas requires to keep the wgmmas pipelined (C7515).
// One ring; stage = k-tile:
//  - x tile [kTokens tokens][128 k] as two 64-k halves, each in the 128-byte-swizzle K-major
//    layout wgmma reads (zero-filled past the item's tokens and past K). At 128 and 256 tokens
//    (kXByTma) thread 0 loads both halves by TMA (one tensor-map box each, swizzled by the
//    copy engine, completing on the stage's mbarrier) where K % 8 == 0; otherwise every thread
//    copies its 16-byte units with cp.async (synchronous loads where K % 8 != 0);
//  - 16 code slots (8 at 256 tokens), slot s = strip s of the row block, each copied verbatim
//    by the warp that decodes it (as in the tc kernel).
// Ring depth by stage size (ring_stages): four stages prefetch two k-tiles, three prefetch one;
// with either, the barrier that publishes k-tile kt + 1 runs while the last wgmmas of k-tile
// kt still do (its refill targets the stage of k-tile kt - 1). Two stages prefetch one k-tile
// and drain a k-tile's wgmmas before that barrier (its refill targets k-tile kt's own stage).
// With 128 tokens, up to 1 KB per code tile (int2/3/4) gives four stages, int8 three, dense
// two; with 64 tokens int8 gets the fourth stage too; 256 tokens (64 KB of x per stage, 2/3/4-
// bit only) three. At two blocks per SM the ring has half the SM: with 32 tokens int2/int3
// four stages, int4 three; with 64 tokens int2/int3 three, int4 two.
// Below 256 tokens a k-tile ends drained: the A buffer index (wgmma n % a_buffers) restarts
// every k-tile, and a wgmma in flight across the k loop's back edge into a redefined buffer
// would make ptxas serialize them all (C7513). (Measured on an H100: two buffers with no drain,
// whose parity does carry over, ran the same: median time ratio 1.00, 0.94 to 1.08 over 48
// cases, bench/results/ab-2026-11-23.) The 256-token tile (in the kernels without the formed
// decoders) carries its last three wgmmas over the back edge instead (carries_wgmmas: four A
// buffers, which divide a k-tile's 8 wgmmas, so every buffer index stays a compile-time
// constant): a drain at every k-tile, right after the block barrier, left both warpgroups'
// wgmma queues empty at once while they restarted (session 45's probe,
// bench/probes/wgmma_ws_probe.cu: 1217 SM cycles per 64 k against the tensor pipe's 1024 with
// the drain, 1024 without it, H100; on the kernel 0.97x the time of that tile's rows).
// Epilogue: accumulators rounded once to Act, staged token-major in the idle ring by
// transposing stmatrix (stage_y_strip: one instruction for four 8x8 fragments where 2-byte
// stores took 16; A/B on an H100 0.989x / 0.994x the time at T >= 1024, session 46), written as
// 16-byte rows of y (scalar stores where N is not a multiple of 8).
//
// Only sm_90a has wgmma: every other target compiles a __trap() body, and the host asks
// grouped_gemm_wgmma_available before launching.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"
#include "cuda/kernels/tile_common.cuh"

namespace qmoe::dev {
namespace wg {

constexpr int kWarpgroupWarps = 4;
constexpr int kM64Strips = 4;  ///< strips of one wgmma m64 block
constexpr int kMaxStages = 4;
/// One swizzle atom of the 128-byte swizzle: 8 rows of 128 bytes. Rows are 128 bytes (64 k
/// of one token), so a k-tile is stored as two halves of [kTokens tokens][128 bytes].
constexpr int kSwizzleRowBytes = 128;
constexpr int kSwizzleAtomBytes = 8 * kSwizzleRowBytes;
constexpr int kHalfK = kSwizzleRowBytes / 2;  ///< 64 k per half
static_assert(kTileCols == 2 * kHalfK, "a k-tile is two swizzled halves");
/// Strips per warp (= m64 blocks per warpgroup) of the kTokens tile. Up to 128 tokens a
/// warpgroup owns two m64 blocks (256 rows per item); at 256 it owns one (128 rows per item),
/// which keeps the accumulators per thread at 128 and decodes each weight once per 256 tokens,
/// not 128. The two-block 32-token tile also runs with one (128-row items) in launches whose
/// 256-row items do not fill its grid, and for banks with int8 experts
/// (TokenTileChoice).
constexpr int default_warp_strips(int tokens) {
  return tokens == 256 ? 1 : 2;
}
/// What the token tile (tokens per item = the wgmma N) and the strips per warp size.
template <int kTokens, int kWarpStrips = default_warp_strips(kTokens)>
struct TokenTile {
  static_assert(kTokens == 32 || kTokens == 64 || kTokens == 96 || kTokens == 128 || kTokens == 256,
                "the kernel's wgmma N is 32, 64, 96, 128 or 256");
  static_assert(kWarpStrips == 1 || (kWarpStrips == 2 && kTokens <= 128),
                "one or two m64 blocks per warpgroup, one at 256 tokens (128 accumulators)");
  static constexpr int kStripsPerWarp = kWarpStrips;            ///< = m64 blocks per warpgroup
  static constexpr int kStrips = kBlockWarps * kStripsPerWarp;  ///< strips per item
  static constexpr int kRows = kStrips * kTileRows;             ///< weight rows per item
  static constexpr int kAcc = kTokens / 2;  ///< fp32 accumulators per thread of m64nN (64 N / 128)
  static constexpr int kXHalfBytes = kTokens * kSwizzleRowBytes;  ///< 4 .. 32 KB, 1024-aligned
  static_assert(kTokens % 8 == 0, "whole 8-row swizzle atoms per x half");
  static constexpr int kXStageBytes = 2 * kXHalfBytes;
  /// Epilogue staging row of y (elements): 8 extra elements skew consecutive tokens by 8 banks.
  static constexpr int kYStride = kRows + 8;
  /// x comes by TMA (where the host could build its tensor map, x_tensor_map) at 128 and 256
  /// tokens. H200 A/B against cp.async (bench/results/s10-2026-12-02/tma): dense bf16 banks
  /// 0.87-0.93x the time at T >= 1024, the 256-token tile 0.93-0.96x, the 128-token tile with
  /// integer banks 0.98-1.02x; the 64-token tiles were slower (int8 at one block per SM
  /// 1.12-1.13x, the two-block tiles up to 1.09x), and keep cp.async.
  static constexpr bool kXByTma = kTokens >= 128;
  static constexpr int kYBytes = kTokens * kYStride * 2;
};
static_assert(TokenTile<128>::kRows == kWgmmaItemRows, "kernel_split.cuh counts items by it");

/// One stage: the x tile, then one code slot of slot_bytes per strip; a multiple of the
/// swizzle atom so every stage's halves stay on the 1024-byte boundary the swizzle pattern
/// repeats on.
template <int kTokens, int kWarpStrips = default_warp_strips(kTokens)>
constexpr int stage_bytes(int slot_bytes) {
  using Tile = TokenTile<kTokens, kWarpStrips>;
  return (Tile::kXStageBytes + Tile::kStrips * slot_bytes + kSwizzleAtomBytes - 1) /
         kSwizzleAtomBytes * kSwizzleAtomBytes;
}

/// Experts per bank a kernel's schedule holds: kMaxExperts, but 256 for the 256-token tile,
/// whose three ring stages (64 KB of x each) leave room for no larger schedule (token_tile
/// picks it only for banks of 256 experts or fewer).
template <int kTokens>
constexpr int max_experts() {
  return kTokens == 256 ? 256 : kMaxExperts;
}

/// Dynamic shared memory the ring may take: the 227 KB a block may opt in to on compute
/// capability 9.0 (of 228 KB per SM, less 1 KB per resident block), shared by the blocks of an
/// SM, less a reserve for the kernel's static shared memory (the schedule's block scan,
/// 2.3 KB), the largest schedule and the alignment pad.
template <int kTokens, int kBlocks>
constexpr int ring_budget() {
  return (228 * 1024) / kBlocks - 1024 - 4096 -
         static_cast<int>(schedule_smem_bytes(max_experts<kTokens>())) - kSwizzleAtomBytes;
}

/// Largest code slot a kernel serves. At two blocks per SM it is compiled for the 2/3/4-bit
/// decoders only (token_tile sends other banks to a one-block tile): within the 128 registers
/// of two blocks per SM the int8 and dense paths (16 and 32 code words per lane) leave no
/// registers for the wgmma pipeline, and ptxas then serializes every wgmma of the kernel
/// (C7512). The 256-token tile's kernel serves the 2/3/4-bit decoders only (three stages, the
/// carry); banks with int8 experts take a kernel of their own (kWgmma256Int8SlotBytes), dense
/// slots none. With one strip per warp (32 tokens) the two-block
/// tile holds 16 accumulators per thread instead of 32, and takes int8 slots too (token_tile).
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens)>
constexpr int max_slot_bytes() {
  if (kBlocks == 2 && kWarpStrips == 1) return kWgmmaHalfRowMaxSlotBytes;
  return kBlocks == 2 || kTokens == 256 ? kWgmmaTwoBlockMaxSlotBytes : kMaxTileBytes;
}

/// Stages of the ring for code slots of slot_bytes (the kernel and the host both derive it).
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens)>
constexpr int ring_stages(int slot_bytes) {
  const int fit = ring_budget<kTokens, kBlocks>() / stage_bytes<kTokens, kWarpStrips>(slot_bytes);
  return fit < kMaxStages ? fit : kMaxStages;
}
/// k-tiles the ring prefetches ahead of the one being multiplied: two with four stages, else
/// one, so that three stages still overlap the refill with the last wgmmas (below). H200 A/B
/// (bench/results/s10-2026-12-02): with three stages, one prefetched k-tile and the overlap
/// took 0.93-0.96x the time of two prefetched and a drained barrier on the 256-token tile, and
/// 0.96-0.99x on int8 banks at 128 tokens.
constexpr int ring_depth(int stages) {
  return stages >= 4 ? 2 : 1;
}
/// The barrier that publishes k-tile kt + 1 (at the end of k-tile kt) refills the stage of
/// k-tile kt + 1 + depth - stages. With a stage beyond the prefetched ones and the current
/// one, that is k-tile kt - 1, drained at its end, and the barrier may run while k-tile kt's
/// last wgmmas still do; otherwise it is k-tile kt itself, drained before the barrier.
constexpr bool ring_overlaps(int stages) {
  return stages >= ring_depth(stages) + 2;
}

/// The ring depth of every code slot a kernel serves (kMaxSlot and below, of the decoders it
/// holds: kFormed, kTrellis), or 0 where they differ: a kernel whose depth is fixed compiles its
/// k-loop for that depth (no branch on it; the two-block 64-token tile, the one-strip 32-token tile
/// for 2/3/4-bit slots, the 256-token tile). Why: the k-loop's time moves with the control flow
/// around its cp.async waits. H200 A/B (bench/results/s29-2026-12-04): a four-way branch on the
/// depth in place of the two-way one took up to 1.10x the time at an unchanged ring (call 3); the
/// fixed depth took int4 on the two-block 64-token tile to 0.94-0.97x (Mixtral T = 128, OLMoE T =
/// 256, Qwen3 T = 512, DeepSeek-V2-Lite T = 256 / 512, DeepSeek-V3 T = 1024), the other rows
/// 0.97-1.02x (call 4).
template <int kTokens, int kBlocks, int kWarpStrips, int kMaxSlot, bool kFormed,
          bool kTrellis = false>
constexpr int fixed_ring_depth() {
  int depth = 0;
  for (int id = 0; id < kNumDecoders; ++id) {
    const int slot = decoder_tile_bytes(id);
    if (slot > kMaxSlot || !holds_decoder(kFormed, id, kTrellis)) continue;
    const int d = ring_depth(ring_stages<kTokens, kBlocks, kWarpStrips>(slot));
    if (depth == 0)
      depth = d;
    else if (depth != d)
      return 0;
  }
  return depth;
}

/// Every slot size the token tile serves gives a ring of two stages or more that also holds
/// the y tile.
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>()>
constexpr bool ring_fits_every_decoder() {
  for (int id = 0; id < kNumDecoders; ++id) {
    const int slot = decoder_tile_bytes(id);
    if (slot > kMaxSlot) continue;
    if (ring_stages<kTokens, kBlocks, kWarpStrips>(slot) < 2 ||
        ring_stages<kTokens, kBlocks, kWarpStrips>(slot) * stage_bytes<kTokens, kWarpStrips>(slot) <
            TokenTile<kTokens, kWarpStrips>::kYBytes)
      return false;
  }
  return true;
}
static_assert(ring_fits_every_decoder<64, 1, 1, kWgmmaTwoBlockMaxSlotBytes>(),
              "the one-strip 64-token tail tile (launch_with_tail)");
static_assert(ring_fits_every_decoder<32, 2>() && ring_fits_every_decoder<64, 2>() &&
                  ring_fits_every_decoder<64, 1>() && ring_fits_every_decoder<96, 1>() &&
                  ring_fits_every_decoder<128, 1>() && ring_fits_every_decoder<256, 1>() &&
                  ring_fits_every_decoder<32, 2, 1>() && ring_fits_every_decoder<128, 1, 1>(),
              "every code slot size needs a ring of >= 2 stages");
/// Banks with int8 experts (2 KB code slots, no dense or formed ones) take the 256-token tile too,
/// in a kernel of its own: two ring stages, so its k-tiles drain (no carry), and int8's two A
/// buffers. Each weight is then decoded once per 256 tokens instead of 128, which pays for the
/// drain: H100 A/B against the 128-token tile (session 46, 4 rounds) int8 0.80-0.86x the time on
/// Mixtral at T = 1024-16384 and at T = 16384 on DS-V2-Lite and OLMoE, 0.93-0.98x on
/// DeepSeek-V3; mixed:rr (int2/3/4/8 experts) on Mixtral 0.78x at T = 16384, 0.95x at 4096.
constexpr int kWgmma256Int8SlotBytes = 2048;
static_assert(ring_fits_every_decoder<256, 1, 1, kWgmma256Int8SlotBytes>(),
              "the 256-token tile's int8 kernel: rings of >= 2 stages that hold the y tile");
static_assert(ring_overlaps(ring_stages<256, 1>(kWgmmaTwoBlockMaxSlotBytes)),
              "the 256-token tile carries wgmmas over k-tiles (carries_wgmmas): its ring's "
              "refill must never target the stage being multiplied");

/// The schedule, up to one atom of padding to align the ring, then the ring.
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens)>
constexpr size_t smem_bytes(int num_experts, int slot_bytes) {
  return schedule_smem_bytes(num_experts) + kSwizzleAtomBytes +
         static_cast<size_t>(ring_stages<kTokens, kBlocks, kWarpStrips>(slot_bytes)) *
             stage_bytes<kTokens, kWarpStrips>(slot_bytes);
}

/// The 64-token tiles lay each item's ring out for its own decoder's code slot (slot stride,
/// stages and depth compile-time per decoder), not for the launch's largest slot: an int2
/// item of a mixed bank streams through int2's ring. Why the 64-token tiles only: H200 A/B
/// (bench/results/s30-2026-12-04/call1): their rows 0.96-0.99x the time (Mixtral T = 96-160 int4
/// 0.96x, int2 / mixed:rr 0.97x; DeepSeek-V3 T = 1024 int4 0.96x), where the same for every tile
/// cost the 96-token tile 1.04-1.10x and the two-strip 32-token tile 1.02-1.04x (s29 call 8).
template <int kTokens>
constexpr bool own_ring() {
  return kTokens == 64;
}
/// The largest ring, with its schedule, among the decoders whose code slot is max_slot or less
/// that a kernel with (formed) or without the formed-weight decoders, and with (trellis) or
/// without the trellis ones, runs (the ring size is not monotonic in the slot size: vq1.5's
/// 384-byte slots take more stages than int2's 512).
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens)>
constexpr size_t largest_smem_bytes(int num_experts, int max_slot, bool formed,
                                    bool trellis = false) {
  size_t bytes = 0;
  for (int id = 0; id < kNumDecoders; ++id) {
    if (decoder_tile_bytes(id) > max_slot || !holds_decoder(formed, id, trellis)) continue;
    const size_t b = smem_bytes<kTokens, kBlocks, kWarpStrips>(num_experts, decoder_tile_bytes(id));
    if (b > bytes) bytes = b;
  }
  return bytes;
}
/// Shared memory of a launch whose largest code slot is max_slot: the largest ring among the
/// decoders it may run where each item has its own ring (own_ring), else smem_bytes.
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens)>
constexpr size_t ring_smem_bytes(int num_experts, int max_slot, bool formed, bool trellis = false) {
  return own_ring<kTokens>() ? largest_smem_bytes<kTokens, kBlocks, kWarpStrips>(
                                   num_experts, max_slot, formed, trellis)
                             : smem_bytes<kTokens, kBlocks, kWarpStrips>(num_experts, max_slot);
}

/// The most any launch of the (kTokens, kBlocks, kWarpStrips) kernel with (formed) or without the
/// formed-weight decoders (and the trellis ones: trellis) takes.
template <int kTokens, int kBlocks, int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>()>
constexpr size_t max_smem_bytes(bool formed, bool trellis = false) {
  return largest_smem_bytes<kTokens, kBlocks, kWarpStrips>(max_experts<kTokens>(), kMaxSlot, formed,
                                                           trellis);
}

/// Stages the x tile of k-tile kt into `stage`: 16-byte unit u of token row r goes to half
/// u / 8, row r, unit (u % 8) ^ (r % 8): the 128-byte swizzle, which the wgmma descriptor
/// undoes (it XORs address bits 4-6 with bits 7-9).
template <int kTokens>
__device__ __forceinline__ void fill_x(unsigned char* stage, const XTile& t, int kt) {
  fill_x_tile<kTokens>(t, kt, [&](int row, int unit) {
    return stage + (unit / 8) * TokenTile<kTokens>::kXHalfBytes + row * kSwizzleRowBytes +
           (((unit % 8) ^ (row & 7)) << 4);
  });
}

// ---- TMA and mbarriers (PTX ISA "cp.async.bulk.tensor", "mbarrier") ----------------------

/// Box (c0, c1) of the tensor map into shared memory at dst, completing on mbarrier bar.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                            uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
      "%3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

/// Waits until the oldest of `depth` (1 or 2) cp.async groups in flight has landed.
__device__ __forceinline__ void cp_async_wait_oldest(int depth) {
  if (depth > 1)
    cp_async_wait<1>();
  else
    cp_async_wait<0>();
}

// ---- wgmma (PTX ISA "Asynchronous Warpgroup Level Matrix Multiply-Accumulate") ----------

/// Matrix descriptor of the B operand of sub-tile 0 of a stage (x_stage: shared address of
/// the stage, 1024-byte aligned): K-major, 128-byte swizzle.
///  bits  0-13  start address >> 4. Sub-tile j starts at half j / 4 plus 32 * (j % 4)
///              bytes (16 k): the hardware swizzles the full address (bits 4-6 ^= 7-9), so
///              the offset start reads units 2 (j % 4) and 2 (j % 4) + 1 of every row as
///              fill_x stored them.
///  bits 16-29  leading byte offset >> 4: unused by swizzled K-major layouts (1 by convention).
///  bits 32-45  stride byte offset >> 4: 1024, from one 8-token group to the next (the
///              wgmma reads N / 8 groups: exactly one half of the stage's x tile).
///  bits 49-51  base offset 0: the halves start on 1024-byte boundaries.
///  bits 62-63  layout type 1 = 128-byte swizzle.
__device__ __forceinline__ uint64_t x_descriptor(uint32_t x_stage) {
  return (uint64_t{1} << 62) | (static_cast<uint64_t>(kSwizzleAtomBytes >> 4) << 32) |
         (uint64_t{1} << 16) | static_cast<uint64_t>((x_stage & 0x3FFFFu) >> 4);
}

/// Descriptor offset (in 16-byte units, added to the start address field) of sub-tile j.
template <int kTokens>
__host__ __device__ constexpr uint64_t subtile_descriptor_offset(int j) {
  return static_cast<uint64_t>(((j / 4) * TokenTile<kTokens>::kXHalfBytes + (j % 4) * 32) >> 4);
}

/// Orders this thread's register writes (the A fragments) before the next wgmma reads them.
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
/// Four 8x8 b16 matrices stored transposed (sm_90): lane l gives the address of row l%8 of
/// matrix l/8, and r[i] holds (row l/4, columns 2(l%4), 2(l%4)+1) of matrix i, low half first
/// (an mma accumulator fragment's layout); row j of the stored matrix is column j of the
/// fragment, 16 contiguous bytes.
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile(
      "stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
      "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
      : "memory");
}
/// Pins the accumulators after a wgmma_wait: the asm names them as read and written, so the
/// compiler cannot move their uses across the wait.
template <int kAcc>
__device__ __forceinline__ void fence_accumulators(float (&d)[kAcc]) {
#pragma unroll
  for (int i = 0; i < kAcc; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/// d[64 rows x N tokens] += A[64 x 16] * B[16 x N], warpgroup-wide (N = 32 .. 256). Per warp
/// the register A operand is the mma.sync m16n8k16 A fragment of rows 16 (warp % 4) .. +15,
/// and d[4c + r] (c < N / 8) is that warp's mma.sync C fragment of n8 chunk c: row lane / 4 +
/// 8 (r / 2), token 8c + 2 (lane % 4) + r % 2. scale-d = accumulate != 0 (0: d = A * B, the
/// item's first wgmma), scale-a = scale-b = 1, trans-b = 0 (B K-major: each token's k
/// contiguous).
/// Inline PTX names operands by number, so the accumulator list {%0, ..., %(N/2 - 1)} and its
/// "+f" operands come from one list of literal indices (X(i) for accumulators 1 .. N/2 - 1;
/// accumulator 0 opens the list); A, the descriptor and `accumulate` are the operands after
/// them.
// clang-format off
#define QMOE_WG_ACC_1_15(X)                                                                 \
  X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)
#define QMOE_WG_ACC_1_31(X)                                                                 \
  QMOE_WG_ACC_1_15(X)                                                                       \
  X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25) X(26) X(27) X(28) X(29) X(30) X(31)
#define QMOE_WG_ACC_1_47(X)                                                                       \
  QMOE_WG_ACC_1_31(X)                                                                             \
  X(32) X(33) X(34) X(35) X(36) X(37) X(38) X(39) X(40) X(41) X(42) X(43) X(44) X(45) X(46) X(47)
#define QMOE_WG_ACC_1_63(X)                                                                       \
  QMOE_WG_ACC_1_47(X)                                                                             \
  X(48) X(49) X(50) X(51) X(52) X(53) X(54) X(55) X(56) X(57) X(58) X(59) X(60) X(61) X(62) X(63)
#define QMOE_WG_ACC_1_127(X)                                                                       \
  QMOE_WG_ACC_1_63(X)                                                                              \
  X(64) X(65) X(66) X(67) X(68) X(69) X(70) X(71) X(72) X(73) X(74) X(75) X(76) X(77) X(78) X(79)  \
  X(80) X(81) X(82) X(83) X(84) X(85) X(86) X(87) X(88) X(89) X(90) X(91) X(92) X(93) X(94) X(95)  \
  X(96) X(97) X(98) X(99) X(100) X(101) X(102) X(103) X(104) X(105) X(106) X(107) X(108) X(109)    \
  X(110) X(111) X(112) X(113) X(114) X(115) X(116) X(117) X(118) X(119) X(120) X(121) X(122)       \
  X(123) X(124) X(125) X(126) X(127)
#define QMOE_WG_ACC_REG(i) ", %" #i
#define QMOE_WG_ACC_OPERAND(i) , "+f"(d[i])
#define QMOE_WGMMA(SHAPE, TYPE, ACCS, A_AND_DESC, ACCUMULATE)                                \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " ACCUMULATE ", 0;\n"                         \
               "wgmma.mma_async.sync.aligned." SHAPE ".f32." TYPE "." TYPE                        \
               " {%0" ACCS(QMOE_WG_ACC_REG) "}, " A_AND_DESC ", p, 1, 1, 0;\n}\n"                 \
               : "+f"(d[0]) ACCS(QMOE_WG_ACC_OPERAND)                                           \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate))
#define QMOE_WGMMA_ACT(SHAPE, ACCS, A_AND_DESC, ACCUMULATE)        \
  if constexpr (std::is_same_v<Act, __nv_bfloat16>) {             \
    QMOE_WGMMA(SHAPE, "bf16", ACCS, A_AND_DESC, ACCUMULATE);      \
  } else {                                                        \
    QMOE_WGMMA(SHAPE, "f16", ACCS, A_AND_DESC, ACCUMULATE);       \
  }
// clang-format on

template <class Act, int kN>
__device__ __forceinline__ void wgmma_m64nNk16(float (&d)[kN / 2], const uint32_t (&a)[4],
                                               uint64_t desc, int accumulate) {
  static_assert(kN == 32 || kN == 64 || kN == 96 || kN == 128 || kN == 256,
                "one accumulator list per N below");
  if constexpr (kN == 32) {
    QMOE_WGMMA_ACT("m64n32k16", QMOE_WG_ACC_1_15, "{%16, %17, %18, %19}, %20", "%21")
  } else if constexpr (kN == 64) {
    QMOE_WGMMA_ACT("m64n64k16", QMOE_WG_ACC_1_31, "{%32, %33, %34, %35}, %36", "%37")
  } else if constexpr (kN == 96) {
    QMOE_WGMMA_ACT("m64n96k16", QMOE_WG_ACC_1_47, "{%48, %49, %50, %51}, %52", "%53")
  } else if constexpr (kN == 128) {
    QMOE_WGMMA_ACT("m64n128k16", QMOE_WG_ACC_1_63, "{%64, %65, %66, %67}, %68", "%69")
  } else {
    QMOE_WGMMA_ACT("m64n256k16", QMOE_WG_ACC_1_127, "{%128, %129, %130, %131}, %132", "%133")
  }
}
#undef QMOE_WGMMA_ACT
#undef QMOE_WGMMA
#undef QMOE_WG_ACC_OPERAND
#undef QMOE_WG_ACC_REG
#undef QMOE_WG_ACC_1_127
#undef QMOE_WG_ACC_1_63
#undef QMOE_WG_ACC_1_47
#undef QMOE_WG_ACC_1_31
#undef QMOE_WG_ACC_1_15

/// A buffers per warp: wgmma n of a k-tile reads a[n % a_buffers], and the wait after each
/// commit leaves a_buffers - 1 wgmmas in flight, so the decode of wgmma n + 1 overwrites the
/// buffer of n + 1 - a_buffers, already retired. Three keep two wgmmas queued per warpgroup
/// while the next A fragment is decoded (ncu at two: every wgmma waited for its predecessor,
/// the tensor pipe 45 % busy); the decoders with large code tiles (int8, dense) keep two, or
/// ptxas runs out of registers for the wgmma pipeline and serializes every wgmma of the
/// kernel (C7511). The same happens (C7515) if any path of the kernel writes accumulators
/// with ordinary instructions: the first wgmma of an item overwrites them (scale-d = 0)
/// instead of a zero fill.
constexpr int kMaxABuffers = 4;
/// Whether the kTokens tile keeps wgmmas in flight across its k-loop's back edge (the file's
/// header): the 256-token tile (one strip per warp, 2/3/4-bit slots: kMaxSlot) in the kernels
/// without the formed-weight decoders. Its ring's barrier then must never refill the stage being
/// multiplied: it always has three stages or more (ring_overlaps; the static_assert after
/// ring_fits_every_decoder), and the loop drains only after its last k-tile. Not kept elsewhere:
///  - the formed kernels (kFormed: LUT and vector decoders) spill with it (ptxas, sm_90a: 156 /
///    1092 B of spill stores / loads and 112 B of stack in the 256-token kernels, none without);
///  - the 128-token tile. In its kernel with the int8 and dense decoders ptxas serializes every
///    wgmma (C7513: their decode defines wgmma inputs inside the pipeline): 1.17-1.23x the time
///    (s45-2026-12-06/carry128; s46-2026-12-06/carry128s). In a kernel for 2/3/4-bit banks only
///    it is not serialized and gains nothing: two strips per warp median 1.011x on its rows, one
///    strip (128-row items, x reused by half the rows) 1.06-1.33x (s46-2026-12-06/carry128t,
///    carry128s-b; H100 A/B).
template <int kTokens, int kMaxSlot, bool kFormed>
constexpr bool carries_wgmmas() {
  return kTokens == 256 && kMaxSlot <= kWgmmaTwoBlockMaxSlotBytes && !kFormed;
}
template <class Dec, int kTokens, int kMaxSlot, bool kFormed>
constexpr int a_buffers() {
  if constexpr (carries_wgmmas<kTokens, kMaxSlot, kFormed>()) {
    static_assert(Dec::kRawWords <= 8, "the 256-token tile takes 2/3/4-bit code slots");
    return 4;
  }
  return Dec::kRawWords <= 8 ? 3 : 2;
}

/// acc += W_strip x x_stage^T over one k-tile for the warpgroup's m64 block whose rows
/// 16 (warp % 4) .. + 15 are this warp's strip (whole warpgroup): 8 wgmmas, one commit group
/// each, numbered first .. first + 7 within the k-tile (first: a compile-time constant once
/// inlined and unrolled, so the buffer index is too). accumulate = false (the item's first
/// k-tile): the first wgmma overwrites acc. On return the last a_buffers - 1 wgmmas may still
/// run (across k-tiles too where the tile carries_wgmmas: 8 is a multiple of its 4 buffers).
template <class Act, class Dec, int kTokens, int kMaxSlot, bool kFormed>
__device__ __forceinline__ void multiply_strip(const uint8_t* codes_smem, int lane,
                                               const typename Dec::template Quant<Act>& q,
                                               uint64_t desc, int first, bool accumulate,
                                               uint32_t (&a)[kMaxABuffers][4],
                                               float (&acc)[TokenTile<kTokens>::kAcc]) {
  // A strip past N decodes whatever its slot holds (never copied for it): each output row
  // depends only on its own weight row, and those rows are never stored.
  uint32_t raw[Dec::kRawWords];
  Dec::read_codes(codes_smem, lane, raw);
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) {
    uint32_t(&buf)[4] = a[(first + j) % a_buffers<Dec, kTokens, kMaxSlot, kFormed>()];
    Dec::template decode_subtile<Act>(raw, j, q, buf);
    wgmma_fence();  // the decode wrote registers this wgmma reads
    wgmma_m64nNk16<Act, kTokens>(acc, buf, desc + subtile_descriptor_offset<kTokens>(j),
                                 accumulate || j > 0);
    wgmma_commit();
    wgmma_wait<a_buffers<Dec, kTokens, kMaxSlot, kFormed>() - 1>();
  }
}

/// The epilogue's staging of one warp's strip (rows strip_row .. + 15) in ys, token-major with
/// y_stride elements a token: out(acc) of the first 8 * chunks tokens, as Act. The accumulators of
/// 8 tokens x 8 rows (acc[4c + 2h], acc[4c + 2h + 1]: rows 8h + lane / 4, tokens
/// 8c + 2 (lane % 4) + 0, 1) are an 8x8 fragment, so a transposing stmatrix writes them
/// token-major, each token's 8 rows as 16 bytes: one instruction for 4 fragments (chunks c and
/// c + 1) in place of 16 two-byte stores, and one conversion a pair. A y_stride of 8 elements
/// past a multiple of 64 (TokenTile::kYStride) puts the 8 rows of a fragment in 8 bank groups.
/// Whole warp, warp-uniform arguments; chunks rounded up to even are written (ys holds them).
template <class Act, int kAcc, class Out>
__device__ __forceinline__ void stage_y_strip(const float (&acc)[kAcc], unsigned short* ys,
                                              int y_stride, int strip_row, int chunks, int lane,
                                              Out out) {
  static_assert(kAcc % 8 == 0, "whole chunk pairs (16 tokens) per stmatrix");
  // The fragment whose row this lane addresses: chunk c + frag / 2, row half frag % 2.
  const int frag = lane >> 3;
  const uint32_t lane_row =
      smem_addr(ys + (8 * (frag >> 1) + (lane & 7)) * y_stride + strip_row + 8 * (frag & 1));
#pragma unroll
  for (int c = 0; c < kAcc / 4; c += 2) {
    if (c < chunks) {
      uint32_t pairs[4];
#pragma unroll
      for (int f = 0; f < 4; ++f) {
        const int i = 4 * (c + (f >> 1)) + 2 * (f & 1);
        pairs[f] = ActTraits<Act>::pack_rn(out(acc[i]), out(acc[i + 1]));
      }
      stmatrix_x4_trans(lane_row + 2 * 8 * c * y_stride, pairs);
    }
  }
}

/// One work item: row block `row_block` of one expert times t.count tokens. Whole block
/// (ends with __syncthreads). tma: x comes by TMA (the kernel's reading of p.x_tma). kFormed,
/// kTrellis: the kernel holds the formed-weight (and trellis) decoders (its fixed ring depth is
/// over those it holds). The wgmmas multiply in MmaAct (fp16 for the trellis decoders, whose x
/// is the rotated one, x_rotate.cuh); y is in Act.
template <class Act, class Dec, bool kFormed, int kTokens, int kBlocks, int kWarpStrips,
          int kMaxSlot, bool kTrellis>
__device__ __forceinline__ void run_item(const GemmProblem& p, const ExpertParams& ep,
                                         int row_block, const XTile& t, unsigned short* y_rows,
                                         unsigned char* stages, bool tma, const CUtensorMap* x_map,
                                         uint32_t x_bars, uint32_t& x_phases,
                                         const NextItem& next) {
  using Tile = TokenTile<kTokens, kWarpStrips>;
  using MAct = MmaAct<Act, Dec>;
  constexpr int kStripsPerWarp = Tile::kStripsPerWarp;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  // Strip b of the warp: strip local[b] of the row block = rows 16 (warp % 4) .. + 15 of m64
  // block kStripsPerWarp (warp / 4) + b. Strips past N still join their warpgroup's wgmmas
  // (warpgroup-wide) with whatever their slot holds; their rows are never stored.
  int local[kStripsPerWarp], strip[kStripsPerWarp];
  bool has_strip[kStripsPerWarp];
  const uint8_t* strip_codes[kStripsPerWarp];
#pragma unroll
  for (int b = 0; b < kStripsPerWarp; ++b) {
    local[b] = (warp / kWarpgroupWarps) * kStripsPerWarp * kM64Strips + b * kM64Strips +
               warp % kWarpgroupWarps;
    strip[b] = row_block * Tile::kStrips + local[b];
    has_strip[b] = strip[b] < p.n_strips;
    strip_codes[b] =
        ep.codes + static_cast<int64_t>(has_strip[b] ? strip[b] : 0) * p.k_tiles * Dec::kTileBytes;
  }
  // The ring's geometry: the item's own decoder's (own_ring), else the launch's largest slot.
  constexpr bool kOwnRing = own_ring<kTokens>();
  const int slot_bytes = kOwnRing ? Dec::kTileBytes : p.a_slot_bytes;
  const int stage_size = stage_bytes<kTokens, kWarpStrips>(slot_bytes);
  const int n_stages = ring_stages<kTokens, kBlocks, kWarpStrips>(slot_bytes);
  constexpr int kFixedDepth =
      kOwnRing ? ring_depth(ring_stages<kTokens, kBlocks, kWarpStrips>(Dec::kTileBytes))
               : fixed_ring_depth<kTokens, kBlocks, kWarpStrips, kMaxSlot, kFormed, kTrellis>();
  const int depth = kFixedDepth > 0 ? kFixedDepth : ring_depth(n_stages);
  const bool overlap = ring_overlaps(n_stages);
  auto code_slot = [&](unsigned char* stage, int b) {
    return stage + Tile::kXStageBytes + local[b] * slot_bytes;
  };
  // x by TMA (tma): thread 0 issues both halves of a stage, which complete on the stage's
  // mbarrier (x_bars + 8 s; its phase parity is bit s of x_phases, the same in every thread).
  // The box holds kTokens rows from the item's first: rows past its tokens belong to the next
  // expert (their output columns are never stored), rows past m and columns past K are zero.
  // The previous item's epilogue wrote and read this ring through the generic proxy: each
  // thread fences its accesses before the barrier that precedes the first TMA write.
  if (tma) {
    fence_proxy_async();
    __syncthreads();
  }
  auto fill = [&](int kt, int s) {
    unsigned char* stage = stages + s * stage_size;
    if (tma) {
      if (threadIdx.x == 0) {
        const uint32_t bar = x_bars + 8 * s;
        mbarrier_arrive_expect_tx(bar, Tile::kXStageBytes);
#pragma unroll
        for (int h = 0; h < 2; ++h)
          tma_load_2d(smem_addr(stage) + h * Tile::kXHalfBytes, x_map, kt * kTileCols + h * kHalfK,
                      t.row, bar);
      }
    } else {
      fill_x<kTokens>(stage, t, kt);
    }
#pragma unroll
    for (int b = 0; b < kStripsPerWarp; ++b)
      if (has_strip[b])
        Dec::copy_codes(strip_codes[b] + static_cast<int64_t>(kt) * Dec::kTileBytes,
                        code_slot(stage, b), lane);
  };

  // Not initialised on purpose: the first wgmma of each strip overwrites them (scale-d = 0);
  // a zero fill here would make ptxas serialize every wgmma of the kernel (C7515).
  float acc[kStripsPerWarp][Tile::kAcc];

  // k-tiles 0 .. depth - 1 into stages 0 .. depth - 1, one group each.
  for (int s = 0; s < depth; ++s) {
    if (s < p.k_tiles) fill(s, s);
    cp_async_commit();
  }
  // Scales and zeros. The two-block tiles (128 registers) and the 256-token tile take 32-bit
  // entry arithmetic (grouped_gemm bounds an expert's entries below 2^30) and unpredicated
  // loads (a strip past N reads strip 0's, the last k-tile k-tile 0's again, never used): the
  // 64-bit predicated form took ~20 instructions per strip and k-tile of the 32-token tile's
  // ~270 (SASS, bench/results/s30-2026-12-04/call4). H200 A/B: the two-block tiles' int2/3/4
  // rows 0.93-0.98x the time, int8 0.91-0.95x (call 6); the 256-token tile 0.95-0.97x at Mixtral
  // T = 1024, 0.97-1.02x at T = 4096 and 16384 (call 7). The 64-, 96- and 128-token one-block
  // tiles keep the 64-bit predicated form: the lean one took them to 1.01-1.09x (call 5).
  constexpr bool kLeanQuant = kBlocks == 2 || kTokens == 256;
  using QuantIndex = std::conditional_t<kLeanQuant, uint32_t, int64_t>;
  int quant_strip[kStripsPerWarp];
#pragma unroll
  for (int b = 0; b < kStripsPerWarp; ++b)
    quant_strip[b] = kLeanQuant && !has_strip[b] ? 0 : strip[b];
  typename Dec::RawQuant rq[kStripsPerWarp];
  // Per-item constants (vq1.5's and vq2's table entry): a strip past N takes strip 0's (its sums
  // are not stored).
  ItemQuantOf<MAct, Dec> item[kStripsPerWarp];
#pragma unroll
  for (int b = 0; b < kStripsPerWarp; ++b)
    item[b] = Dec::template prepare_item<MAct>(ep, has_strip[b] ? strip[b] : 0, lane);
  auto load_quant = [&](int b, int kt, bool pred) {
    Dec::template load_quant<QuantIndex>(ep, quant_strip[b], kt, lane, rq[b], kLeanQuant || pred);
  };
#pragma unroll
  for (int b = 0; b < kStripsPerWarp; ++b) load_quant(b, 0, has_strip[b]);

  // The barrier of k-tile kt: group kt (k-tile kt) has landed for this thread (depth groups
  // are in flight), the proxy fence hands it (and any synchronous x stores) to the async
  // proxy, the barrier makes it everyone's; then the stage of k-tile kt + depth - n_stages is
  // refilled. Code slots are read with plain loads, complete before the barrier.
  int read_stage = 0;       // stage of k-tile kt, the one publish(kt) waits for
  int write_stage = depth;  // stage of k-tile kt + depth
  auto publish = [&](int kt) {
    cp_async_wait_oldest(depth);
    if (tma) {
      mbarrier_wait(x_bars + 8 * read_stage, (x_phases >> read_stage) & 1u);
      x_phases ^= 1u << read_stage;
    }
    fence_proxy_async();
    __syncthreads();
    if (kt + depth < p.k_tiles) fill(kt + depth, write_stage);
    cp_async_commit();  // possibly empty: one group per k-tile keeps the count above exact
    write_stage = write_stage + 1 < n_stages ? write_stage + 1 : 0;
  };

  publish(0);
  uint32_t a[kMaxABuffers][4];  // A buffers: wgmma n of a k-tile reads a[n % a_buffers]
  for (int kt = 0; kt < p.k_tiles; ++kt) {
    const bool more = kt + 1 < p.k_tiles;
    unsigned char* stage = stages + read_stage * stage_size;
    const uint64_t desc = x_descriptor(smem_addr(stage));
#pragma unroll
    for (int b = 0; b < kStripsPerWarp; ++b) {
      const auto q = Dec::template prepare<MAct>(ep, rq[b], item[b]);
      // The next k-tile's scales load while this one multiplies (one set of registers).
      load_quant(b, more ? kt + 1 : 0, more && has_strip[b]);
      multiply_strip<MAct, Dec, kTokens, kMaxSlot, kFormed>(code_slot(stage, b), lane, q, desc,
                                                            b * kSubtiles, kt > 0, a, acc[b]);
    }
    // The barrier of k-tile kt + 1 runs while this k-tile's last wgmma still does when the
    // refill after it targets k-tile kt - 1 (ring_overlaps: drained at its own end), not kt.
    // Below 256 tokens every k-tile ends drained: a wgmma in flight across the loop's back edge
    // would let the next iteration redefine its input registers, and ptxas would serialize them
    // all. The 256-token tile's fixed buffer indices let its last wgmmas run on into k-tile
    // kt + 1's decode (carries_wgmmas: the kernels without the formed decoders).
    read_stage = read_stage + 1 < n_stages ? read_stage + 1 : 0;  // now k-tile kt + 1's
    if (!overlap) wgmma_wait<0>();
    if (more) publish(kt + 1);
    if constexpr (!carries_wgmmas<kTokens, kMaxSlot, kFormed>()) {
      wgmma_wait<0>();
#pragma unroll
      for (int b = 0; b < kStripsPerWarp; ++b) fence_accumulators(acc[b]);
    }
  }
  if constexpr (carries_wgmmas<kTokens, kMaxSlot, kFormed>()) {
    wgmma_wait<0>();
#pragma unroll
    for (int b = 0; b < kStripsPerWarp; ++b) fence_accumulators(acc[b]);
  }
  const NextItem::Draw drawn = next.draw();  // published after the epilogue (work_queue.cuh)
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue: y tile [token][row] in the (now idle) ring, then 16-byte rows of y.
  const int chunks = ceil_div(t.count, 8);
  auto* ys = reinterpret_cast<unsigned short*>(stages);
#pragma unroll
  for (int b = 0; b < kStripsPerWarp; ++b)
    if (has_strip[b])
      stage_y_strip<Act>(acc[b], ys, Tile::kYStride, local[b] * kTileRows, chunks, lane,
                         [](float sum) { return output_scaled<Dec>(sum); });
  next.publish(drawn);
  __syncthreads();
  store_y_tile<Tile::kRows>(ys, Tile::kYStride, t.count, row_block * Tile::kRows, p.n, y_rows);
}

// kBlocks per SM: one, or two (128 registers, half the shared memory each) for the 2/3/4-bit
// decoders at 32 and 64 tokens, and int8 at 32 tokens with one strip per warp (max_slot_bytes).
// kWarpStrips: strips per warp (TokenTile); kMaxSlot: the largest code slot this instantiation
// decodes (launch_one_strip). kRowSplit: the launch takes the rows of each expert that p's row
// split gives it (launch_with_tail); a separate instantiation, so that the
// launches that do not split run the kernel as it was before the split existed.
// kFormed: with the formed-weight decoders (with_decoder), for banks that hold such experts.
// kTrellis (with kFormed): the trellis experts' launch (launch_trellis), which runs those alone
// and traps on any other (tile_launches gives it only the trellis decoders' mask).
template <class Act, bool kFormed, int kTokens, int kBlocks, bool kRowSplit = false,
          int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>(), bool kTrellis = false>
__global__ void __launch_bounds__(kBlockThreads, kBlocks)
    grouped_gemm_wgmma_kernel(const GemmProblem p, const __grid_constant__ CUtensorMap x_map) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(kBlockWarps == 2 * kWarpgroupWarps, "a block is two warpgroups");
  static_assert(kWarpgroupWarps == kM64Strips, "a warp decodes one strip per m64 block");
  extern __shared__ __align__(16) unsigned char smem[];
  // The ring starts on the next 1024-byte boundary of the shared address space: the 128-byte
  // swizzle pattern is anchored there (descriptor base offset 0).
  const uint32_t ring = smem_addr(smem) + static_cast<uint32_t>(schedule_smem_bytes(p.num_experts));
  unsigned char* stages = smem + schedule_smem_bytes(p.num_experts) +
                          ((kSwizzleAtomBytes - ring % kSwizzleAtomBytes) % kSwizzleAtomBytes);
  // One mbarrier per ring stage for the TMA fills of x, published by the schedule's barrier.
  __shared__ __align__(8) uint64_t x_bar_storage[kMaxStages];
  const uint32_t x_bars = smem_addr(x_bar_storage);
  uint32_t x_phases = 0;
  const bool x_tma = TokenTile<kTokens>::kXByTma && p.x_tma != 0;
  if (x_tma && threadIdx.x == 0) {
    for (int s = 0; s < kMaxStages; ++s) mbarrier_init(x_bars + 8 * s, 1);
    mbarrier_init_fence();
  }
  constexpr int kStrips = TokenTile<kTokens, kWarpStrips>::kStrips;
  const ItemList items = build_tile_items<kStrips, kTokens, kRowSplit>(p, smem);
  // Items after a block's first go to whichever block is free (work_queue.cuh) where the
  // launcher gave the counters (long items: kWgmmaQueueMinKTiles), else the static order; each
  // item publishes the block's next one in the slot of its parity (the other may still be read).
  __shared__ long long next_item[2];
  int parity = 0;
  for (long long i = blockIdx.x; i < items.total; i = next_item[parity], parity ^= 1) {
    const TileItem it = tile_item<kStrips, kTokens>(p, items.at(i));
    const NextItem next{p.work, i, items.total, &next_item[parity]};
    with_expert_decoder<kFormed, kTrellis>(
        p.blob, p.descs[it.expert], [&](auto decoder, const ExpertParams& ep) {
          using Dec = decltype(decoder);
          // Experts with larger tiles get no items in a launch of this
          // tile (build_tile_items), nor do other decoders' in a trellis launch (tile_decoders).
          if constexpr (RotatesX<Dec>::value != kTrellis)
            __trap();
          else if constexpr (Dec::kTileBytes <= kMaxSlot)
            run_item<Act, Dec, kFormed, kTokens, kBlocks, kWarpStrips, kMaxSlot, kTrellis>(
                p, ep, it.row_block, it.x, it.y_rows, stages, x_tma, &x_map, x_bars, x_phases,
                next);
        });
  }
  leave_work_queue(p.work, items.total);
#else
  // Never launched: grouped_gemm_wgmma_available is false wherever this body is what runs.
  __trap();
#endif
}

/// The persistent grid of the (kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot) kernel for p's
/// code slots.
template <class Act, bool kFormed, int kTokens, int kBlocks, bool kRowSplit = false,
          int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>(), bool kTrellis = false>
cudaError_t tile_grid(const GemmProblem& p, GridSize* grid) {
  // Occupancy depends on the code slot size: one cached grid per tile size (log2 bucket), per
  // kernel (this function's instantiation).
  static GridCache cache;
  const auto* kernel = reinterpret_cast<const void*>(
      grouped_gemm_wgmma_kernel<Act, kFormed, kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot,
                                kTrellis>);
  int size_class = 0;
  while ((256 << size_class) < p.a_slot_bytes) ++size_class;
  return persistent_grid(kernel,
                         max_smem_bytes<kTokens, kBlocks, kWarpStrips, kMaxSlot>(kFormed, kTrellis),
                         ring_smem_bytes<kTokens, kBlocks, kWarpStrips>(
                             max_experts<kTokens>(), 256 << size_class, kFormed, kTrellis),
                         size_class, &cache, grid);
}

/// The tensor map of x ([m, k] 16-bit elements, rows of k) in boxes of 64 k x box_rows rows with
/// the 128-byte swizzle fill_x also writes, zeros out of bounds. False where K % 8 != 0 (rows not
/// 16-byte multiples: the kernel then loads x element by element) or the driver lacks TMA
/// (cp.async).
inline bool x_tensor_map(const GemmProblem& p, int box_rows, CUtensorMap* map) {
  if (p.k % 8 != 0) return false;
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                             cudaEnableDefault, &found);
#else
    const cudaError_t err =
        cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &fn, cudaEnableDefault, &found);
#endif
    // A failed lookup is not sticky: clear it so that the caller's next cudaGetLastError does
    // not report it (it runs once per process).
    if (err != cudaSuccess) (void)cudaGetLastError();
    if (err != cudaSuccess || found != cudaDriverEntryPointSuccess) fn = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (encode == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(p.k), static_cast<cuuint64_t>(p.m)};
  const cuuint64_t row_bytes[1] = {static_cast<cuuint64_t>(p.k) * 2};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(kHalfK), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t steps[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(p.x), dims, row_bytes,
                box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/// Launches the (kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot) kernel on `grid`
/// (tile_grid's).
template <class Act, bool kFormed, int kTokens, int kBlocks, bool kRowSplit = false,
          int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>(), bool kTrellis = false>
cudaError_t launch(const GemmProblem& problem, const GridSize& grid, cudaStream_t stream) {
  // The kernel runs only experts whose tiles fit its slots (kMaxSlot: at two blocks per SM it is
  // compiled for 2/3/4-bit decoders only, or with int8 at one strip per warp): a larger tile in
  // the bank would leave its rows unwritten.
  if (problem.a_slot_bytes > kMaxSlot || problem.num_experts > max_experts<kTokens>())
    return cudaErrorInvalidValue;
  const auto* kernel = reinterpret_cast<const void*>(
      grouped_gemm_wgmma_kernel<Act, kFormed, kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot,
                                kTrellis>);
  GemmProblem p = problem;
  CUtensorMap x_map{};
  p.x_tma = TokenTile<kTokens>::kXByTma && x_tensor_map(p, kTokens, &x_map) ? 1 : 0;
  void* args[] = {&p, &x_map};
  return launch_grouped_kernel_args(kernel, grid,
                                    ring_smem_bytes<kTokens, kBlocks, kWarpStrips>(
                                        p.num_experts, p.a_slot_bytes, kFormed, kTrellis),
                                    args, stream);
}

template <class Act, bool kFormed, int kTokens, int kBlocks, bool kRowSplit = false,
          int kWarpStrips = default_warp_strips(kTokens),
          int kMaxSlot = max_slot_bytes<kTokens, kBlocks, kWarpStrips>(), bool kTrellis = false>
cudaError_t launch(const GemmProblem& p, cudaStream_t stream) {
  GridSize grid;
  const cudaError_t err =
      tile_grid<Act, kFormed, kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot, kTrellis>(p,
                                                                                            &grid);
  if (err != cudaSuccess) return err;
  return launch<Act, kFormed, kTokens, kBlocks, kRowSplit, kWarpStrips, kMaxSlot, kTrellis>(p, grid,
                                                                                            stream);
}

/// The two-block 32-token tile with one strip per warp, compiled for 2/3/4-bit slots alone where
/// the bank has no int8 expert: with the int8 decoder in the same kernel ptxas allocates the
/// whole kernel differently, and Mixtral's 2/3/4-bit launches of it ran 1.03-1.05x the time
/// (H200, bench/results/s28-2026-12-04/call4).
template <class Act, bool kFormed>
cudaError_t launch_one_strip(const GemmProblem& p, cudaStream_t stream) {
  return p.a_slot_bytes <= kWgmmaTwoBlockMaxSlotBytes
             ? launch<Act, kFormed, 32, 2, false, 1, kWgmmaTwoBlockMaxSlotBytes>(p, stream)
             : launch<Act, kFormed, 32, 2, false, 1>(p, stream);
}

/// The token tile of a launch: 64 where the experts it takes (those with min_tokens tokens or
/// more) average kMaxMeanFor64 tokens or fewer. Counts exist only on device, so the host
/// estimates that mean from what it knows: at most min(E, m / min_tokens) experts qualify
/// (each holds min_tokens of the m rows), and spreading all m rows over that many gives
///   mean = ceil(m / min(E, max(1, m / min_tokens))),
/// the exact mean under even routing when all m rows come here, and never below min_tokens.
/// The bound sits well under 64 because routing is not even: an expert above 64 tokens takes
/// two 64-token blocks and has its weights decoded twice (H100, Mixtral int4 at a mean of 64:
/// the 64 tile took 1017 us where the 128 tile took 854 us).
/// Banks whose code slots the two-block kernels serve (max_slot_bytes<64, 2>, 2/3/4-bit) take the
/// 32-token tile up to a mean of 20 and the 64-token one up to 48, both at two blocks per SM,
/// when the items, estimated as (those experts) x (row blocks), are at least that kernel's grid
/// (launch_grouped_gemm_wgmma): the second block per SM pays off only with items to run in it,
/// and has a shallower ring. A/B on the H200 (bench/results/s9-2026-12-02): the two-block
/// 64-token tile took 0.80-0.87x the time of the one-block one at means of 24-36 and 0.62-0.88x
/// that of the 128-token tile at 48; at 64 it was mixed (int2/int4 0.91-0.98x, int3 up to 1.14x),
/// above it slower (1.05-1.27x at 72-128). Without the item condition (32-token tile): Mixtral,
/// whose w2 has 8 x 16 items, ran 0.95-1.06x the time of the 64-token tile.
/// Banks with int8 experts (2 KB slots) take the 32-token two-block tile too up to a mean of 20,
/// in its one-strip form (128-row items), at any item count: its own instantiation for int8 slots
/// compiles without serialising the wgmmas (128 registers; 164 / 848 bytes of spill stores / loads
/// per thread on sm_90a). H200 A/B against the one-block 64-token tile
/// (bench/results/s28-2026-12-04/call5; int8:g128 / mixed:rr): Mixtral T = 64 0.95 / 0.94x the
/// time, OLMoE T = 128 and 160 0.97 / 0.95x, DeepSeek-V2-Lite T = 160 0.97 / 0.97x, Qwen3 T = 256
/// 0.97 / 0.91x, DeepSeek-V3 T = 512 int8 0.97x. kAuto's decode/tile boundary for int8
/// (kernel_split.cuh) stays: against this tile the decode kernel still ran 0.80-0.98x its time at
/// means 9-11 (call 7). Where the 32-token tile's items fall short of its grid, the launch runs it
/// with 128-row items (one strip per warp: twice the items) at two blocks per SM instead of the
/// one-block 64-token tile. H200 A/B (bench/results/s28-2026-12-04/call1; only Mixtral's down
/// projection, 8 experts x 16 row blocks, has so few items): Mixtral T = 64 (a mean of 16) int2/3/4
/// 0.92-0.95x the time, T = 40 0.98-1.00x. The same for the 64-token tile (means 21-48) lost at 24
/// and 32 (1.01-1.04x) and won 0.97x at 48; for the one-block 96-token tile's launches (128-row
/// items of the 96-token tile at two blocks per SM) it lost 1.07-1.10x at means of 64 and 75.
constexpr int64_t kMaxMeanFor64 = 40;
/// Above kMaxMeanFor64 (and the two-block tiles' bounds) the one-block tile has 96 tokens up to
/// a mean of kMaxMeanFor96, 128 above: with a third of the 96 columns padding at a mean of 64
/// where the 128-token tile pads half of them (its wgmma work, which bounds that tile there:
/// Mixtral int4 at T = 256, a mean of 64, ran at 2.9x the compute floor, session 10's sweep),
/// as long as few experts overflow into a second block. H200 A/B against the 128-token tile
/// (bench/results/s12-2026-12-02, tile96/ and tile96-bounds/): 0.86-0.97x the time at means
/// of 64 and 76 on Mixtral, OLMoE, Qwen3 and DeepSeek-V3 (Qwen3 int4 1.01x at 64), bf16 and
/// int8 on DeepSeek-V2-Lite at 48 0.92x and 0.97x; at 80 OLMoE (64 experts: more of them
/// beyond 96) lost (1.08-1.19x). Taking means 41-48 from the two-block 64-token tile lost
/// everywhere (1.08-1.54x): those bounds stay.
constexpr int64_t kMaxMeanFor96 = 76;
constexpr int64_t kMaxMeanFor32TwoBlock = 20;
constexpr int64_t kMaxMeanFor64TwoBlock = 48;
/// Banks of 2/3/4-bit codes (max_slot_bytes<256, 1>), or with int8 experts too where no expert has
/// a formed-weight decoder (kWgmma256Int8SlotBytes), and at most max_experts<256>() experts
/// take the 256-token tile at a mean of kMinMeanFor256 tokens per expert or more where K is at
/// least kMinKFor256, and from kMinMeanFor256ShortK at any K. It decodes each weight once per
/// 256 tokens, but an expert's last token block is padded to 256 columns of wgmma work and an
/// item carries a larger pipeline fill and epilogue, which only long items and many tokens
/// amortise. H200 A/B against the 128-token tile (bench/results/s10-2026-12-02), with this
/// rule: Mixtral (K = 4096, 14336) at means 256-4096 int3 0.90-0.93x the time, int4 0.96-1.00x,
/// int2 0.97-1.03x; DeepSeek-V2-Lite and OLMoE at means 1536-2048 int3 0.92-0.93x, int2/int4
/// 0.98-1.01x. With the 256-token tile forced at means 256-512 and K <= 2048 (Qwen3, OLMoE,
/// DeepSeek-V2-Lite): 0.97-1.14x, int2/int4 1.04-1.14x. The bounds come from these five shapes.
constexpr int64_t kMinMeanFor256 = 256;
constexpr int kMinKFor256 = 4096;
constexpr int64_t kMinMeanFor256ShortK = 1536;

/// The launch's tile. Where `items` do not reach the two-block grid, the two-block 32-token tile
/// runs 128-row items (one strip per warp: twice as many) and the 64-token one gives way to the
/// one-block `fallback`.
struct TokenTileChoice {
  int tokens;       ///< 32, 64, 96, 128 or 256
  int blocks;       ///< blocks per SM: 2 (code slots of max_slot_bytes<64, 2>, or int8) or 1
  int fallback;     ///< tokens of the one-block tile where neither two-block tile runs
  int warp_strips;  ///< strips per warp of the two-block tile: 2, or 1 (only) for int8 slots
  int64_t items;    ///< estimated items of 256 rows (one token block per expert)
};

inline TokenTileChoice token_tile(const GemmProblem& p) {
  const int64_t experts = tile_launch_experts(p.m, p.num_experts, p.min_tokens);
  const int64_t mean = (p.m + experts - 1) / experts;
  const int64_t items = experts * ceil_div(p.n_strips, TokenTile<128>::kStrips);
  const bool long_k = p.k >= kMinKFor256;
  const int max_slot_256 = p.formed != 0 ? max_slot_bytes<256, 1>() : kWgmma256Int8SlotBytes;
  if (mean >= (long_k ? kMinMeanFor256 : kMinMeanFor256ShortK) && p.a_slot_bytes <= max_slot_256 &&
      p.num_experts <= max_experts<256>())
    return {256, 1, 256, 1, items};
  const int one_block = mean <= kMaxMeanFor64 ? 64 : mean <= kMaxMeanFor96 ? 96 : 128;
  if (p.a_slot_bytes <= max_slot_bytes<64, 2>()) {
    if (mean <= kMaxMeanFor32TwoBlock) return {32, 2, one_block, 2, items};
    if (mean <= kMaxMeanFor64TwoBlock) return {64, 2, one_block, 2, items};
  } else if (p.a_slot_bytes <= max_slot_bytes<32, 2, 1>() && mean <= kMaxMeanFor32TwoBlock) {
    return {32, 2, one_block, 1, items};
  }
  return {one_block, 1, one_block, 2, items};
}

/// The kTokens tile (128 or 256, one block per SM) for every row but the experts' short last
/// token blocks, of at most kTail tokens, then the two-block kTail tile (32 or 64) for those.
/// Why: the tensor cores multiply every column of a token block, so a last block of a few
/// tokens costs a whole kTokens item. With routing spread evenly the counts sit close to the
/// mean, and where the mean is a multiple of the tile (Mixtral at T = 4096: 1024 +- 28 tokens
/// per expert in 256-token blocks) about half of the experts end in such a block: ~12 % of the
/// launch's wgmma work at T = 4096, ~50 % at T = 1024. The kTail tile decodes those rows'
/// weights once more but multiplies kTail columns. Its items (the short blocks' experts x 256-
/// row blocks) each run a whole K, so where they are fewer than its grid the launch is one
/// round of long items on part of the SMs: the split is taken only where tail_items, the
/// host's estimate (half the active experts, the fraction with a short block at a mean that is
/// a multiple of the tile, times the row blocks), reach the kTail tile's grid, as the two-block
/// tiles' own rule has it. A/B on the H200 (bench/results/s17-2026-12-03; int2/3/4 g128, five
/// shapes, T = 1 .. 16384): DeepSeek-V3 at T = 4096 and 16384 0.85-0.91x the time, Mixtral at
/// T = 1024 0.88-0.93x and 4096 0.95-0.97x, Qwen3 at T = 4096 0.95-1.00x, but DeepSeek-V2-Lite
/// (K = 2048 and 1408, 128-token tile) 1.02-1.05x where its gate/up projection splits: at
/// T = 1024 (96 +- 9 tokens per expert) hardly any block is short, so that is the cost of the
/// tail launch alone (a launch, and the next kernel's start behind it), and at T = 4096 the
/// short-K items it saves are cheap. A bound K >= 4096 on the rule lost as much as it won
/// (bench/results/s18-2026-12-03/ab-tail-rule: DS-V2-Lite 0.95-0.96x, DeepSeek-V3 T = 4096
/// 1.06x, median 1.003x). Splitting every such call instead (int2/int4, T = 1024 and 4096):
/// Mixtral at T = 1024 0.95-0.99x where this rule gave 0.90-0.95x (it leaves the down
/// projection unsplit: 64 tail items of 112 k-tiles).
/// With no short block anywhere the tail launch has no items. Banks whose code slots the
/// two-block tiles do not take (int8, dense) keep one launch.
/// Where the tail items fall short of the kTail tile's grid, but twice as many (128-row items,
/// one strip per warp, as launch_one_strip has it) fill at least 3/4 of the SMs, the tail launch
/// takes those: one round of half-length items on every SM, where the unsplit launch ran each
/// short block as a whole kTokens item. Mixtral's down projection (8 experts x 16 row blocks of
/// 256: 64 estimated tail items, 128 of 128 rows on 132 SMs) is such a launch at T = 1024 (128
/// +- 11 tokens per expert, the 128-token tile) and T = 4096 (the 256-token one). The one-strip
/// 64-token tile runs at one block per SM (kOneStripBlocks): at two, ptxas spills it (408 bytes
/// a thread within its 128 registers; the 32-token one does not spill).
template <int kTail>
constexpr int kOneStripBlocks = kTail == 64 ? 1 : 2;
/// The tail launch launch_with_tail takes: 2 = the two-block tile (256-row items) where the
/// estimated tail_items reach its grid (two_strip_blocks), else 1 = the one-strip tile (128-row
/// items) where twice tail_items reach 3/4 of the SMs (one_strip_blocks / one_strip_per_sm),
/// else 0 = none (one unsplit launch).
constexpr int tail_strips(int64_t tail_items, int two_strip_blocks, int one_strip_blocks,
                          int one_strip_per_sm) {
  if (tail_items >= two_strip_blocks) return 2;
  return 8 * tail_items * one_strip_per_sm >= 3 * int64_t{one_strip_blocks} ? 1 : 0;
}
template <class Act, bool kFormed, int kTokens, int kTail,
          int kMaxSlot = max_slot_bytes<kTokens, 1>()>
cudaError_t launch_with_tail(const GemmProblem& p, int64_t tail_items, cudaStream_t stream) {
  static_assert(kTail == kTokens / 4, "the tail tile is a quarter of the main one");
  static_assert((kTokens & (kTokens - 1)) == 0, "expert_rows takes power-of-two blocks");
  static_assert(max_slot_bytes<kTail, 2>() == kWgmmaTwoBlockMaxSlotBytes,
                "both tail tiles take the 2/3/4-bit slots");
  constexpr int kStrips = default_warp_strips(kTokens);
  constexpr int kBlocks1 = kOneStripBlocks<kTail>;
  if (p.a_slot_bytes > max_slot_bytes<kTail, 2>())
    return launch<Act, kFormed, kTokens, 1, false, kStrips, kMaxSlot>(p, stream);
  GridSize two_strip, one_strip;
  cudaError_t err = tile_grid<Act, kFormed, kTail, 2, true>(p, &two_strip);
  if (err != cudaSuccess) return err;
  if (tail_items < two_strip.blocks) {  // tail_strips reads the one-strip grid only then
    err = tile_grid<Act, kFormed, kTail, kBlocks1, true, 1, kWgmmaTwoBlockMaxSlotBytes>(p,
                                                                                        &one_strip);
    if (err != cudaSuccess) return err;
  }
  const int strips = tail_strips(tail_items, two_strip.blocks, one_strip.blocks, kBlocks1);
  if (strips == 0) return launch<Act, kFormed, kTokens, 1, false, kStrips, kMaxSlot>(p, stream);
  GemmProblem head = p;
  head.rows_part = kHeadRows;
  head.rows_block = kTokens;
  head.tail_rows = kTail;
  err = launch<Act, kFormed, kTokens, 1, true, kStrips, kMaxSlot>(head, stream);
  if (err != cudaSuccess) return err;
  GemmProblem tail = head;
  tail.rows_part = kTailRows;
  return strips == 1 ? launch<Act, kFormed, kTail, kBlocks1, true, 1, kWgmmaTwoBlockMaxSlotBytes>(
                           tail, one_strip, stream)
                     : launch<Act, kFormed, kTail, 2, true>(tail, two_strip, stream);
}

/// launch_grouped_gemm_wgmma for banks with (kFormed) or without formed-weight decoders
/// (with_decoder).
template <class Act, bool kFormed>
cudaError_t launch_decoders(const GemmProblem& problem, cudaStream_t stream) {
  GemmProblem p = problem;
  if (p.k_tiles < kWgmmaQueueMinKTiles) p.work = nullptr;  // the static order
  const TokenTileChoice tile = token_tile(p);
  if (tile.blocks == 2) {
    // Two blocks per SM pay off only with items to run in the second one (and have a
    // shallower ring): below the two-block grid the 32-token tile runs 128-row items (twice as
    // many), the 64-token one gives way to the one-block tile.
    if (tile.warp_strips == 1) return launch_one_strip<Act, kFormed>(p, stream);
    GridSize grid;
    const cudaError_t err = tile.tokens == 32 ? tile_grid<Act, kFormed, 32, 2>(p, &grid)
                                              : tile_grid<Act, kFormed, 64, 2>(p, &grid);
    if (err != cudaSuccess) return err;
    if (tile.items >= grid.blocks)
      return tile.tokens == 32 ? launch<Act, kFormed, 32, 2>(p, grid, stream)
                               : launch<Act, kFormed, 64, 2>(p, grid, stream);
    if (tile.tokens == 32) return launch_one_strip<Act, kFormed>(p, stream);
  }
  switch (tile.fallback) {
    case 64:
      return launch<Act, kFormed, 64, 1>(p, stream);
    case 96:
      return launch<Act, kFormed, 96, 1>(p, stream);
    case 128:
      return launch_with_tail<Act, kFormed, 128, 32>(p, tile.items / 2, stream);
    default:
      if constexpr (!kFormed) {
        if (p.a_slot_bytes > max_slot_bytes<256, 1>())
          return launch_with_tail<Act, false, 256, 64, kWgmma256Int8SlotBytes>(p, tile.items / 2,
                                                                               stream);
      }
      return launch_with_tail<Act, kFormed, 256, 64>(p, tile.items / 2, stream);
  }
}

/// The trellis experts' launch (p.x_rotated set): the 128-token tile with
/// one strip per warp (128-row items), x the rotated one (p.x_rotated, x_rotate.cuh; by TMA
/// where K % 8 == 0), fp16 wgmmas whatever the call's type, y in Act. Each weight is decoded
/// once per 128 tokens (the mma.sync kernel: per 64). Why one strip per warp: a trellis strip's
/// codes take 16-32 registers a lane (each lane holds its two rows' whole strings,
/// TrellisDecoder::kRawWords) where an int4 strip's take 8, and the two-strip tile already
/// runs at 254-255 registers; with one strip the accumulators are 64 a thread, not 128.
template <class Act>
cudaError_t launch_trellis(const GemmProblem& problem, cudaStream_t stream) {
  constexpr int kTokens = 128;  // its TMA boxes of x~ span this many rows
  static_assert(kTokens <= kRotatedXZeroedRows, "x~ is zeroed for a box past the experts' rows");
  GemmProblem p = problem;
  p.x = p.x_rotated;
  if (p.k_tiles < kWgmmaQueueMinKTiles) p.work = nullptr;  // the static order
  return launch<Act, true, kTokens, 1, false, 1, kWgmmaTwoBlockMaxSlotBytes, true>(p, stream);
}

}  // namespace wg

template <class Act>
cudaError_t launch_grouped_gemm_wgmma(const GemmProblem& p, cudaStream_t stream) {
  // Which kernel: by x_rotated, not by tile_decoders, as the call's first tile launch also takes
  // the decoders its bank's format_mask does not name (tile_item_decoders), of either family;
  // the kernel traps on the items of those it lacks (with_decoder).
  if (p.x_rotated != nullptr) return wg::launch_trellis<Act>(p, stream);
  return p.formed != 0 ? wg::launch_decoders<Act, true>(p, stream)
                       : wg::launch_decoders<Act, false>(p, stream);
}

template <class Act>
cudaError_t grouped_gemm_wgmma_available(bool* available) {
  // Per device: 0 = not asked yet, 1 = no, 2 = yes.
  static std::atomic<int> known[GridCache::kMaxDevices] = {};
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const bool cacheable = device >= 0 && device < GridCache::kMaxDevices;
  if (cacheable) {
    const int v = known[device].load(std::memory_order_relaxed);
    if (v != 0) {
      *available = v == 2;
      return cudaSuccess;
    }
  }
  int major = 0, minor = 0;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (err != cudaSuccess) return err;
#if defined(QMOE_HAVE_SM90A)
  // sm_90a code runs on compute capability 9.0 only, and exists only in a build whose
  // architectures name 90a (CMake defines QMOE_HAVE_SM90A; a plain sm_90 build holds the
  // __trap() body).
  bool ok = major == 9 && minor == 0;
#else
  bool ok = false;
#endif
  if (ok) {
    // The variant the launch would run: ptxVersion < 90 means PTX JIT-compiled from
    // compute_80 (CUDA_FORCE_PTX_JIT=1), i.e. the __trap() body. All token tiles are
    // compiled in the same unit for the same targets: asking one answers for both.
    cudaFuncAttributes attr{};
    err = cudaFuncGetAttributes(
        &attr, reinterpret_cast<const void*>(wg::grouped_gemm_wgmma_kernel<Act, false, 128, 1>));
    if (err != cudaSuccess) return err;
    ok = attr.ptxVersion >= 90;
  }
  if (cacheable) known[device].store(ok ? 2 : 1, std::memory_order_relaxed);
  *available = ok;
  return cudaSuccess;
}

}  // namespace qmoe::dev
