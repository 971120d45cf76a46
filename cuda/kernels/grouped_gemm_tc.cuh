// cuda/kernels/grouped_gemm_tc.cuh — the tensor-core grouped GEMM ("prefill": many tokens
// per expert) with mma.sync: the tile kernel of the sm_80 path (A100), and of any device
// without the sm_90a code.
//
// Work item = (expert with tokens in [min_tokens, max_tokens], block of 8 W strips of 16
// weight rows, block of 64 tokens); the persistent grid walks the device-built schedule, token
// blocks fastest (tile_common.cuh: tile_item) so consecutive blocks share a row block's
// weights. Block = 8 warps; warp w owns strips W w .. W w + W - 1 of the row block (16 W rows x
// 64 tokens, fp32 accumulators = W x 8 n8 chunks). W = 2 for banks of 2/3/4/8-bit codes (each
// B fragment then feeds two strips' mma: half the shared-memory reads per mma), 1 for banks
// with dense experts (4 KB code slots). One kStages-deep cp.async pipeline; stage = k-tile:
//  - x tile [64 tokens][128 k], zero-filled past the item's tokens and past K, rows
//    XOR-swizzled in 16-byte units so the ldmatrix of 8 token rows hits 8 bank groups;
//  - each warp's code tiles of its strips, copied verbatim in the packed fragment layout
//    (a lane copies the chunks it reads back), decoded in registers to A fragments;
//    scales/zeros one k-tile ahead in registers;
//  - B fragments by ldmatrix.x4 (two n8 chunks at a time), mma.sync m16n8k16, fp32.
// Trellis experts (the kTrellis instantiation, for banks that hold them: on every device but
// sm_90a, and there at low means, tile_launches) stage the call's rotated x (x_rotate.cuh),
// multiply their weights formed as RNE_fp16(v s) (TrellisDecoder::decode_subtile) by it in fp16,
// and their sums are scaled by 128 in the epilogue.
// A stage holds 8 W code slots of the launch's largest tile (host: from the format mask), so
// int-only banks keep shared memory small and dense experts cost only their own banks.
// Epilogue: accumulators rounded once to Act, staged through shared memory, written as
// 16-byte rows of y (scalar stores where N is not a multiple of 8).
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"
#include "cuda/kernels/tile_common.cuh"

namespace qmoe::dev {
namespace tc {

constexpr int kTokens = 64;  ///< tokens per item: 8 n8 chunks
constexpr int kChunks = kTokens / 8;
constexpr int kStages = 3;
constexpr int kRowBytes = kTileCols * 2;           ///< one token's 128 k of x
constexpr int kXStageBytes = kTokens * kRowBytes;  ///< 16 KB
/// Strips of an item (code slots a block stages per k-tile): warp_strips per warp.
constexpr int item_strips(int warp_strips) {
  return kBlockWarps * warp_strips;
}
/// Epilogue staging row of y (elements): 8 extra elements skew consecutive tokens by 8 banks.
constexpr int y_stride(int warp_strips) {
  return item_strips(warp_strips) * kTileRows + 8;
}
/// The largest code slot of the two-strip form: 3 stages of 16 code slots of int8 (2 KB) and
/// the x tile, 144 KB, fit an A100's 163 KB per block; dense 4 KB slots take one strip.
constexpr int kTwoStripMaxSlotBytes = 2048;
/// The largest code slot a form takes: the two-strip form's above, any tile with one strip.
constexpr int max_slot_bytes(int warp_strips) {
  return warp_strips == 2 ? kTwoStripMaxSlotBytes : kMaxTileBytes;
}

/// One stage: the x tile, then kWarpStrips code slots of slot_bytes per warp.
template <int kWarpStrips>
constexpr int stage_bytes(int slot_bytes) {
  return kXStageBytes + item_strips(kWarpStrips) * slot_bytes;
}

template <int kWarpStrips>
constexpr size_t smem_bytes(int num_experts, int slot_bytes) {
  return schedule_smem_bytes(num_experts) +
         static_cast<size_t>(kStages) * stage_bytes<kWarpStrips>(slot_bytes);
}
static_assert(kTokens * y_stride(2) * 2 <= kStages * kXStageBytes, "y staging must fit the ring");
/// An A100 takes 163 KB (166912 bytes) of shared memory per block, static included (the
/// schedule's block scan: ~2.3 KB).
static_assert(smem_bytes<2>(kMaxExperts, max_slot_bytes(2)) + 2560 <= 166912 &&
                  smem_bytes<1>(kMaxExperts, max_slot_bytes(1)) + 2560 <= 166912,
              "one block per SM on an A100");

/// Stages the x tile of k-tile kt into `stage`: unit u of token row r at 16-byte slot
/// u ^ (r % 8) of its row, so the 8 rows of an ldmatrix hit 8 bank groups.
__device__ __forceinline__ void fill_x(unsigned char* stage, const XTile& t, int kt) {
  fill_x_tile<kTokens>(t, kt, [&](int row, int unit) {
    return stage + row * kRowBytes + ((unit ^ (row & 7)) << 4);
  });
}

/// Whether multiply_tile skips the chunk pairs past the item's tokens (their x rows are zero,
/// so multiplying them changes no stored sum). One strip per warp (128 registers) multiplies
/// them: there ptxas kept the per-pair predicates by copying them before every mma and wrote
/// the predicated mma's sums through temporaries, 863 instructions per int4:g128 k-tile against 383
/// without (SASS of sm_80, scripts/sass_mix.py; dense bf16 730 against 252), while the skipped work
/// is at most 48 of the 64 mma, in the last token block of an expert. Two strips (254-255
/// registers) keep the predicates at no instruction cost, and skip.
template <int kWarpStrips>
constexpr bool kSkipEmptyPairs = kWarpStrips == 2;

/// acc[s] += W_tile(strip s, 16 x 128) * x_stage^T for the staged chunk pairs. Each B fragment
/// (ldmatrix from shared memory) feeds the mma of every strip of the warp: with two strips the
/// warp reads x from shared memory once per 32 weight rows instead of 16 (per mma.sync
/// m16n8k16 a one-strip warp loads 256 B of B, which at an A100's 1024 bf16 FMA per SM per
/// clock and 128 B of shared memory per clock is both units' whole rate).
template <class Act, class Dec, int kWarpStrips>
__device__ __forceinline__ void multiply_tile(const uint32_t (&raw)[kWarpStrips][Dec::kRawWords],
                                              const typename Dec::RawQuant (&rq)[kWarpStrips],
                                              const ItemQuantOf<Act, Dec> (&item)[kWarpStrips],
                                              const ExpertParams& ep, const unsigned char* x_stage,
                                              int pairs, int lane,
                                              float (&acc)[kWarpStrips][kChunks][4]) {
  using Quant = decltype(Dec::template prepare<Act>(ep, rq[0], item[0]));
  Quant q[kWarpStrips];
#pragma unroll
  for (int s = 0; s < kWarpStrips; ++s) q[s] = Dec::template prepare<Act>(ep, rq[s], item[s]);
  // ldmatrix.x4 of chunk pair cp reads matrices (tokens 16cp + 0..7 | 8..15) x (k 0..7 |
  // 8..15) of the sub-tile: lane l addresses token 16cp + 8(l/16) + l%8, k half (l/8)%2,
  // and gets b0, b1 of chunk 2cp, then b0, b1 of chunk 2cp+1.
  const int rr = lane & 7;
  const uint32_t row_addr = smem_addr(x_stage) + ((lane >> 4) * 8 + rr) * kRowBytes;
  const int k_half = (lane >> 3) & 1;
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) {
    uint32_t a[kWarpStrips][4];
#pragma unroll
    for (int s = 0; s < kWarpStrips; ++s) Dec::template decode_subtile<Act>(raw[s], j, q[s], a[s]);
    const uint32_t slot = static_cast<uint32_t>(((2 * j + k_half) ^ rr) << 4);
#pragma unroll
    for (int cp = 0; cp < kChunks / 2; ++cp) {
      if (!kSkipEmptyPairs<kWarpStrips> || cp < pairs) {
        uint32_t b[4];
        ldmatrix_x4(row_addr + cp * 16 * kRowBytes + slot, b);
#pragma unroll
        for (int s = 0; s < kWarpStrips; ++s) {
          ActTraits<Act>::mma(acc[s][2 * cp], a[s], b[0], b[1]);
          ActTraits<Act>::mma(acc[s][2 * cp + 1], a[s], b[2], b[3]);
        }
      }
    }
  }
}

/// One work item: row block `row_block` (item_strips(kWarpStrips) strips) of one expert times
/// t.count tokens; warp w takes strips kWarpStrips w + s. Whole block (ends with __syncthreads).
template <class Act, class Dec, int kWarpStrips>
__device__ void run_item(const GemmProblem& p, const ExpertParams& ep, int row_block,
                         const XTile& t, unsigned short* y_rows, unsigned char* stages) {
  // The type of the decoded A registers and the mma: Act, or fp16 for the trellis decoders,
  // whose x tiles hold the rotated x (x_rotate.cuh) and whose sums the epilogue scales.
  using MAct = MmaAct<Act, Dec>;
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int first_strip = row_block * item_strips(kWarpStrips) + warp * kWarpStrips;
  // Warps (and a warp's second strip) past N still stage x and sync.
  bool has_strip[kWarpStrips];
  // Scales and zeros: 32-bit entry arithmetic (grouped_gemm bounds an expert's entries below
  // 2^30) and unpredicated loads, as in the wgmma kernel's lean form: a strip past N reads
  // strip 0's, the last k-tile k-tile 0's again, never used.
  int quant_strip[kWarpStrips];
  // The next k-tile to copy of each strip, one tile further per fill.
  const uint8_t* next_codes[kWarpStrips];
#pragma unroll
  for (int s = 0; s < kWarpStrips; ++s) {
    has_strip[s] = first_strip + s < p.n_strips;
    quant_strip[s] = has_strip[s] ? first_strip + s : 0;
    next_codes[s] = ep.codes + static_cast<int64_t>(quant_strip[s]) * p.k_tiles * Dec::kTileBytes;
  }
  const int chunks = ceil_div(t.count, 8);
  const int pairs = ceil_div(chunks, 2);
  const int stage_size = stage_bytes<kWarpStrips>(p.a_slot_bytes);
  // Ring positions as byte offsets, stepped with a compare and select: a kt % kStages and
  // 64-bit products per fill took ~25 of the int4 k-tile's ~620 instructions (SASS).
  auto next_stage = [&](int off) {
    return off + stage_size == kStages * stage_size ? 0 : off + stage_size;
  };
  const int slot_offset = kXStageBytes + warp * kWarpStrips * p.a_slot_bytes;
  auto fill = [&](int kt, int stage_off) {
    unsigned char* const stage = stages + stage_off;
    fill_x(stage, t, kt);
#pragma unroll
    for (int s = 0; s < kWarpStrips; ++s) {
      if (has_strip[s])
        Dec::copy_codes(next_codes[s], stage + slot_offset + s * p.a_slot_bytes, lane);
      next_codes[s] += Dec::kTileBytes;
    }
  };

  float acc[kWarpStrips][kChunks][4];
#pragma unroll
  for (int s = 0; s < kWarpStrips; ++s)
#pragma unroll
    for (int c = 0; c < kChunks; ++c)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[s][c][i] = 0.f;

  int write_stage = 0;  // stage of the next fill
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < p.k_tiles) fill(st, write_stage);
    write_stage = next_stage(write_stage);
    cp_async_commit();
  }
  typename Dec::RawQuant rq[kWarpStrips];
  ItemQuantOf<MAct, Dec> item[kWarpStrips];
#pragma unroll
  for (int s = 0; s < kWarpStrips; ++s) {
    Dec::template load_quant<uint32_t>(ep, quant_strip[s], 0, lane, rq[s], true);
    item[s] = Dec::template prepare_item<MAct>(ep, quant_strip[s], lane);
  }

  int read_stage = 0;  // stage of k-tile kt
  for (int kt = 0; kt < p.k_tiles; ++kt) {
    // Group kt (stage kt) has landed for this thread; the barrier makes it everyone's and
    // frees the stage multiplied in iteration kt - 1 for refilling.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < p.k_tiles) fill(kt + kStages - 1, write_stage);
    write_stage = next_stage(write_stage);
    cp_async_commit();  // possibly empty: one group per iteration keeps the count above exact

    typename Dec::RawQuant next_rq[kWarpStrips];
    const int next_kt = kt + 1 < p.k_tiles ? kt + 1 : 0;
#pragma unroll
    for (int s = 0; s < kWarpStrips; ++s)
      Dec::template load_quant<uint32_t>(ep, quant_strip[s], next_kt, lane, next_rq[s], true);
    if (has_strip[0]) {
      // A second strip past N multiplies whatever its slot holds; its sums are never stored.
      uint32_t raw[kWarpStrips][Dec::kRawWords];
#pragma unroll
      for (int s = 0; s < kWarpStrips; ++s)
        Dec::read_codes(stages + read_stage + slot_offset + s * p.a_slot_bytes, lane, raw[s]);
      multiply_tile<MAct, Dec, kWarpStrips>(raw, rq, item, ep, stages + read_stage, pairs, lane,
                                            acc);
    }
#pragma unroll
    for (int s = 0; s < kWarpStrips; ++s) rq[s] = next_rq[s];
    read_stage = next_stage(read_stage);
  }
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue: y tile [token][row] in the (now idle) stages, then 16-byte rows of y.
  auto* ys = reinterpret_cast<unsigned short*>(stages);
#pragma unroll
  for (int s = 0; s < kWarpStrips; ++s) {
    if (!has_strip[s]) continue;
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      if (c < chunks) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int tok = 8 * c + 2 * (lane & 3) + (i & 1);
          const int row = (warp * kWarpStrips + s) * kTileRows + (lane >> 2) + 8 * (i >> 1);
          ys[tok * y_stride(kWarpStrips) + row] =
              ActTraits<Act>::to_bits_rn(output_scaled<Dec>(acc[s][c][i]));
        }
      }
    }
  }
  __syncthreads();
  store_y_tile<item_strips(kWarpStrips) * kTileRows>(
      ys, y_stride(kWarpStrips), t.count, row_block * item_strips(kWarpStrips) * kTileRows, p.n,
      y_rows);
}

/// Two strips per warp (64 accumulators) take up to 255 registers at one block per SM, which
/// is what their shared memory leaves an A100 anyway; one strip per warp keeps two blocks.
/// kFormed: with the formed-weight decoders (with_decoder), for banks that hold such experts;
/// kTrellis: with the trellis decoders too, for banks that hold trellis experts (the call's
/// rotated x, x_rotate.cuh, is their x).
template <class Act, int kWarpStrips, bool kFormed, bool kTrellis>
__global__ void __launch_bounds__(kBlockThreads, kWarpStrips == 1 ? 2 : 1)
    grouped_gemm_tc_kernel(const GemmProblem p) {
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* stages = smem + schedule_smem_bytes(p.num_experts);
  const ItemList items = build_tile_items<item_strips(kWarpStrips), kTokens>(p, smem);
  for (long long i = blockIdx.x; i < items.total; i += gridDim.x) {
    const TileItem it = tile_item<item_strips(kWarpStrips), kTokens>(p, items.at(i));
    with_expert_decoder<kFormed, kTrellis>(
        p.blob, p.descs[it.expert], [&](auto decoder, const ExpertParams& ep) {
          using Dec = decltype(decoder);
          XTile x = it.x;
          if constexpr (RotatesX<Dec>::value) {
            // A bank view whose format_mask leaves out its trellis experts got no rotated x.
            if (p.x_rotated == nullptr) __trap();
            x.x = p.x_rotated + static_cast<int64_t>(x.row) * p.k;
          }
          run_item<Act, Dec, kWarpStrips>(p, ep, it.row_block, x, it.y_rows, stages);
        });
  }
}

/// Occupancy depends on the code slot size and the schedule's size: one cached grid per
/// (expert bucket, log2 slot size) and per form.
template <class Act, int kWarpStrips, bool kFormed, bool kTrellis>
cudaError_t launch(const GemmProblem& p, cudaStream_t stream) {
  static GridCache cache;
  const auto* kernel =
      reinterpret_cast<const void*>(grouped_gemm_tc_kernel<Act, kWarpStrips, kFormed, kTrellis>);
  int slot_class = 0;  // log2(slot / 256): 0..4
  while ((256 << slot_class) < p.a_slot_bytes) ++slot_class;
  const int bucket = expert_bucket(p.num_experts);
  GridSize grid;
  cudaError_t err =
      persistent_grid(kernel, smem_bytes<kWarpStrips>(kMaxExperts, max_slot_bytes(kWarpStrips)),
                      smem_bytes<kWarpStrips>(bucket_experts(bucket), 256 << slot_class),
                      bucket * 5 + slot_class, &cache, &grid);
  if (err != cudaSuccess) return err;
  return launch_grouped_kernel(kernel, grid, smem_bytes<kWarpStrips>(p.num_experts, p.a_slot_bytes),
                               p, stream);
}

/// Whether a launch of num_experts experts whose code slots take slot_bytes runs two strips per
/// warp on a device that leaves `room` bytes of dynamic shared memory per block: 2/3/4/8-bit
/// codes, where their three stages fit (on devices of ~100 KB per block, e.g. sm_86 / sm_89,
/// int4 banks then keep one strip per warp, whose 72 KB fit).
constexpr bool two_strips_fit(int num_experts, int slot_bytes, size_t room) {
  return slot_bytes <= max_slot_bytes(2) && smem_bytes<2>(num_experts, slot_bytes) <= room;
}

/// Dynamic shared memory per block of the form a launch takes (two strips per warp where they
/// fit, else one).
constexpr size_t launch_smem_bytes(int num_experts, int slot_bytes, size_t room) {
  return two_strips_fit(num_experts, slot_bytes, room) ? smem_bytes<2>(num_experts, slot_bytes)
                                                       : smem_bytes<1>(num_experts, slot_bytes);
}
/// On a device of ~100 KB per block (sm_86 / sm_89 / sm_120: 101376 bytes, less the kernel's
/// ~2.3 KB of static shared memory) the one-strip form's three stages of 4 KB dense slots do not
/// fit, nor int8's 2 KB slots from 45 experts on (the schedule's arrays grow with E): grouped_gemm
/// refuses those banks there (kUnsupported) before launching anything.
static_assert(launch_smem_bytes(8, 1024, 99040) <= 99040 &&
                  launch_smem_bytes(1024, 1024, 99040) <= 99040 &&
                  launch_smem_bytes(44, 2048, 99040) <= 99040 &&
                  launch_smem_bytes(45, 2048, 99040) > 99040 &&
                  launch_smem_bytes(1, 4096, 99040) > 99040,
              "what fits a ~100 KB device");

/// The dynamic shared memory per block the device leaves the kernel (its forms take the same
/// static part: ask one).
template <class Act>
cudaError_t smem_room(size_t* room) {
  static SmemRoomCache cache;
  return kernel_smem_room(
      reinterpret_cast<const void*>(grouped_gemm_tc_kernel<Act, 2, false, false>), &cache, room);
}

}  // namespace tc

template <class Act>
cudaError_t grouped_gemm_tc_smem(const GemmProblem& p, size_t* needed, size_t* room) {
  const cudaError_t err = tc::smem_room<Act>(room);
  if (err != cudaSuccess) return err;
  *needed = tc::launch_smem_bytes(p.num_experts, p.a_slot_bytes, *room);
  return cudaSuccess;
}

/// Banks whose code slots are at most 2 KB (2/3/4/8-bit codes) take two strips per warp where the
/// device's shared memory allows (two_strips_fit), others one. A/B on
/// an H200 running the compute_80 PTX (no A100 at hand; both forms keep their occupancy there:
/// one block per SM for two strips, two for one strip with 1 KB slots), --kernel prefill at
/// T = 1024 and 4096 on four shapes (bench/results/s32-2026-12-04/call3): int2 0.89-0.92x the
/// time, int3 0.94-0.99x, int4 0.91-0.98x (DeepSeek-V3 T = 1024 1.015x), int8 0.90-1.015x,
/// median 0.968x. ncu (Mixtral int4 T = 4096, one launch): 8.36 -> 7.95 ms, tensor pipe 39 %,
/// 240 registers, 2 warps per scheduler issuing every 5.9 cycles: still latency-bound.
template <class Act>
cudaError_t launch_grouped_gemm_tc(const GemmProblem& p, cudaStream_t stream) {
  // The decoder set: int and dense; with the formed ones; with the trellis ones too.
  const int decoders = p.x_rotated != nullptr ? 2 : p.formed != 0 ? 1 : 0;
  auto launch_form = [&](auto strips) {
    constexpr int kWarpStrips = decltype(strips)::value;
    return decoders == 2   ? tc::launch<Act, kWarpStrips, true, true>(p, stream)
           : decoders == 1 ? tc::launch<Act, kWarpStrips, true, false>(p, stream)
                           : tc::launch<Act, kWarpStrips, false, false>(p, stream);
  };
  size_t room = 0;
  const cudaError_t err = tc::smem_room<Act>(&room);
  if (err != cudaSuccess) return err;
  if (tc::two_strips_fit(p.num_experts, p.a_slot_bytes, room))
    return launch_form(std::integral_constant<int, 2>{});
  return launch_form(std::integral_constant<int, 1>{});
}

}  // namespace qmoe::dev
