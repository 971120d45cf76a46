// cuda/kernels/x_rotate.cuh — the activations the trellis decoders multiply (trellis.cuh): per
// row of x and 128-input block, x~ = H (sigma . x) / 128 in fp16, H the Sylvester Hadamard
// matrix and sigma the format's fixed signs (docs/formats.md §1). Then per block and output row
// sum_t x_t w_t = 128 s sum_j v_j x~_j: the weights' rotation moves to x, once per token for
// every row and expert, instead of a 128-point transform per weight row.
// Why / 128: |x~_j| <= 128 max |x|, so x~ / 128 is within fp16's range wherever x is (bf16 x
// beyond 65504 overflows to infinity, as an fp16 input would); the power of two is exact, and
// the decoder folds the 128 into each block's fp32 scale.
// The butterflies run in fp32 (x is bf16 or fp16, 8 or 11 significant bits; a sum of 128 such
// terms is exact in fp32 only up to their exponent spread), rounded once to fp16; the order is
// fixed, so the result is deterministic. Non-finite x makes its block's x~ non-finite (NaN
// outputs, as with x itself).
// Layout: [m, k] fp16, as x (k a multiple of 128: trellis banks have no padded columns).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/decode/tile.cuh"
#include "cuda/decode/trellis.cuh"
#include "cuda/kernels/schedule.cuh"

namespace qmoe::dev::xrot {

/// Workspace bytes of x~ for m rows of k inputs.
inline size_t workspace_bytes(int64_t m, int64_t k) {
  return static_cast<size_t>(m) * static_cast<size_t>(k) * 2;
}

/// One warp per (row, block): lane l holds positions 4 l .. 4 l + 3 (tcq::warp_hadamard). Rows
/// outside the experts' span (offsets_span) are not read: a caller need not write them (a
/// capacity-sized x); their x~ is left alone, but for kRotatedXZeroedRows past its end (zeroes).
template <class Act>
__global__ void __launch_bounds__(256)
    rotate_x_kernel(const unsigned short* x, int64_t m, int k, const int32_t* offsets,
                    int num_experts, unsigned short* x_rotated) {
  wait_for_previous_kernel();  // x (and maybe the offsets) come from the previous kernel
  const int blocks = k / kTileCols;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t row = w / blocks;
  const RowSpan span = offsets_span(offsets, num_experts, m);
  const int64_t at = w * kTileCols + 4 * lane;  // rows are k apart: block w starts at 128 w
  if (row < span.begin || row >= min(m, span.end + kRotatedXZeroedRows)) return;  // warp-uniform
  if (row >= span.end) {
    *reinterpret_cast<uint2*>(x_rotated + at) = make_uint2(0u, 0u);
    return;
  }
  const uint2 bits = *reinterpret_cast<const uint2*>(x + at);
  const uint32_t pairs[2] = {bits.x, bits.y};
  float z[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float v =
        ActTraits<Act>::to_float(static_cast<unsigned short>(pairs[i / 2] >> (16 * (i % 2))));
    z[i] = tcq::sign_negative(static_cast<uint32_t>(4 * lane + i)) ? -v : v;
  }
  tcq::warp_hadamard(z, lane);
  constexpr float kScale = 1.f / tcq::kRotatedXScale;
  uint32_t out[2];
#pragma unroll
  for (int p = 0; p < 2; ++p)
    out[p] = ActTraits<__half>::pack_rn(z[2 * p] * kScale, z[2 * p + 1] * kScale);
  *reinterpret_cast<uint2*>(x_rotated + at) = make_uint2(out[0], out[1]);
}

}  // namespace qmoe::dev::xrot

namespace qmoe::dev {

template <class Act>
cudaError_t launch_rotate_x(const GemmProblem& p, cudaStream_t stream) {
  if (p.k % kTileCols != 0) return cudaErrorInvalidValue;  // trellis banks: whole blocks
  // The grid is one warp per (row, block); the cache only answers whether PDL applies.
  static GridCache cache;
  const auto* kernel = reinterpret_cast<const void*>(xrot::rotate_x_kernel<Act>);
  GridSize grid;
  const cudaError_t err = persistent_grid(kernel, 0, 0, 0, &cache, &grid);
  if (err != cudaSuccess) return err;
  const auto* x = static_cast<const unsigned short*>(p.x);
  int64_t m = p.m;
  int k = p.k;
  const int32_t* offsets = p.offsets;
  int num_experts = p.num_experts;
  unsigned short* x_rotated = p.x_rotated;
  void* args[] = {&x, &m, &k, &offsets, &num_experts, &x_rotated};
  return launch_warp_kernel(kernel, p.m * (p.k / kTileCols), grid.pdl, args, stream);
}
// Instantiated once, in grouped_gemv_{bf16,fp16}.cu (grouped_gemm.cu calls them too).
extern template cudaError_t launch_rotate_x<__nv_bfloat16>(const GemmProblem&, cudaStream_t);
extern template cudaError_t launch_rotate_x<__half>(const GemmProblem&, cudaStream_t);

}  // namespace qmoe::dev
