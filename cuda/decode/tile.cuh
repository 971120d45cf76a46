// cuda/decode/tile.cuh — the packed tile layout seen from one lane (docs/formats.md §2.3-2.5):
// code planes, where an expert's sections are, and which scale a sub-tile uses.
#pragma once
#include <cstdint>

#include "cuda/decode/common.cuh"
#include "qmoe/packed.hpp"

namespace qmoe::dev {

/// Sub-tiles (k16) per 16x128 tile: the A fragments of one k-tile.
constexpr int kSubtiles = 8;
/// Bytes one warp reads per 16-byte chunk of a plane (32 lanes x 16 B).
constexpr int kChunkStrideBytes = 32 * 16;

/// One plane of C code bits: each lane holds its 32 pairs in 2C words, P = 16/C pairs per
/// word; pair p sits in word p/P at bit C*(p%P) (first element) and 16 + C*(p%P) (second).
template <int C>
struct CodePlane {
  static constexpr int kPairsPerWord = 16 / C;
  static constexpr int kWords = 2 * C;
  static constexpr int kBytes = 32 * 8 * C;
  static constexpr uint32_t kPairMask = ((1u << C) - 1u) * 0x10001u;

  /// Starts copying the lane's words of the plane from global to shared memory (same
  /// offsets on both sides). Chunk-major, then lane: 16-byte chunks (8-byte for C = 1), so
  /// each copy instruction of the warp moves 512 (256) contiguous bytes. A lane later reads
  /// back only what it copied itself, so its own cp.async wait is the only sync needed.
  __device__ static void copy_async(const uint8_t* plane, uint8_t* plane_smem, int lane) {
    if constexpr (C == 1) {
      cp_async_8(smem_addr(plane_smem + lane * 8), plane + lane * 8);
    } else {
#pragma unroll
      for (int ch = 0; ch < kWords / 4; ++ch) {
        const int off = ch * kChunkStrideBytes + lane * 16;
        cp_async_16(smem_addr(plane_smem + off), plane + off, 16);
      }
    }
  }

  /// The lane's words of the plane, from shared memory.
  __device__ static void read(const uint8_t* plane_smem, int lane, uint32_t* words) {
    if constexpr (C == 1) {
      const uint2 v = *reinterpret_cast<const uint2*>(plane_smem + lane * 8);
      words[0] = v.x;
      words[1] = v.y;
    } else {
#pragma unroll
      for (int ch = 0; ch < kWords / 4; ++ch) {
        const uint4 v =
            *reinterpret_cast<const uint4*>(plane_smem + ch * kChunkStrideBytes + lane * 16);
        words[4 * ch + 0] = v.x;
        words[4 * ch + 1] = v.y;
        words[4 * ch + 2] = v.z;
        words[4 * ch + 3] = v.w;
      }
    }
  }

  /// Codes of pair p: first element in bits 0.., second in bits 16.. (p is a compile-time
  /// constant after unrolling, so the word index selects a register).
  __device__ static uint32_t pair(const uint32_t* words, int p) {
    return (words[p / kPairsPerWord] >> (C * (p % kPairsPerWord))) & kPairMask;
  }
};

/// An expert's sections and group geometry, derived once per work item from its descriptor.
struct ExpertParams {
  const uint8_t* codes;     ///< tile (nt, kt) at codes + (nt * k_tiles + kt) * tile_bytes
  const uint8_t* scales;    ///< fp16 [n_pad, groups_pad]
  const uint8_t* zeros;     ///< uint8 [n_pad, groups_pad]; nullptr when symmetric
  int groups_pad;           ///< row stride of scales / zeros
  int groups_per_tile;      ///< 4, 2 or 1 (g = 32, 64, >= 128 or a single group per row)
  int group_tile_stride;    ///< first group of tile kt is kt * this (0: one group per row)
  int subtile_group_shift;  ///< group within the tile of sub-tile j = j >> this
  uint32_t sym_zero;        ///< z = 2^(bits-1) when symmetric
};

__device__ __forceinline__ ExpertParams expert_params(const uint8_t* blob, const ExpertDesc& d) {
  ExpertParams p;
  p.codes = blob + d.codes_offset;
  p.scales = blob + d.scales_offset;
  p.zeros = d.symmetric ? nullptr : blob + d.zeros_offset;
  p.groups_pad = d.groups_pad;
  // groups_pad == 1 (per-channel, whatever K is) means group 0 for every k, padding included.
  const bool single_group = d.groups_pad == 1;
  p.groups_per_tile = single_group ? 1 : kTileCols / d.group_size;
  p.group_tile_stride = single_group ? 0 : p.groups_per_tile;
  p.subtile_group_shift = p.groups_per_tile == 4 ? 1 : p.groups_per_tile == 2 ? 2 : 3;
  p.sym_zero = d.bits < 16 ? 1u << (d.bits - 1) : 0u;
  return p;
}

}  // namespace qmoe::dev
