// cuda/kernels/dequantize.cuh — decode-only kernel: every warp decodes whole 16x128 tiles
// with the same decoders the GEMM kernels use and writes the A-fragment values to
// w[e][row][col] (logical positions only). It exists to prove, bit for bit against
// ref::dequantize_to, what the GEMM kernels feed their tensor cores.
#pragma once
#include <algorithm>
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"

namespace qmoe::dev {
namespace dequant {

/// Tile (strip, kt)'s codes copied to the warp's shared slot (cp.async, as the GEMM kernels
/// copy them) and landed; returns the lane's parameter words of the tile.
template <class Dec>
__device__ __forceinline__ typename Dec::RawQuant stage_tile(const ExpertParams& ep, int strip,
                                                             int kt, int k_tiles, uint8_t* slot,
                                                             int lane) {
  Dec::copy_codes(ep.codes + (static_cast<int64_t>(strip) * k_tiles + kt) * Dec::kTileBytes, slot,
                  lane);
  cp_async_commit();
  typename Dec::RawQuant rq;
  Dec::load_quant(ep, strip, kt, lane, rq, true);
  cp_async_wait<0>();
  return rq;
}

/// Same path as the GEMM kernels: cp.async to the warp's shared slot, read back, decode.
template <class Act, class Dec>
__device__ void decode_tile(const ExpertParams& ep, int strip, int kt, int k_tiles, int n, int k,
                            uint8_t* slot, unsigned short* w_expert) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const typename Dec::RawQuant rq = stage_tile<Dec>(ep, strip, kt, k_tiles, slot, lane);
  uint32_t raw[Dec::kRawWords];
  Dec::read_codes(slot, lane, raw);
  const auto q =
      Dec::template prepare<Act>(ep, rq, Dec::template prepare_item<Act>(ep, strip, lane));
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) {
    uint32_t a[4];
    Dec::template decode_subtile<Act>(raw, j, q, a);
    // Register r holds row gid + 8(r%2), columns 2tig + 8(r/2) + {0, 1} of sub-tile j.
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = strip * kTileRows + (lane >> 2) + 8 * (r & 1);
      const int col = kt * kTileCols + 16 * j + 2 * (lane & 3) + 8 * (r >> 1);
      if (row >= n) continue;
      unsigned short* out = w_expert + static_cast<int64_t>(row) * k + col;
      if (col < k) out[0] = static_cast<unsigned short>(a[r] & 0xFFFFu);
      if (col + 1 < k) out[1] = static_cast<unsigned short>(a[r] >> 16);
    }
  }
}

/// Trellis tiles (trellis.cuh): the GEMM kernels never form these weights (they multiply the
/// codes' values by the rotated x), so this forms them from the spec, docs/formats.md §1:
/// per row, v at each position, u = H v (exact in int32, tcq::warp_hadamard), w = RNE_f32(
/// sigma_t u_t s), then RNE to Act. Lane l takes positions 4 l .. 4 l + 3 of every row.
template <class Act, class Dec>
__device__ void decode_trellis_tile(const ExpertParams& ep, int strip, int kt, int k_tiles, int n,
                                    int k, uint8_t* slot, unsigned short* w_expert) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  // Every lane's reads of the slot's previous tile before these copies: lanes copy chunks other
  // lanes of another decoder read (a mixed bank's previous tile).
  __syncwarp();
  // rq: rows gid (low half) and gid + 8 (high).
  const typename Dec::RawQuant rq = stage_tile<Dec>(ep, strip, kt, k_tiles, slot, lane);
  __syncwarp();  // the rows were copied by other lanes
  for (int r = 0; r < kTileRows; ++r) {
    const uint32_t scales = __shfl_sync(0xFFFFFFFFu, rq.scale[0], 4 * (r % 8));
    const float s =
        ActTraits<__half>::to_float(static_cast<unsigned short>(scales >> (16 * (r / 8))));
    int u[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) u[i] = Dec::position_value(slot + r * Dec::kRowBytes, 4 * lane + i);
    tcq::warp_hadamard(u, lane);
    const int row = strip * kTileRows + r;
    if (row >= n) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int t = 4 * lane + i;
      const float w = __fmul_rn(static_cast<float>(tcq::sign_negative(t) ? -u[i] : u[i]), s);
      w_expert[static_cast<int64_t>(row) * k + kt * kTileCols + t] = ActTraits<Act>::to_bits_rn(w);
    }
  }
  __syncwarp();  // every lane's reads of the slot before the next tile's copies
}

template <class Act>
__global__ void __launch_bounds__(kBlockThreads)
    dequantize_bank_kernel(const uint8_t* blob, const ExpertDesc* descs, int num_experts, int n,
                           int k, unsigned short* w) {
  __shared__ __align__(16) uint8_t slots[kBlockWarps][kMaxTileBytes];
  uint8_t* slot = slots[threadIdx.x / 32];
  const int n_strips = ceil_div(n, kTileRows), k_tiles = ceil_div(k, kTileCols);
  const long long tiles_per_expert = static_cast<long long>(n_strips) * k_tiles;
  const long long tiles = tiles_per_expert * num_experts;
  const long long warps = static_cast<long long>(gridDim.x) * kBlockWarps;
  for (long long t = (static_cast<long long>(blockIdx.x) * kBlockThreads + threadIdx.x) / 32;
       t < tiles; t += warps) {
    const int e = static_cast<int>(t / tiles_per_expert);
    const long long rem = t - e * tiles_per_expert;
    const int strip = static_cast<int>(rem / k_tiles), kt = static_cast<int>(rem % k_tiles);
    unsigned short* w_expert = w + static_cast<int64_t>(e) * n * k;
    with_expert_decoder<true, true>(blob, descs[e], [&](auto decoder, const ExpertParams& ep) {
      using Dec = decltype(decoder);
      if constexpr (RotatesX<Dec>::value)
        decode_trellis_tile<Act, Dec>(ep, strip, kt, k_tiles, n, k, slot, w_expert);
      else
        decode_tile<Act, Dec>(ep, strip, kt, k_tiles, n, k, slot, w_expert);
    });
  }
}

}  // namespace dequant

template <class Act>
cudaError_t launch_dequantize_bank(const uint8_t* blob, const ExpertDesc* descs, int num_experts,
                                   int n, int k, void* w, cudaStream_t stream) {
  const long long tiles =
      static_cast<long long>(ceil_div(n, kTileRows)) * ceil_div(k, kTileCols) * num_experts;
  constexpr long long kMaxBlocks = 4096;  // grid-stride beyond: plenty for a test kernel
  const int blocks =
      static_cast<int>(std::min((tiles + kBlockWarps - 1) / kBlockWarps, kMaxBlocks));
  // cudaLaunchKernel returns this launch's error; cudaGetLastError after <<<>>> would also take
  // (and clear) an earlier, unrelated one as its own.
  auto* out = static_cast<unsigned short*>(w);
  void* args[] = {&blob, &descs, &num_experts, &n, &k, &out};
  return cudaLaunchKernel(reinterpret_cast<const void*>(dequant::dequantize_bank_kernel<Act>),
                          dim3(blocks), dim3(kBlockThreads), args, 0, stream);
}

}  // namespace qmoe::dev
