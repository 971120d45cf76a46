// cuda/decode/tile.cuh — the packed tile layout seen from one lane (docs/formats.md §2.3-2.5):
// code planes, where an expert's sections are, and which scale a sub-tile uses.
#pragma once
#include <cstdint>
#include <type_traits>

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
        cp_async_16(smem_addr(plane_smem + off), plane + off);
      }
    }
  }

  /// The lane's words of the plane, from shared memory.
  __host__ __device__ static void read(const uint8_t* plane_smem, int lane, uint32_t* words) {
    if constexpr (C == 1) {
      const uint2 v = *reinterpret_cast<const uint2*>(plane_smem + lane * 8);
      words[0] = v.x;
      words[1] = v.y;
    } else {
      QMOE_UNROLL
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

  /// The word of pair p shifted so that its codes start at bits `at` and 16 + `at` (other
  /// bits unmasked: callers mask with kPairMask << at). p and at are compile-time constants
  /// after unrolling, so the word index selects a register and the shift is one SHF or none.
  __host__ __device__ static uint32_t placed(const uint32_t* words, int p, int at) {
    const int shift = C * (p % kPairsPerWord) - at;
    const uint32_t w = words[p / kPairsPerWord];
    return shift >= 0 ? w >> shift : w << -shift;
  }

  /// The codes of pair p as bytes: q0 at bit `at` of byte 0, q1 at bit `at` of byte 1 (other
  /// bits unmasked; the LUT decoders' PRMT selectors, lut.cuh). q0 sits at bit c = C (p % P)
  /// of its word and q1 at 16 + c: one PRMT moves their bytes c / 8 and c / 8 + 2 to bytes 0
  /// and 1 (the same PRMT for every pair of those bytes: computed once), then one SHF (none for
  /// a pair at bit `at` of its byte) puts them in place.
  __host__ __device__ static uint32_t placed_bytes(const uint32_t* words, int p, int at) {
    const int bit = C * (p % kPairsPerWord);
    const uint32_t bytes = byte_perm(words[p / kPairsPerWord], 0u, 0x4420u + 0x11u * (bit / 8));
    const int shift = bit % 8 - at;
    return shift >= 0 ? bytes >> shift : bytes << -shift;
  }
};

/// An expert's sections and group geometry, derived once per work item from its descriptor.
struct ExpertParams {
  const uint8_t* codes;   ///< tile (nt, kt) at codes + (nt * k_tiles + kt) * tile_bytes
  const uint8_t* scales;  ///< fp16 parameter blocks (docs/formats.md §2.5)
  const uint8_t* zeros;   ///< uint8, the same blocks; nullptr when symmetric
  int groups_pad;         ///< a strip's blocks hold 16 * groups_pad entries
  int group_tile_stride;  ///< first group of tile kt is kt * this (0: one group per row)
  uint32_t sym_zero;      ///< z = 2^(bits-1) when symmetric
};

/// A decoder's per-item constants: what the lane needs for every k-tile of one strip of a work
/// item, loaded and converted once per item (prepare_item) and passed to every k-tile's prepare.
/// Why: vq2's codebook entry (two words a lane) does not change along K; restaged and converted
/// every k-tile, it took 128 of the 160 bytes staged per strip and k-tile, 8 of 10 cp.async
/// chunks, and two conversions (vq1.5 likewise). The int, dense, LUT, vq2.5 and vq3 decoders have
/// none: this empty base (the LUT tables, 16 words a strip for nuq4, spill when held per item:
/// lut.cuh; vq2.5's and vq3's tables are loaded per vector: vector.cuh).
struct NoItemQuant {
  template <class Act>
  struct ItemQuant {};
  template <class Act>
  __device__ static ItemQuant<Act> prepare_item(const ExpertParams&, int /*strip*/, int /*lane*/) {
    return {};
  }
};

/// A decoder's per-item constants for activation type Act.
template <class Act, class Dec>
using ItemQuantOf = typename Dec::template ItemQuant<Act>;

/// Whether a decoder multiplies the rotated activations (Dec::kRotatedX: the trellis decoders,
/// trellis.cuh) instead of x.
template <class Dec, class = void>
struct RotatesX : std::false_type {};
template <class Dec>
struct RotatesX<Dec, std::void_t<decltype(Dec::kRotatedX)>> : std::bool_constant<Dec::kRotatedX> {};
/// The type a decoder's mma multiplies in a call with activations Act: Act, or fp16 for the
/// decoders of the rotated x (x_rotate.cuh writes it in fp16 for both types).
template <class Act, class Dec>
using MmaAct = std::conditional_t<RotatesX<Dec>::value, __half, Act>;

/// Where one 16-byte chunk of a strip's staged parameter blocks comes from (int.cuh,
/// quant_chunk): tile kt's chunk at src + kt * kt_stride; src null for a chunk not copied.
struct QuantChunk {
  const uint8_t* src;
  uint32_t kt_stride;
};

/// Groups per 16x128 tile of an int descriptor (the decoder's GPT): 4, 2 or 1 (g = 32, 64,
/// 128, or a single group per row: per-channel, whatever K is); 0 for any other group size.
__host__ __device__ inline int groups_per_tile(const ExpertDesc& d) {
  if (d.groups_pad == 1) return 1;
  switch (d.group_size) {
    case 32:
      return 4;
    case 64:
      return 2;
    case 128:
      return 1;
    default:
      return 0;
  }
}

__device__ __forceinline__ ExpertParams expert_params(const uint8_t* blob, const ExpertDesc& d) {
  ExpertParams p;
  p.codes = blob + d.codes_offset;
  p.scales = blob + d.scales_offset;
  // Only asymmetric int formats have zeros (other kinds' zeros_offset is their blob's end).
  p.zeros = d.symmetric || d.kind != static_cast<uint8_t>(FormatKind::kInt) ? nullptr
                                                                            : blob + d.zeros_offset;
  p.groups_pad = d.groups_pad;
  // groups_pad == 1 (per-channel, whatever K is) means group 0 for every k, padding included.
  p.group_tile_stride = d.groups_pad == 1 ? 0 : groups_per_tile(d);
  p.sym_zero = d.bits < 16 ? 1u << (d.bits - 1) : 0u;
  return p;
}

}  // namespace qmoe::dev
