// cuda/kernels/kernel_split.cuh — which kernel takes which experts in one grouped_gemm call
// (KernelChoice and decode_max_tokens, include/qmoe/gpu.hpp; docs/dispatch.md §4). Host code,
// shared by grouped_gemm.cu and the tests (it runs without a device).
#pragma once
#include <climits>
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "qmoe/gpu.hpp"

namespace qmoe::dev {

/// The decode kernel takes the experts with 1..decode_max tokens, the tile kernel those with
/// more. decode_max = 0: no decode launch; decode_max >= m: no tile launch.
struct KernelSplit {
  int decode_max;
};

/// Without the wgmma kernel (the sm_80 path, whose tile kernel is the mma.sync one), kAuto's
/// per-call choice for every bank: the decode kernel for every expert up to a mean of
/// kMmaSyncDecodeMean tokens per active expert, the per-expert threshold kMmaSyncSplitTokens
/// (two launches) up to a mean of kMmaSyncSplitMean, the tile kernel above. Measured on the
/// H200 running the compute_80 PTX build (no A100 was at hand; bench/results/s32-2026-12-04,
/// calls 1-2): each kernel alone crossed at means of ~14 (int2/int4), ~15-16 (bf16) and 16+
/// (int8); against the per-expert threshold 16 everywhere (the default until session 32) one
/// kernel per call ran 0.79-0.99x the time at means 4-12 (DeepSeek-V3 0.96-1.02x) and
/// 0.84-1.02x at 24. In the band
/// between, the split ran 0.90-1.20x the time of the faster single kernel of each row (faster
/// than both on DeepSeek-V3 and Mixtral's bf16, 1.1-1.2x slower on int4 / int8 of Mixtral,
/// OLMoE and DS-V2-Lite): no rule of one kernel per call beat it on every row, so the band
/// keeps it (the default before).
constexpr int kMmaSyncDecodeMean = 12;
constexpr int kMmaSyncSplitMean = 16;
constexpr int kMmaSyncSplitTokens = 16;
/// Mean tokens per active expert at or below which the per-call choice runs the decode kernel
/// for every expert of a bank with an integer format, above which the tile kernel; lower where
/// the wgmma kernel would take the call with its two-blocks-per-SM 32-token tile.
constexpr int kAdaptiveDecodeMean = 10;
constexpr int kAdaptiveDecodeMeanTwoBlock = 8;
/// The bound for banks of int8 experts alone, whose 16-token decode items take the integer
/// decode (decode_imma): at means of 9-12 kAuto then ran 0.87-0.99x the time of before (the
/// tile kernel above 10), the decode kernel at 14 0.99-1.20x the tile kernel's
/// (bench/results/s26-2026-12-04/mid).
constexpr int kAdaptiveDecodeMeanInt8 = 12;

/// Experts with tokens in a call, at most: min(E, m).
inline int64_t active_experts(const GroupedGemmArgs& a) {
  return a.x.rows < a.bank.num_experts ? a.x.rows : a.bank.num_experts;
}

/// kAuto with decode_max_tokens = 0 (the default): one kernel for every expert of the call,
/// chosen from what the host knows: m rows over at most min(E, m) active experts (a mean of
/// m / min(E, m) tokens each), N and the bank's formats; `sms` is the device's SM count.
/// Measured on the H200 (5 shapes x T = 1..4096, int2/int4/int8/bf16, every fixed threshold
/// 1..64 against each kernel alone: bench/results/kernel-split-2026-12-02): splitting a call's
/// experts between the two kernels is rarely best, each launch then holds part of the experts
/// but pays a whole launch and pipeline fill (Mixtral at 16 tokens per expert: 1.3x the time
/// of the tile kernel alone).
/// - Integer formats: the decode kernel up to a mean of kAdaptiveDecodeMean, the tile kernel
///   above (summed over the rows within 2 % of the best fixed choice per row for int2/int4,
///   4 % for int8). Banks of 2/3/4-bit experts whose items (256 rows of an active expert)
///   fill the wgmma kernel's 32-token grid (two blocks per SM; below it in 128-row items, see
///   two_block_tile) run there at 2/3 of its former time, which moves their boundary to
///   kAdaptiveDecodeMeanTwoBlock (H200, each kernel alone at means 4..12: tile/decode
///   1.14-1.62 at 4, 0.85-1.11 at 6, 0.72-0.94 at 8 but 1.10-1.18 on Mixtral, whose w2 then
///   had too few items for the 32-token tile, 0.60-0.94 at 10 (Mixtral the 0.86-0.94);
///   bench/results/wgmma32-2026-12-02/boundary).
///   Measured again in session 25 with the decode kernel of then (each kernel alone at means
///   4..16 on the five shapes, bench/results/s25-2026-12-03/boundary): at a mean of 8 (one
///   8-token chunk per item, two items for the experts above 8) the decode kernel ran int2 in
///   0.65-0.88x the time of the 32-token tile, int3 0.65-0.95x, int4 0.78-1.11x (Mixtral 0.78,
///   DeepSeek-V3 0.89, DS-V2-Lite 0.95, Qwen3 1.01, OLMoE 1.11); above 8 its 16-token items
///   ran 1.08-2.35x: so the boundary is 8 (was 6).
/// - Dense banks: the wgmma kernel streams bf16 weights faster than the decode kernel (0.8x
///   the time at 1-8 tokens per expert, 92-97 % of the read floor on DeepSeek-V3) once its
///   items (256 rows of an active expert, one SM each) fill at least 3/4 of the SMs (measured:
///   128+ items on 132 SMs faster, 48-66 slower: the decode kernel splits K to keep every SM
///   streaming), and at any item count above the integer rule's mean (the decode kernel reads
///   the weights again per 16 tokens).
/// Without the wgmma kernel: kMmaSyncDecodeMean and kMmaSyncSplitMean (above).
inline KernelSplit adaptive_split(const GroupedGemmArgs& a, bool wgmma, int sms) {
  const int64_t m = a.x.rows;
  const int64_t active = active_experts(a);
  if (!wgmma)
    return {m <= kMmaSyncDecodeMean * active  ? INT_MAX
            : m <= kMmaSyncSplitMean * active ? kMmaSyncSplitTokens
                                              : 0};
  const int64_t items = active * ((a.bank.n + kWgmmaItemRows - 1) / kWgmmaItemRows);
  const uint32_t mask = a.bank.format_mask;
  const uint32_t dense = (1u << kDecoderDenseBF16) | (1u << kDecoderDenseFP16);
  if (mask != 0 && (mask & ~dense) == 0)
    return {4 * items >= 3 * int64_t{sms} || m > kAdaptiveDecodeMean * active ? 0 : INT_MAX};
  // The 32-token tile runs at two blocks per SM: with 256-row items where they reach that grid,
  // else (session 28) with 128-row items, twice as many; counted here where those fill at least
  // 3/4 of it, i.e. the 256-row items 3/4 of the SMs (Mixtral's down projection: 8 x 16 items
  // of 256 rows, 256 of 128 rows on 264 blocks). Until session 32 only 256-row items reaching
  // the grid counted, which kept Mixtral's down projection on the decode kernel at means 9-10:
  // A/B on the H200 (bench/results/s32-2026-12-04/call1), Mixtral T = 33-40 int4 0.91-0.95x the
  // time, int2 0.93-0.98x, int3 0.96-0.98x; int8, mixed:rr and the other shapes unchanged.
  const bool two_block_tile =
      max_tile_bytes(mask) <= kWgmmaTwoBlockMaxSlotBytes && 4 * items >= 3 * int64_t{sms};
  const bool int8_imma =
      mask != 0 && (mask & ~kImmaInt8Mask) == 0 && a.integer_decode != IntegerDecode::kOff;
  const int bound = two_block_tile ? kAdaptiveDecodeMeanTwoBlock
                    : int8_imma    ? kAdaptiveDecodeMeanInt8
                                   : kAdaptiveDecodeMean;
  return {m <= bound * active ? INT_MAX : 0};
}

/// kAuto for a bank with trellis experts (on every device; their tile launch: tile_launches,
/// below): the decode kernel for every expert up to a mean of kTrellisDecodeMean tokens per
/// active expert, the tile kernels for every expert above it. Why: the trellis decode costs
/// ~4-5 instructions a weight (trellis.cuh), and the decode kernel decodes each weight once per
/// 16-token item, the tile kernel once per 64-token item; up to ~16 tokens an expert takes one
/// decode either way, and the decode kernel streams it faster. Measured on an H100, tcq2 / tcq4,
/// each kernel forced, Mixtral and Qwen3 (sessions 42-44: bench/results/s42-2026-12-05/kernels,
/// s43-2026-12-06/means, s44-2026-12-06/split): the tile kernel took 1.85-2.19x the decode
/// kernel's time at a mean of 4, 1.16-1.33x at 12, 0.96-1.08x at 14 (summed over the rows a tie),
/// 0.90-1.00x at 16 and 0.75-0.93x at 18-20; it runs 1.4-1.9x faster at a mean of 64. The
/// per-expert split at 16 tokens (the rule above 13 until session 44) took 1.01-1.17x the tile
/// kernel's time at means 14-20 on every row: its second launch costs more than the decode
/// kernel saves on the few experts of up to 16 tokens.
constexpr int kTrellisDecodeMean = 13;
inline KernelSplit trellis_split(const GroupedGemmArgs& a) {
  return {a.x.rows <= kTrellisDecodeMean * active_experts(a) ? INT_MAX : 0};
}

/// The call's tile launches, as the experts (by decoder: bit i = decoder i, as
/// DeviceBankView::format_mask) each takes. Where the call may run the wgmma kernel's sm_90a
/// code (wgmma_available: the device runs it and a.tile_kernel is not kMmaSync), the experts of
/// int, dense, LUT and vector formats take a wgmma launch; the trellis experts take one of their
/// own (its 128-token tile, fp16 wgmmas against the rotated x) where the tile launch's mean is at
/// least kTrellisWgmmaMinMean tokens per expert, else the mma.sync kernel (64-token tile); with
/// a.tile_kernel kWgmma at any mean. Without the wgmma kernel every expert takes the mma.sync one.
/// A zero mask: no such launch. The bound, measured on an H100 with each tile kernel forced
/// (bench/results/s44-2026-12-06/fit, fit56; tcq2 / tcq3.5 / tcq4, Mixtral and Qwen3, kPrefill):
/// the wgmma trellis launch takes about the same time from a mean of 16 to 64 tokens per expert
/// (its 128-token tile decodes each weight once per expert up to 128 tokens), 1.06-1.35x the
/// mma.sync kernel's up to a mean of 48; from 52, where more experts overflow the mma.sync
/// kernel's 64-token tile and decode their weights twice, 0.66-0.99x at 52-60 and 0.52-0.77x
/// from 64. So 50, between the two measured sides.
constexpr int64_t kTrellisWgmmaMinMean = 50;
struct TileLaunches {
  uint32_t wgmma;
  uint32_t wgmma_trellis;
  uint32_t mma_sync;
};
inline TileLaunches tile_launches(const GroupedGemmArgs& a, const KernelSplit& split,
                                  bool wgmma_available) {
  const uint32_t mask = a.bank.format_mask;
  if (!wgmma_available) return {0, 0, mask};
  const uint32_t trellis = mask & kTrellisDecoderMask;
  if (a.tile_kernel == TileKernel::kWgmma) return {mask & ~kTrellisDecoderMask, trellis, 0u};
  const int64_t min_tokens = int64_t{split.decode_max} + 1;
  const int64_t experts = tile_launch_experts(a.x.rows, a.bank.num_experts, min_tokens);
  const bool trellis_wgmma = (a.x.rows + experts - 1) / experts >= kTrellisWgmmaMinMean;
  return {mask & ~kTrellisDecoderMask, trellis_wgmma ? trellis : 0u, trellis_wgmma ? 0u : trellis};
}
/// The decoders a tile launch of `launch` (one of t's masks) builds items for
/// (GemmProblem::tile_decoders): its own, and in the call's first tile launch also every
/// decoder the bank's format_mask does not name. Why: a malformed view (an expert whose decoder
/// its mask misses) then still reaches one kernel, as with one tile launch per call, which runs
/// that expert or traps on it (with_decoder), instead of every launch skipping it silently.
inline uint32_t tile_item_decoders(const TileLaunches& t, uint32_t launch, uint32_t format_mask) {
  const uint32_t first = t.wgmma != 0           ? t.wgmma
                         : t.wgmma_trellis != 0 ? t.wgmma_trellis
                                                : t.mma_sync;
  return launch == first ? launch | ~format_mask : launch;
}

/// The split for a call (decode_max_tokens 0 = adaptive_split; trellis_split for banks with
/// trellis experts).
inline KernelSplit split_kernels(const GroupedGemmArgs& a, bool wgmma, int sms) {
  switch (a.kernel) {
    case KernelChoice::kDecode:
      return {INT_MAX};
    case KernelChoice::kPrefill:
      return {0};
    case KernelChoice::kAuto:
      break;
  }
  if (a.decode_max_tokens > 0) return {a.decode_max_tokens};
  if ((a.bank.format_mask & kTrellisDecoderMask) != 0) return trellis_split(a);
  return adaptive_split(a, wgmma, sms);
}

/// Code bytes of the active experts (min(E, m) of them) at or above which a decode launch of a
/// bank of int2 experts takes their integer-mma decode (IntegerDecode::kAuto;
/// IntDecoder::kImmaMap, x_digits.cuh). It costs a kernel before the launch that converts x
/// (~2-3 us in a graph) and gains a share of the launch's time where that is paid off: int2
/// 0.80-0.93x at these sizes (H200, bench/results/s19-2026-12-03); one-token launches of the
/// small shapes ran 1.18-1.21x with it.
constexpr int64_t kImmaInt2MinBytes = int64_t{32} << 20;
/// The same for a bank of int8 experts alone (8-token items). Forced on (H200, session 24,
/// bench/results/s24-2026-12-03/ab-int4/on.txt), int8 ran 0.92-0.98x at T = 4 and 16 on the five
/// shapes (the smallest launch there: Qwen3's down at T = 4, 50 MB, 1.01x) and 0.99x at T = 1 on
/// Mixtral and DeepSeek-V3 (117 MB and more), but 1.03-1.06x on the small shapes' one-token
/// rows (at most 35 MB per launch). With the bound (session 26, against 1195e6f, one call,
/// bench/results/s26-2026-12-04/int8-size): 0.90-1.01x at T = 1, 2, 3, 4, 8, 16 on the five
/// shapes (median 0.963; Qwen3 T = 3 and 4 1.01 and 1.00, the small shapes' T = 1 1.00); against
/// kOff at means of 1-8 tokens per expert (int8-means) 0.80-0.97x, DeepSeek-V3 0.75-0.98x with
/// its clocks up to 10 % apart.
constexpr int64_t kImmaInt8MinBytes = int64_t{40} << 20;
/// The decoder of int4 experts with four groups per 128-wide k-tile (g32; decoder_id).
constexpr uint32_t kInt4G32Mask = 1u << (kFirstIntDecoder + 3 * 2 + 2);
/// The same for a bank of int4 g32 experts alone (8-token items), whose bf16 decode applies
/// four groups' scales and zeros per tile. Forced on (H200, session 24,
/// bench/results/s24-2026-12-03/ab-int4/on.txt) int4:g32 ran 0.90-0.95x at T = 4 and 16 on
/// Mixtral and DeepSeek-V3 and 0.98-0.99x at T = 1 there (59 MB per launch and more), 0.96-0.98x
/// on the small shapes at T = 16 (67 MB and more), 0.99-1.00x at T = 4 (down launches of 25-35
/// MB), but 1.07x on their one-token rows (at most 17 MB). With the bound (session 26, against
/// 1195e6f, bench/results/s26-2026-12-04/int4-g32): 0.92-1.01x at T = 1, 2, 4, 16 on the five
/// shapes (OLMoE and Qwen3 at T = 4 1.008 and 1.014, the small shapes' T = 1 1.00).
constexpr int64_t kImmaInt4G32MinBytes = int64_t{24} << 20;

/// Whether the call's decode launch (of experts with at most decode_max tokens) has items of
/// 16 tokens, two n8 chunks (grouped_gemv.cuh choose_variant).
inline bool decode_two_chunk(const GroupedGemmArgs& a, int decode_max) {
  return decode_mean_tokens(a.x.rows, a.bank.num_experts, decode_max) > kChunkTokens;
}

/// Whether the call's decode launch (of experts with at most decode_max tokens) takes the
/// integer-mma decode for its int experts.
/// kAuto takes it for banks of int3 experts alone; for banks of int8 experts alone where the
/// launch has 16-token items or above a size; where it has 8-token items, for banks of int
/// experts in several bit widths with int2 or int3 among them and for banks of int2 experts
/// alone and of int4 g32 experts alone above a size (measured,
/// bench/results/s23-2026-12-03/ab-int3-imma, s24-2026-12-03/ab-int4 and s19-2026-12-03):
/// - int3 (its A bytes one PRMT per IMMA and one shift and LOP3 per register more than int2's):
///   0.69-0.97x the time of its bf16 decode on every decode row of the five shapes at T = 1, 4,
///   16, one-token small shapes included (0.94-0.97x, conversion kernel and all);
/// - int8 (session 19, kernels of then) gained 0.91-0.97x only on DeepSeek-V3 and Mixtral at 8+
///   active experts, and where a layer's gate/up launch took it and its down launch did not
///   the small shapes' T = 16 rows ran 1.015-1.02x; for today's rule see below;
/// - banks of int experts in more than one bit width, some of them int2 or int3: with every int
///   format on the integer decode (int4 too, session 24), mixed:rr (int2/3/4/8 g128) ran 0.84-0.96x
///   the time of its kAuto decode on the five shapes at T = 4 and 16 and on Mixtral and
///   DeepSeek-V3 at T = 1, 0.99-1.00x on the small shapes' one-token rows
///   (bench/results/s24-2026-12-03/ab-int4); before int3 and int4 had it, banks mixing them with
///   int2 / int8 ran 1.03-1.25x.
/// int4 banks alone keep the bf16 decode in launches of 8-token items: forced on, int4:g128 ran
/// 0.93-1.02x at T = 4 and 16 but 1.09-1.11x on the small shapes' one-token rows, with no size
/// bound that separates the two on the five shapes; banks of int4 g32 experts alone take it from
/// kImmaInt4G32MinBytes of codes per launch (session 26). int8 banks alone take it from
/// kImmaInt8MinBytes of codes per launch (session 26: the bound lies between the small shapes'
/// one-token launches and every other launch of the five shapes at T = 1, 4 and 16, so no layer
/// there has one launch on each side).
/// 16-token items on the integer decode run one strip per warp (launch_grouped_gemv), the bf16
/// decode's up to two (int8's 2 KB tiles too). Against the bf16 decode, both
/// forced, at means of 9-16 tokens per expert on the five shapes (H200,
/// bench/results/s26-2026-12-04/mid): int8 0.89-0.99x, int3 0.93-1.04x, but int2 1.05-1.17x,
/// int4 1.03-1.15x and mixed:rr 0.94-1.07x (under kAuto at means 9-10: Mixtral, Qwen3 and
/// DeepSeek-V3 1.01-1.05x): so int8 and int3 alone take it there, the others not.
/// kOn forces it for the int experts of any bank.
inline bool decode_imma(const GroupedGemmArgs& a, int decode_max) {
  const uint32_t mask = a.bank.format_mask;
  const uint32_t imma = kImmaInt2Mask | kImmaInt3Mask | kImmaInt4Mask | kImmaInt8Mask;
  if (a.integer_decode == IntegerDecode::kOff || (mask & imma) == 0) return false;
  if (a.integer_decode == IntegerDecode::kOn) return true;
  if ((mask & ~kImmaInt3Mask) == 0) return true;
  const bool two_chunk = decode_two_chunk(a, decode_max);
  const int64_t codes = active_experts(a) * a.bank.n * a.bank.k;  // at 8 bits
  if ((mask & ~kImmaInt8Mask) == 0) return two_chunk || codes >= kImmaInt8MinBytes;
  if (two_chunk) return false;
  if (mask == kInt4G32Mask) return codes / 2 >= kImmaInt4G32MinBytes;
  const bool int_only = (mask & ~imma) == 0;
  const int widths = ((mask & kImmaInt2Mask) != 0) + ((mask & kImmaInt3Mask) != 0) +
                     ((mask & kImmaInt4Mask) != 0) + ((mask & kImmaInt8Mask) != 0);
  if (int_only && widths > 1 && (mask & (kImmaInt2Mask | kImmaInt3Mask)) != 0) return true;
  if ((mask & ~kImmaInt2Mask) != 0) return false;
  return codes / 4 >= kImmaInt2MinBytes;
}

}  // namespace qmoe::dev
