// cuda/kernels/gated_silu.cuh — the gated SiLU of Epilogue::kSiluMulInterleaved (qmoe/gpu.hpp):
// out[8 s + j] = RNE(SiLU(g) * u), g = in[16 s + j], u = in[16 s + 8 + j]. Why rows interleaved
// by 8: in the mma C fragment (m16n8), a lane holds rows gid and gid + 8 of a 16-row strip for
// the same token, so the decode kernel finds each output's gate and up sums side by side after
// its reduction and writes the activated value, never the [m, 2I] product. The kernel below is
// the same activation for a product that the tile kernels wrote out.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/kernels/schedule.cuh"

namespace qmoe::dev {

/// SiLU(g) * u in fp32 (ref::silu_and_mul's value before its rounding to the activation type).
__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.f + expf(-g)) * u;
}

/// One thread per 16-element strip of a row of h: two 16-byte loads, one 16-byte store. Where
/// offsets is given (a grouped_gemm call's [num_experts + 1] offsets, read on the device), only
/// the rows of offsets_span are activated: the other rows of h were not written by the call, and
/// those of y must not be. h and y are contiguous, so strip i of the whole matrix is at h + 16 i
/// and y + 8 i.
template <class Act>
__global__ void __launch_bounds__(kBlockThreads)
    silu_mul_interleaved_kernel(const uint4* h, uint4* y, int64_t rows, int strips,
                                const int32_t* offsets, int num_experts) {
  wait_for_previous_kernel();
  const RowSpan span =
      offsets != nullptr ? offsets_span(offsets, num_experts, rows) : RowSpan{0, rows};
  const int64_t total = span.end * strips;
  for (int64_t i =
           span.begin * strips + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint4 g = h[2 * i], u = h[2 * i + 1];
    const uint32_t gw[4] = {g.x, g.y, g.z, g.w}, uw[4] = {u.x, u.y, u.z, u.w};
    uint32_t out[4];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 gf = ActTraits<Act>::unpack(gw[w]), uf = ActTraits<Act>::unpack(uw[w]);
      out[w] = ActTraits<Act>::pack_rn(silu_mul(gf.x, uf.x), silu_mul(gf.y, uf.y));
    }
    y[i] = make_uint4(out[0], out[1], out[2], out[3]);
  }
}

}  // namespace qmoe::dev
