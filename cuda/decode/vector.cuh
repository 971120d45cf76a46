// cuda/decode/vector.cuh — device decoder of the vector format vq2 (docs/formats.md §1, §2.2):
// the four weights of row n at columns 16u + 2t + {0, 1, 8, 9} share an 8-bit code q,
// w = RNE_Act((-1)^(bit 4 + d of q) * M[q & 15][d] * s) (for bf16 both factors RNE'd to bf16
// first), M the fixed table of 16 magnitude vectors, s the fp16 scale of the row's 128 inputs.
// Same interface as IntDecoder (int.cuh) without the affine and integer-mma forms: every kernel
// forms the weights with decode_subtile, as for dense and LUT tiles.
//
// Why this layout decodes cheaply: a vector's four dimensions are exactly registers a0/a2
// (row gid) or a1/a3 (row gid + 8) of the lane's A fragment in one k16 sub-tile, and its code
// is byte 2j + h of the lane's 16 code bytes (§2.2). The 16 magnitude vectors live one per lane
// (lanes m and m + 16 hold entry m), so an entry is two
// shuffles; the signs are XORs of bit 15 / 31; the scale two bf16x2/half2 multiplies. The
// table entries are loaded and converted once per work item (ItemQuant), not per k-tile.
#pragma once
#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/decode/int.cuh"
#include "cuda/decode/tile.cuh"

namespace qmoe::dev {

/// vq2's magnitude table (spec data, docs/formats/vq2_codebook.inc): entry m's dimensions
/// 0, 1 and 2, 3 as fp16 pairs at words 2m and 2m + 1, loaded 8 bytes at a time (once per work
/// item: prepare_item). Internal linkage: one copy per translation unit (no relocatable device
/// code).
static __device__ __align__(16) const uint16_t kVq2Codebook[16 * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};

/// The code bytes: lane l's 16 at tile byte 16 l (§2.2), the layout of an int2 tile's one plane,
/// so IntDecoder<2, 1> copies and reads them (raw[w] = bytes 4w .. 4w + 3). The scales are
/// int2:g128:sym's (§2.5), so the same decoder loads, stages and reads them too.
struct VectorDecoder : FormedFromIntCodes<IntDecoder<2, 1>> {
  static constexpr int kEntries = 16;
  static constexpr int kEntryBytes = 8;  ///< one magnitude vector: 4 fp16 values

  /// The lane's table entry (lane & 15) as Act pairs, dimensions 0, 1 and 2, 3: the same for
  /// every strip and k-tile, loaded and converted once per work item.
  template <class Act>
  struct ItemQuant {
    uint32_t entry[2];
  };
  /// Per k-tile: fp16 scales of rows gid (scale[0] low half) and gid + 8 (high half).
  using RawQuant = Codes::RawQuant;
  /// The entry and, scale[h] = (s, s) of row gid + 8h, RNE'd to Act.
  template <class Act>
  struct Quant {
    uint32_t entry[2];
    uint32_t scale[2];
  };

  template <class Act>
  __device__ static ItemQuant<Act> prepare_item(const ExpertParams&, int /*strip*/, int lane) {
    uint32_t entry[2];
    load_words<kEntryBytes>(
        reinterpret_cast<const uint8_t*>(kVq2Codebook) + kEntryBytes * (lane & (kEntries - 1)),
        entry);
    return item_quant<Act>(entry);
  }
  /// The conversion of prepare_item (host code too, for the tests).
  template <class Act>
  __host__ __device__ static ItemQuant<Act> item_quant(const uint32_t (&entry)[2]) {
    ItemQuant<Act> q;
    QMOE_UNROLL
    for (int i = 0; i < 2; ++i) q.entry[i] = ActTraits<Act>::from_fp16x2(entry[i]);
    return q;
  }

  /// The scales: int2:g128:sym's loads, staged chunks (the zeros chunk is not copied: null
  /// zeros) and shared-memory reads.
  static constexpr int kQuantChunks = Codes::kQuantChunks;
  static constexpr int kQuantBytes = Codes::kQuantBytes;
  template <class Index = int64_t>
  __device__ static void load_quant(const ExpertParams& ep, int strip, int kt, int lane,
                                    RawQuant& rq, bool pred) {
    Codes::template load_quant<Index>(ep, strip, kt, lane, rq, pred);
  }
  __device__ static QuantChunk quant_chunk(const ExpertParams& ep, int strip, int c) {
    return Codes::quant_chunk(ep, strip, c);
  }
  __device__ static void read_quant(const ExpertParams& ep, const uint8_t* quant_smem, int lane,
                                    RawQuant& rq) {
    Codes::read_quant(ep, quant_smem, lane, rq);
  }

  template <class Act>
  __host__ __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant& rq,
                                                const ItemQuant<Act>& item) {
    Quant<Act> q;
    QMOE_UNROLL
    for (int i = 0; i < 2; ++i) q.entry[i] = item.entry[i];
    QMOE_UNROLL
    for (int h = 0; h < 2; ++h)
      q.scale[h] = ActTraits<Act>::scale_pair((rq.scale[0] >> (16 * h)) & 0xFFFFu);
    return q;
  }

  /// Code of the vector of row gid + 8h in sub-tile j: byte 2j + h of the lane's 16.
  __host__ __device__ static uint32_t code_of(const uint32_t (&raw)[kRawWords], int j, int h) {
    return (raw[j >> 1] >> (16 * (j & 1) + 8 * h)) & 0xFFu;
  }
  /// The sign bits of dimensions d0 and d0 + 1 (code bits 4 + d0, 5 + d0) placed on the sign
  /// bits of a 16-bit pair's halves (bits 15 and 31): XOR them into the pair of magnitudes.
  /// One IMAD and one LOP3 (which also does the XOR): code * (2^(11 - d0) + 2^(26 - d0)) is
  /// code << (11 - d0) (bits 11 - d0 .. 18 - d0) plus code << (26 - d0) (bits 26 - d0 and up),
  /// which do not overlap for a code below 2^8: bit 15 is code bit 4 + d0, bit 31 bit 5 + d0.
  __host__ __device__ static uint32_t sign_mask(uint32_t code, int d0) {
    return (code * ((1u << (11 - d0)) + (1u << (26 - d0)))) & 0x80008000u;
  }

  template <class Act>
  __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j,
                                        const Quant<Act>& q, uint32_t (&a)[4]) {
    // a[h] = dimensions 0, 1 and a[h + 2] = dimensions 2, 3 of row gid + 8h's vector.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t code = code_of(raw, j, h);
      // Source lane code mod 32: lanes m and m + 16 both hold entry m, so bit 4 (a sign) does
      // not matter and the index needs no mask. Every lane of the warp reaches here: the
      // kernels decode whole tiles per warp.
      const int lane = static_cast<int>(code);
      const uint32_t entry[2] = {__shfl_sync(0xFFFFFFFFu, q.entry[0], lane),
                                 __shfl_sync(0xFFFFFFFFu, q.entry[1], lane)};
      form_vector<Act>(code, entry, q.scale[h], a[h], a[h + 2]);
    }
  }

  /// The A registers of one vector from its code, its table entry as Act pairs (dimensions 0, 1
  /// and 2, 3) and its row's scale pair: the signs XORed on, the scale applied, one rounding.
  /// Host code too, so that the CPU can check the decoder's registers (tests).
  template <class Act>
  __host__ __device__ static void form_vector(uint32_t code, const uint32_t (&entry)[2],
                                              uint32_t scale2, uint32_t& dims01, uint32_t& dims23) {
    dims01 = ActTraits<Act>::mul_pair_rn(entry[0] ^ sign_mask(code, 0), scale2);
    dims23 = ActTraits<Act>::mul_pair_rn(entry[1] ^ sign_mask(code, 2), scale2);
  }
};

}  // namespace qmoe::dev
