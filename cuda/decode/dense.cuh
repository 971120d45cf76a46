// cuda/decode/dense.cuh — device decoder of the dense bf16 / fp16 formats (docs/formats.md
// §2.4: one 16-bit plane, P = 1, so each code word is literally an A-fragment register).
// Same interface as IntDecoder (see int.cuh); there are no scales.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/decode/common.cuh"
#include "cuda/decode/tile.cuh"

namespace qmoe::dev {

/// Stored: the dense weights' type (__nv_bfloat16 or __half).
template <class Stored>
struct DenseDecoder : NoItemQuant {
  using Plane = CodePlane<16>;
  static constexpr int kRawWords = Plane::kWords;
  static constexpr int kTileBytes = Plane::kBytes;

  struct RawQuant {};
  template <class Act>
  struct Quant {};
  static constexpr int kGroupsPerTile = 1;
  template <class Act>
  static constexpr int kAffineParts = 0;  // no codes: the weights are the A registers
  static constexpr int kImmaMap = -1;     // nor integer-mma decode

  __device__ static void copy_codes(const uint8_t* tile, uint8_t* tile_smem, int lane) {
    Plane::copy_async(tile, tile_smem, lane);
  }
  __device__ static void read_codes(const uint8_t* tile_smem, int lane,
                                    uint32_t (&raw)[kRawWords]) {
    Plane::read(tile_smem, lane, raw);
  }
  template <class Index = int64_t>
  __device__ static void load_quant(const ExpertParams&, int, int, int, RawQuant&, bool) {}
  static constexpr int kQuantChunks = 0;  // no parameter blocks
  static constexpr int kQuantBytes = 0;
  __device__ static void read_quant(const ExpertParams&, const uint8_t*, int, RawQuant&) {}
  template <class Act>
  __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant&,
                                       const ItemQuant<Act>&) {
    return {};
  }

  template <class Act>
  __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j, const Quant<Act>&,
                                        uint32_t (&a)[4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      // Pair p = 4j + r is word p. The other 16-bit type converts exactly to fp32, then RNE.
      if constexpr (std::is_same_v<Stored, __nv_bfloat16>)
        a[r] = ActTraits<Act>::from_bf16x2(raw[4 * j + r]);
      else
        a[r] = ActTraits<Act>::from_fp16x2(raw[4 * j + r]);
    }
  }
};

}  // namespace qmoe::dev
