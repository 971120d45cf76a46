// cuda/kernels/grouped_gemv.cuh — the weight-streaming grouped kernel ("decode": a few tokens
// per expert). Bound by the bytes of the active experts' packed weights, so everything here
// serves one goal: many weight bytes in flight per SM, each byte read once.
//
// Work item = (expert with tokens in [min_tokens, max_tokens], group of 16-row strips, block
// of up to 16 tokens = two mma n8 chunks); the persistent grid walks the device-built
// schedule. An expert with more tokens gets one item per 16-token block; token blocks vary
// fastest, so its weights are re-read from L2, not HBM.
// Block = 8 warps. Each strip gets strip_warps warps (1, 2, 4 or 8; each >= 2 k-tiles) that
// take its k-tiles round-robin; short strips (small K) share the block, so small experts
// still keep all 8 warps streaming.
// Per warp: an 8 KB ring of code tiles in shared memory, filled by cp.async up to
// ring - 1 tiles ahead (7.5 KB of int2, 7 KB of int4, 4 KB of dense in flight per warp,
// independent of registers); each lane copies exactly the chunks it later reads back, so
// the cp.async wait is the only synchronisation. Scales/zeros are prefetched one tile ahead
// in registers. Weights are the mma A operand (16 rows, decoded in registers), tokens the
// n8 side; B fragments come straight from global memory (x is small and L1/L2 resident).
// The warps' fp32 partial sums meet in shared memory in a fixed order (deterministic) and
// each output is rounded once.
#pragma once
#include <cstdint>

#include "cuda/decode/registry.cuh"
#include "cuda/kernels/launch.cuh"
#include "cuda/kernels/schedule.cuh"

namespace qmoe::dev {
namespace gemv {

/// Tokens per work item, as n8 chunks: enough for decode batches, few registers. (More
/// chunks per item were tried: the compiler hoists their B loads and spills.)
constexpr int kChunks = 2;
constexpr int kTokens = 8 * kChunks;
/// Shared-memory ring per warp: two dense tiles (the largest), 16 int2 tiles.
constexpr int kRingBytes = 8192;

/// Warps sharing one strip: the most (power of two, <= 8) that still gives each >= 2 k-tiles,
/// so every warp overlaps a copy with a multiply.
__device__ __forceinline__ int warps_per_strip(int k_tiles) {
  int warps = kBlockWarps;
  while (warps > 1 && k_tiles < 2 * warps) warps >>= 1;
  return warps;
}

constexpr size_t kReduceSmemBytes =
    static_cast<size_t>(kBlockWarps) * kChunks * 4 * kWarpSize * sizeof(float);

constexpr size_t smem_bytes(int num_experts) {
  return schedule_smem_bytes(num_experts) + kReduceSmemBytes +
         static_cast<size_t>(kBlockWarps) * kRingBytes;
}

/// The tokens of one work item.
struct Tokens {
  const unsigned short* x;  ///< x row of the item's first token, [count, k]
  int count;                ///< 1 .. kTokens
  int k;                    ///< row stride and bound of x
};

/// (x[tok][k], x[tok][k+1]) as a b16x2 register; 0 past K and for tokens beyond the item
/// (padded weights decode to 0, but x there may hold anything, NaN included, or not exist).
__device__ __forceinline__ uint32_t load_x_pair(const unsigned short* row, int k, int k_dim,
                                                bool ok) {
  if (!ok || k >= k_dim) return 0u;
  // Even K: rows are 4-byte aligned and k is even, so k + 1 < K and one 32-bit load is safe.
  if ((k_dim & 1) == 0) return __ldg(reinterpret_cast<const unsigned int*>(row + k));
  const uint32_t lo = __ldg(row + k);
  const uint32_t hi = k + 1 < k_dim ? static_cast<uint32_t>(__ldg(row + k + 1)) : 0u;
  return lo | (hi << 16);
}

/// B fragment (k16 x n8, "col") of sub-tile j of k-tile kt for tokens 8c..8c+7: lane holds
/// token 8c + gid at k = 2*tig, 2*tig+1 (b0) and 2*tig+8, 2*tig+9 (b1).
__device__ __forceinline__ void load_b(const Tokens& t, int c, int kt, int j, int lane,
                                       uint32_t& b0, uint32_t& b1) {
  const int tok = 8 * c + (lane >> 2);
  const bool ok = tok < t.count;
  const unsigned short* row = t.x + static_cast<int64_t>(ok ? tok : 0) * t.k;
  const int k = kt * kTileCols + 16 * j + 2 * (lane & 3);
  b0 = load_x_pair(row, k, t.k, ok);
  b1 = load_x_pair(row, k + 8, t.k, ok);
}

/// acc[c] += W_tile(16 x 128) * x_chunk_c^T for the item's chunks.
template <class Act, class Dec>
__device__ __forceinline__ void multiply_tile(const uint32_t (&raw)[Dec::kRawWords],
                                              const typename Dec::RawQuant& rq,
                                              const ExpertParams& ep, int kt, const Tokens& t,
                                              int chunks, int lane, float (&acc)[kChunks][4]) {
  // Chunk 0 always holds a token: fetch its B fragments first, the decode hides the latency.
  uint32_t b[kSubtiles][2];
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) load_b(t, 0, kt, j, lane, b[j][0], b[j][1]);
  const auto q = Dec::template prepare<Act>(ep, rq);
#pragma unroll
  for (int j = 0; j < kSubtiles; ++j) {
    uint32_t a[4];
    Dec::template decode_subtile<Act>(raw, j, q, a);
    ActTraits<Act>::mma(acc[0], a, b[j][0], b[j][1]);
#pragma unroll
    for (int c = 1; c < kChunks; ++c) {
      if (c < chunks) {
        uint32_t b0, b1;
        load_b(t, c, kt, j, lane, b0, b1);
        ActTraits<Act>::mma(acc[c], a, b0, b1);
      }
    }
  }
}

/// One work item: strips strip0 .. strip0 + 8/strip_warps - 1 of one expert, t.count
/// tokens. Whole block (ends with __syncthreads).
template <class Act, class Dec>
__device__ void run_item(const GemmProblem& p, const ExpertParams& ep, int strip0, int strip_warps,
                         const Tokens& t, unsigned short* y_rows, float* reduce, uint8_t* rings) {
  constexpr int kRingTiles = kRingBytes / Dec::kTileBytes;
  constexpr int kAhead = kRingTiles - 1;  // tiles in flight while one is multiplied
  const int warp = static_cast<int>(threadIdx.x) >> 5;
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int strip = strip0 + warp / strip_warps;
  const int first_kt = warp % strip_warps;  // this warp's k-tiles: first_kt + i * strip_warps
  const int tiles =
      strip < p.n_strips && first_kt < p.k_tiles ? ceil_div(p.k_tiles - first_kt, strip_warps) : 0;
  const int chunks = ceil_div(t.count, 8);
  const uint8_t* strip_codes =
      ep.codes + static_cast<int64_t>(strip < p.n_strips ? strip : 0) * p.k_tiles * Dec::kTileBytes;
  uint8_t* ring = rings + warp * kRingBytes;
  auto tile_of = [&](int i) { return first_kt + i * strip_warps; };

  float acc[kChunks][4];
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[c][i] = 0.f;

      // One cp.async group per tile (empty past the last), so "tile i landed" is always
      // "at most kAhead - 1 newer groups pending".
#pragma unroll
  for (int i = 0; i < kAhead; ++i) {
    if (i < tiles)
      Dec::copy_codes(strip_codes + static_cast<int64_t>(tile_of(i)) * Dec::kTileBytes,
                      ring + i * Dec::kTileBytes, lane);
    cp_async_commit();
  }
  typename Dec::RawQuant rq;
  Dec::load_quant(ep, strip, tile_of(0), lane, rq, tiles > 0);
  for (int i = 0; i < tiles; ++i) {
    cp_async_wait<kAhead - 1>();
    // Refill the slot of tile i - 1 (this lane read it in the previous iteration).
    const int ahead = i + kAhead;
    if (ahead < tiles)
      Dec::copy_codes(strip_codes + static_cast<int64_t>(tile_of(ahead)) * Dec::kTileBytes,
                      ring + (ahead % kRingTiles) * Dec::kTileBytes, lane);
    cp_async_commit();
    typename Dec::RawQuant next_rq;
    Dec::load_quant(ep, strip, i + 1 < tiles ? tile_of(i + 1) : 0, lane, next_rq, i + 1 < tiles);
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(ring + (i % kRingTiles) * Dec::kTileBytes, lane, raw);
    multiply_tile<Act, Dec>(raw, rq, ep, tile_of(i), t, chunks, lane, acc);
    rq = next_rq;
  }

  // reduce[warp][c][i][lane]: the C fragments of every warp (zeros for warps without tiles).
  float* mine = reduce + warp * (kChunks * 4 * kWarpSize);
#pragma unroll
  for (int c = 0; c < kChunks; ++c)
    if (c < chunks)
#pragma unroll
      for (int i = 0; i < 4; ++i) mine[(c * 4 + i) * kWarpSize + lane] = acc[c][i];
  __syncthreads();

  const int strips = min(kBlockWarps / strip_warps, p.n_strips - strip0);
  const int per_strip = t.count * kTileRows;
  for (int idx = static_cast<int>(threadIdx.x); idx < strips * per_strip; idx += kBlockThreads) {
    const int s = idx / per_strip;
    const int rem = idx - s * per_strip;
    const int tok = rem >> 4, r = rem & 15;  // consecutive threads: consecutive output rows n
    const int n = (strip0 + s) * kTileRows + r;
    if (n >= p.n) continue;
    // C fragment of chunk tok/8: lane 4*(r%8) + (tok%8)/2, register (tok%2) + 2*(r/8).
    const int col = tok & 7;
    const int src =
        ((tok >> 3) * 4 + (col & 1) + 2 * (r >> 3)) * kWarpSize + 4 * (r & 7) + (col >> 1);
    float sum = 0.f;
    for (int w = s * strip_warps; w < (s + 1) * strip_warps; ++w)
      sum += reduce[w * (kChunks * 4 * kWarpSize) + src];
    y_rows[static_cast<int64_t>(tok) * p.n + n] = ActTraits<Act>::to_bits_rn(sum);
  }
  __syncthreads();
}

template <class Act>
__global__ void __launch_bounds__(kBlockThreads, 2) grouped_gemv_kernel(const GemmProblem p) {
  extern __shared__ __align__(16) unsigned char smem[];
  const Schedule sched = carve_schedule(smem, p.num_experts);
  float* reduce = reinterpret_cast<float*>(smem + schedule_smem_bytes(p.num_experts));
  uint8_t* rings = reinterpret_cast<uint8_t*>(reduce) + kReduceSmemBytes;

  const int strip_warps = warps_per_strip(p.k_tiles);
  const int strips_per_item = kBlockWarps / strip_warps;
  const int strip_groups = ceil_div(p.n_strips, strips_per_item);
  const long long total = build_schedule(
      p.offsets, p.num_experts, p.m,
      [&](int e, int tokens) -> long long {
        if (tokens < p.min_tokens || tokens > p.max_tokens) return 0;
        if (decoder_id(p.descs[e]) < 0) return 0;
        return static_cast<long long>(strip_groups) * ceil_div(tokens, kTokens);
      },
      sched);

  const auto* x = static_cast<const unsigned short*>(p.x);
  auto* y = static_cast<unsigned short*>(p.y);
  for (long long item = blockIdx.x; item < total; item += gridDim.x) {
    const int e = find_expert(sched.item_start, p.num_experts, item);
    const long long local = item - sched.item_start[e];
    // Token blocks vary fastest: the blocks re-reading a strip group run together (L2 hits).
    const int blocks = ceil_div(sched.row_count[e], kTokens);
    const int block = static_cast<int>(local % blocks);
    const int strip0 = static_cast<int>(local / blocks) * strips_per_item;
    const int row0 = sched.row_begin[e] + block * kTokens;
    const Tokens t{x + static_cast<int64_t>(row0) * p.k,
                   min(kTokens, sched.row_count[e] - block * kTokens), p.k};
    unsigned short* y_rows = y + static_cast<int64_t>(row0) * p.n;
    const ExpertDesc desc = p.descs[e];
    const ExpertParams ep = expert_params(p.blob, desc);
    with_decoder(decoder_id(desc), [&](auto decoder) {
      run_item<Act, decltype(decoder)>(p, ep, strip0, strip_warps, t, y_rows, reduce, rings);
    });
  }
}

}  // namespace gemv

template <class Act>
cudaError_t launch_grouped_gemv(const GemmProblem& p, cudaStream_t stream) {
  static GridCache cache;
  const auto kernel = gemv::grouped_gemv_kernel<Act>;
  int grid = 0;
  const size_t most = gemv::smem_bytes(kMaxExperts);
  cudaError_t err =
      persistent_grid(reinterpret_cast<const void*>(kernel), most, most, 0, &cache, &grid);
  if (err != cudaSuccess) return err;
  kernel<<<grid, kBlockThreads, gemv::smem_bytes(p.num_experts), stream>>>(p);
  return cudaGetLastError();
}

}  // namespace qmoe::dev
