// cuda/kernels/tile_common.cuh — what the two tensor-core tile kernels (mma.sync in
// grouped_gemm_tc.cuh, wgmma in grouped_gemm_wgmma.cuh) share: the work-item walk, the x
// tile fill (each kernel passes its own shared-memory layout) and the y tile store.
#pragma once
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"

namespace qmoe::dev {

/// The tokens of one tile-kernel work item.
struct XTile {
  const unsigned short* x;  ///< x row of the item's first token, [count, k]
  int count;                ///< 1 .. tokens per item
  int k;
  bool aligned;  ///< K % 8 == 0: rows are 16-byte aligned, cp.async applies
  int row;       ///< index of that row in x
};

/// Stages x rows [0, kTokens) x columns [128 kt, 128 kt + 128) of the item (whole block):
/// 16-byte unit u of token row r goes to unit_dst(r, u), the kernel's (swizzled) layout.
/// Zero past the item's tokens and past K. Rows 16-byte aligned: cp.async (issued, not
/// waited for); otherwise synchronous element loads, published by the kernel's next barrier.
/// Thread i always takes unit i % 16 of rows i / 16 + 16 p (pass p): the column range, its
/// bound and the source pointer are worked out once per call and step by a constant, so a
/// copy costs a handful of instructions (ncu, wgmma kernel: the per-unit index arithmetic of
/// a generic loop was 35 % of all instructions issued, ~50 per 16-byte copy).
template <int kTokens, class UnitDst>
__device__ __forceinline__ void fill_x_tile(const XTile& t, int kt, UnitDst unit_dst) {
  constexpr int kUnitsPerRow = kTileCols / 8;
  constexpr int kRowsPerPass = kBlockThreads / kUnitsPerRow;
  static_assert(kBlockThreads % kUnitsPerRow == 0 && kTokens % kRowsPerPass == 0,
                "whole passes of whole rows");
  const int unit = static_cast<int>(threadIdx.x) % kUnitsPerRow;
  const int row0 = static_cast<int>(threadIdx.x) / kUnitsPerRow;
  const int k = kt * kTileCols + unit * 8;
  const int k_valid = min(max(t.k - k, 0), 8);  // elements of this unit inside K
  const unsigned short* src = t.x + static_cast<int64_t>(row0) * t.k + k;
  const int64_t pass_stride = static_cast<int64_t>(kRowsPerPass) * t.k;
  if (t.aligned) {
    // K % 8 == 0: a unit is all inside K or all past it. Zero-filled units read nothing.
#pragma unroll
    for (int pass = 0; pass < kTokens / kRowsPerPass; ++pass, src += pass_stride) {
      const int row = row0 + pass * kRowsPerPass;
      cp_async_16_or_zero(smem_addr(unit_dst(row, unit)), src, row >= t.count || k_valid == 0);
    }
    return;
  }
#pragma unroll
  for (int pass = 0; pass < kTokens / kRowsPerPass; ++pass, src += pass_stride) {
    const int row = row0 + pass * kRowsPerPass;
    const int valid = row < t.count ? k_valid : 0;  // elements to copy
    uint32_t v[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t lo = 2 * i < valid ? static_cast<uint32_t>(__ldg(src + 2 * i)) : 0u;
      const uint32_t hi = 2 * i + 1 < valid ? static_cast<uint32_t>(__ldg(src + 2 * i + 1)) : 0u;
      v[i] = lo | (hi << 16);
    }
    *reinterpret_cast<uint4*>(unit_dst(row, unit)) = make_uint4(v[0], v[1], v[2], v[3]);
  }
}

/// Writes the item's y tile, staged in shared memory as ys[token][row] (y_stride elements
/// per token, kRows rows from weight row n0), to y (whole block; ends with __syncthreads):
/// 16-byte stores where N % 8 == 0, element stores otherwise; rows past N are skipped.
template <int kRows>
__device__ __forceinline__ void store_y_tile(const unsigned short* ys, int y_stride, int count,
                                             int n0, int n, unsigned short* y_rows) {
  constexpr int kUnitsPerToken = kRows / 8;
  for (int idx = static_cast<int>(threadIdx.x); idx < count * kUnitsPerToken;
       idx += kBlockThreads) {
    const int tok = idx / kUnitsPerToken, unit = idx % kUnitsPerToken;
    const int row = n0 + unit * 8;
    if (row >= n) continue;
    const unsigned short* src = ys + tok * y_stride + unit * 8;
    unsigned short* dst = y_rows + static_cast<int64_t>(tok) * n + row;
    if ((n & 7) == 0) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int i = 0; i < 8 && row + i < n; ++i) dst[i] = src[i];
    }
  }
  __syncthreads();
}

/// An accumulator as the output's value: the trellis decoders' sums times their kOutputScale
/// (exact: a power of two), the others' as they are.
template <class Dec>
__device__ __forceinline__ float output_scaled(float sum) {
  if constexpr (RotatesX<Dec>::value)
    return sum * Dec::kOutputScale;
  else
    return sum;
}

/// The tile kernels' items: (expert, block of kRowStrips strips, block of kTokens tokens), over
/// the rows of each expert that p's row split gives the launch where kRowSplit (build_item_list).
/// Experts whose decoder is not in p.tile_decoders get no items (another launch's). One whose
/// tile is larger than the code slots (a view whose format_mask misses the expert's format, so
/// the slots were sized without it) traps: staging it would overrun its neighbours' slots, and
/// skipping it would leave its rows unwritten with no error.
template <int kRowStrips, int kTokens, bool kRowSplit = false>
__device__ __forceinline__ ItemList build_tile_items(const GemmProblem& p, unsigned char* smem) {
  const int row_blocks = ceil_div(p.n_strips, kRowStrips);
  return build_item_list<kRowSplit>(p, smem, [&](int decoder, int tokens) -> long long {
    if (decoder < 0 || ((p.tile_decoders >> decoder) & 1u) == 0) return 0;
    if (decoder_tile_bytes(decoder) > p.a_slot_bytes) __trap();
    return static_cast<long long>(row_blocks) * ceil_div(tokens, kTokens);
  });
}

/// One tile item, located. Token blocks vary fastest: the blocks running together share one
/// row block's weight tiles (read from HBM once, then L2 hits), while the expert's x (at
/// most a few MB) stays in L2 across row blocks. (Row blocks fastest re-streamed every
/// weight once per token block: an expert's weights exceed L2 on Mixtral-size shapes.)
struct TileItem {
  int expert;
  int row_block;
  XTile x;
  unsigned short* y_rows;  ///< y row of the item's first token
};

template <int kRowStrips, int kTokens>
__device__ __forceinline__ TileItem tile_item(const GemmProblem& p, const ItemRef& r) {
  const int token_blocks = ceil_div(r.row_count, kTokens);
  const int block = static_cast<int>(r.local % token_blocks);
  const int row0 = r.row_begin + block * kTokens;
  TileItem it;
  it.expert = r.expert;
  it.row_block = static_cast<int>(r.local / token_blocks);
  it.x = XTile{static_cast<const unsigned short*>(p.x) + static_cast<int64_t>(row0) * p.k,
               min(kTokens, r.row_count - block * kTokens), p.k, (p.k & 7) == 0, row0};
  it.y_rows = static_cast<unsigned short*>(p.y) + static_cast<int64_t>(row0) * p.n;
  return it;
}

}  // namespace qmoe::dev
