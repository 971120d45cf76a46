// cuda/kernels/grouped_gemm_tc.cuh — the tensor-core grouped GEMM ("prefill": many tokens
// per expert).
//
// Work item = (expert with tokens in [min_tokens, max_tokens], block of 128 weight rows,
// block of 64 tokens); the persistent grid walks the device-built schedule, token blocks
// fastest (tile_common.cuh: tile_item) so consecutive blocks share a row block's weights.
// Block = 8 warps; warp w owns strip w of the row block (16 rows x 64 tokens, fp32
// accumulators = 8 n8 chunks). One kStages-deep cp.async pipeline; stage = k-tile:
//  - x tile [64 tokens][128 k], zero-filled past the item's tokens and past K, rows
//    XOR-swizzled in 16-byte units so the ldmatrix of 8 token rows hits 8 bank groups;
//  - each warp's code tile of its strip, copied verbatim in the packed fragment layout
//    (a lane copies the chunks it reads back), decoded in registers to A fragments;
//    scales/zeros one k-tile ahead in registers;
//  - B fragments by ldmatrix.x4 (two n8 chunks at a time), mma.sync m16n8k16, fp32.
// A stage holds 8 code slots of the launch's largest tile (host: from the format mask), so
// int-only banks keep shared memory small and dense experts cost only their own banks.
// Epilogue: accumulators rounded once to Act, staged through shared memory, written as
// 16-byte rows of y (scalar stores where N is not a multiple of 8).
#pragma once
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"
#include "cuda/kernels/tile_common.cuh"

namespace qmoe::dev {
namespace tc {

constexpr int kStrips = kBlockWarps;  ///< 128 weight rows per item
constexpr int kTokens = 64;           ///< tokens per item: 8 n8 chunks
constexpr int kChunks = kTokens / 8;
constexpr int kStages = 3;
constexpr int kRowBytes = kTileCols * 2;           ///< one token's 128 k of x
constexpr int kXStageBytes = kTokens * kRowBytes;  ///< 16 KB
/// Epilogue staging row of y (elements): 8 extra elements skew consecutive tokens by 8 banks.
constexpr int kYStride = kStrips * kTileRows + 8;
static_assert(kTokens * kYStride * 2 <= kStages * kXStageBytes, "y staging must fit the ring");

/// One stage: the x tile, then one code slot of slot_bytes per warp.
constexpr int stage_bytes(int slot_bytes) {
  return kXStageBytes + kBlockWarps * slot_bytes;
}

constexpr size_t smem_bytes(int num_experts, int slot_bytes) {
  return schedule_smem_bytes(num_experts) + static_cast<size_t>(kStages) * stage_bytes(slot_bytes);
}

/// Stages the x tile of k-tile kt into `stage`: unit u of token row r at 16-byte slot
/// u ^ (r % 8) of its row, so the 8 rows of an ldmatrix hit 8 bank groups.
__device__ __forceinline__ void fill_x(unsigned char* stage, const XTile& t, int kt) {
  fill_x_tile<kTokens>(t, kt, [&](int row, int unit) {
    return stage + row * kRowBytes + ((unit ^ (row & 7)) << 4);
  });
}

/// acc += W_tile(16 x 128) * x_stage^T for the staged chunk pairs.
template <class Act, class Dec>
__device__ __forceinline__ void multiply_tile(const uint32_t (&raw)[Dec::kRawWords],
                                              const typename Dec::RawQuant& rq,
                                              const ExpertParams& ep, const unsigned char* x_stage,
                                              int pairs, int lane, float (&acc)[kChunks][4]) {
  const auto q = Dec::template prepare<Act>(ep, rq);
  // ldmatrix.x4 of chunk pair cp reads matrices (tokens 16cp + 0..7 | 8..15) x (k 0..7 |
  // 8..15) of the sub-tile: lane l addresses token 16cp + 8(l/16) + l%8, k half (l/8)%2,
  // and gets b0, b1 of chunk 2cp, then b0, b1 of chunk 2cp+1.
  const int rr = lane & 7;
  const uint32_t row_addr = smem_addr(x_stage) + ((lane >> 4) * 8 + rr) * kRowBytes;
  const int k_half = (lane >> 3) & 1;
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) {
    uint32_t a[4];
    Dec::template decode_subtile<Act>(raw, j, q, a);
    const uint32_t slot = static_cast<uint32_t>(((2 * j + k_half) ^ rr) << 4);
#pragma unroll
    for (int cp = 0; cp < kChunks / 2; ++cp) {
      if (cp < pairs) {
        uint32_t b[4];
        ldmatrix_x4(row_addr + cp * 16 * kRowBytes + slot, b);
        ActTraits<Act>::mma(acc[2 * cp], a, b[0], b[1]);
        ActTraits<Act>::mma(acc[2 * cp + 1], a, b[2], b[3]);
      }
    }
  }
}

/// One work item: row block `row_block` of one expert times t.count tokens. Whole block
/// (ends with __syncthreads).
template <class Act, class Dec>
__device__ void run_item(const GemmProblem& p, const ExpertParams& ep, int row_block,
                         const XTile& t, unsigned short* y_rows, unsigned char* stages) {
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int strip = row_block * kStrips + warp;
  const bool has_strip = strip < p.n_strips;  // warps past N still stage x and sync
  const uint8_t* strip_codes =
      ep.codes + static_cast<int64_t>(has_strip ? strip : 0) * p.k_tiles * Dec::kTileBytes;
  const int chunks = ceil_div(t.count, 8);
  const int pairs = ceil_div(chunks, 2);
  const int stage_size = stage_bytes(p.a_slot_bytes);
  auto stage = [&](int kt) { return stages + (kt % kStages) * stage_size; };
  auto code_slot = [&](int kt) { return stage(kt) + kXStageBytes + warp * p.a_slot_bytes; };
  auto fill = [&](int kt) {
    fill_x(stage(kt), t, kt);
    if (has_strip)
      Dec::copy_codes(strip_codes + static_cast<int64_t>(kt) * Dec::kTileBytes, code_slot(kt),
                      lane);
  };

  float acc[kChunks][4];
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[c][i] = 0.f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < p.k_tiles) fill(s);
    cp_async_commit();
  }
  typename Dec::RawQuant rq;
  Dec::load_quant(ep, strip, 0, lane, rq, has_strip);

  for (int kt = 0; kt < p.k_tiles; ++kt) {
    // Group kt (stage kt) has landed for this thread; the barrier makes it everyone's and
    // frees the stage multiplied in iteration kt - 1 for refilling.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (kt + kStages - 1 < p.k_tiles) fill(kt + kStages - 1);
    cp_async_commit();  // possibly empty: one group per iteration keeps the count above exact

    const bool more = has_strip && kt + 1 < p.k_tiles;
    typename Dec::RawQuant next_rq;
    Dec::load_quant(ep, strip, more ? kt + 1 : 0, lane, next_rq, more);
    if (has_strip) {
      uint32_t raw[Dec::kRawWords];
      Dec::read_codes(code_slot(kt), lane, raw);
      multiply_tile<Act, Dec>(raw, rq, ep, stage(kt), pairs, lane, acc);
    }
    rq = next_rq;
  }
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue: y tile [token][row] in the (now idle) stages, then 16-byte rows of y.
  auto* ys = reinterpret_cast<unsigned short*>(stages);
  if (has_strip) {
#pragma unroll
    for (int c = 0; c < kChunks; ++c) {
      if (c < chunks) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int tok = 8 * c + 2 * (lane & 3) + (i & 1);
          const int row = warp * kTileRows + (lane >> 2) + 8 * (i >> 1);
          ys[tok * kYStride + row] = ActTraits<Act>::to_bits_rn(acc[c][i]);
        }
      }
    }
  }
  __syncthreads();
  store_y_tile<kStrips * kTileRows>(ys, kYStride, t.count, row_block * kStrips * kTileRows, p.n,
                                    y_rows);
}

template <class Act>
__global__ void __launch_bounds__(kBlockThreads, 2) grouped_gemm_tc_kernel(const GemmProblem p) {
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* stages = smem + schedule_smem_bytes(p.num_experts);
  const ItemList items = build_tile_items<kStrips, kTokens>(p, smem);
  for (long long i = blockIdx.x; i < items.total; i += gridDim.x) {
    const TileItem it = tile_item<kStrips, kTokens>(p, items.at(i));
    with_expert_decoder(p.blob, p.descs[it.expert], [&](auto decoder, const ExpertParams& ep) {
      run_item<Act, decltype(decoder)>(p, ep, it.row_block, it.x, it.y_rows, stages);
    });
  }
}

}  // namespace tc

template <class Act>
cudaError_t launch_grouped_gemm_tc(const GemmProblem& p, cudaStream_t stream) {
  // Occupancy depends on the code slot size and the schedule's size: one cached grid per
  // (expert bucket, log2 slot size).
  static GridCache cache;
  const auto* kernel = reinterpret_cast<const void*>(tc::grouped_gemm_tc_kernel<Act>);
  int slot_class = 0;  // log2(slot / 256): 0..4
  while ((256 << slot_class) < p.a_slot_bytes) ++slot_class;
  const int bucket = expert_bucket(p.num_experts);
  GridSize grid;
  cudaError_t err = persistent_grid(kernel, tc::smem_bytes(kMaxExperts, kMaxTileBytes),
                                    tc::smem_bytes(bucket_experts(bucket), 256 << slot_class),
                                    bucket * 5 + slot_class, &cache, &grid);
  if (err != cudaSuccess) return err;
  return launch_grouped_kernel(kernel, grid, tc::smem_bytes(p.num_experts, p.a_slot_bytes), p,
                               stream);
}

}  // namespace qmoe::dev
