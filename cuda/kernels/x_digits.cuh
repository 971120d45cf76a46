// cuda/kernels/x_digits.cuh — activations as 16-bit fixed point in two 8-bit digits, for the
// integer-mma decode of the weight-streaming kernel (grouped_gemv.cuh, IntDecoder::imma_a).
//
// Why: with bf16 mma the int codes must become bf16 pairs first (one SHF + one LOP3 per pair of
// weights). mma.m16n8k32 on u8 codes takes four codes per register, split out of their words by
// one shift and one mask for int2 (one register of four codes against two bf16 pairs) and one
// PRMT for int8 (against two bf16 parts with two mma each), int2's plus one PRMT per IMMA and a
// shift and LOP3 per register for int3 (int2's k order); int4 measured no faster with it
// (IntDecoder::kImmaMap).
// x must then be integer: per (row, k-tile) x_int = RNE(x * 2^(14 - E)), E = floor(log2 max |x|)
// over the tile's 128 k, so |x_int| <= 32767 (bf16 and fp16 carry 8 and 11 significant bits:
// the largest value maps exactly) and each value is off by at most 2^-15 of the tile's largest.
// The two digits lo = x_int & 255 (u8) and hi = x_int >> 8 (s8) are multiplied separately:
// sum q x_int = 256 sum q hi + sum q lo, exact in int32 for every int format and group.
//
// Layout in the grouped_gemm workspace, per (row, k-tile) of x: a record of kMaps maps x two
// digits x 128 bytes, ordered for the B fragments (lane tig's 32 bytes contiguous: IMMA i, half
// h, byte b); then, in a second array, TileInfo (sums of x_int per 32 k, and 2^(E - 14)).
// Non-finite x in a tile makes its scale NaN, so the outputs it feeds are NaN, as with bf16.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/decode/tile.cuh"
#include "cuda/kernels/schedule.cuh"

namespace qmoe::dev::xdig {

/// Orders of k within a k-tile that the decoders' A bytes take (IntDecoder::kImmaMap).
constexpr int kMaps = 2;
/// One digit of one k-tile of one row in one map.
constexpr int kDigitBytes = kTileCols;
constexpr int kRecordBytes = kMaps * 2 * kDigitBytes;

struct TileInfo {
  int32_t xsum[4];  ///< sum of x_int over k = 32 b .. 32 b + 31 of the k-tile
  float scale;      ///< x = scale * x_int
  int32_t pad[3];
};
static_assert(sizeof(TileInfo) == 32, "two 16-byte halves");

/// Workspace bytes for m rows of x with k_tiles k-tiles: records, then TileInfo.
inline size_t workspace_bytes(int64_t m, int k_tiles) {
  return static_cast<size_t>(m) * static_cast<size_t>(k_tiles) * (kRecordBytes + sizeof(TileInfo));
}

/// Byte offset of k (0..127 of a k-tile) in a digit block of map `map`: the B fragment of
/// mma.m16n8k32 gives lane (gid, tig) slots 4 tig + b (half 0) and 16 + 4 tig + b (half 1) of
/// IMMA i, and the decoder's A bytes of slot (h, b) hold the codes of
///   map 0: k = 32 i + 16 h + {2 tig, 2 tig + 8, 2 tig + 1, 2 tig + 9}[b]
///   map 1: k = 32 i + 8 h + {2 tig, 2 tig + 16, 2 tig + 1, 2 tig + 17}[b]
/// (any order of k is a correct product as long as A and B agree on it).
__host__ __device__ constexpr int slot_byte(int map, int k) {
  const int i = k >> 5, r = k & 31;
  const int h = map == 0 ? r >> 4 : (r >> 3) & 1;
  const int tig = (r & 7) >> 1;
  const int b = (map == 0 ? (r >> 3) & 1 : r >> 4) + 2 * (r & 1);
  return tig * 32 + i * 8 + h * 4 + b;
}

/// One warp per (row, k-tile): lane l converts k = 4 l .. 4 l + 3 of the tile. Rows outside
/// the experts' span (offsets_span) are left alone: no expert reads their records.
template <class Act>
__global__ void __launch_bounds__(256)
    x_digits_kernel(const unsigned short* x, int64_t m, int k, int k_tiles, const int32_t* offsets,
                    int num_experts, uint8_t* records, TileInfo* info) {
  wait_for_previous_kernel();  // x (and maybe the offsets) come from the previous kernel
  const int64_t w = static_cast<int64_t>(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int64_t row = w / k_tiles;
  const RowSpan span = offsets_span(offsets, num_experts, m);
  if (row < span.begin || row >= span.end) return;  // warp-uniform
  const int kt = static_cast<int>(w - row * k_tiles);
  float v[4];
  uint32_t amax = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int kk = kt * kTileCols + 4 * lane + j;
    const unsigned short bits = kk < k ? x[row * k + kk] : 0;
    v[j] = ActTraits<Act>::to_float(bits);
    amax = max(amax, __float_as_uint(v[j]) & 0x7FFFFFFFu);
  }
  // Non-negative floats order as their bits; NaN and infinity lie above every finite value.
  amax = __reduce_max_sync(0xFFFFFFFFu, amax);
  int xi[4] = {0, 0, 0, 0};
  float scale = 0.f;
  if (amax >= 0x7F800000u) {
    scale = __uint_as_float(0x7FC00000u);
  } else if (amax != 0) {
    int e = 0;
    frexpf(__uint_as_float(amax), &e);  // max = f * 2^e, f in [0.5, 1): E = e - 1
#pragma unroll
    for (int j = 0; j < 4; ++j) xi[j] = __float2int_rn(ldexpf(v[j], 15 - e));
    scale = ldexpf(1.f, e - 15);
  }
  uint8_t* rec = records + w * kRecordBytes;
#pragma unroll
  for (int map = 0; map < kMaps; ++map)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int at = map * 2 * kDigitBytes + slot_byte(map, 4 * lane + j);
      rec[at] = static_cast<uint8_t>(xi[j] & 0xFF);
      rec[at + kDigitBytes] = static_cast<uint8_t>((xi[j] >> 8) & 0xFF);
    }
  // Lanes 8 b .. 8 b + 7 hold k = 32 b .. 32 b + 31.
  int sum = xi[0] + xi[1] + xi[2] + xi[3];
#pragma unroll
  for (int d = 1; d < 8; d <<= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, d);
  if ((lane & 7) == 0) info[w].xsum[lane >> 3] = sum;
  if (lane == 0) info[w].scale = scale;
}

}  // namespace qmoe::dev::xdig
