// cuda/decode/vector.cuh — device decoder of the vector formats vq1.5 / vq2 / vq2.5 / vq3
// (docs/formats.md §1, §2.2): the four weights of row n at columns 16u + 2t + {0, 1, 8, 9}
// share a b-bit code q (b = 6, 8, 10, 12), w = RNE_Act((-1)^(bit b - 4 + d of q) *
// M[q mod 2^(b-4)][d] * s) (for bf16 both factors RNE'd to bf16 first), M the format's fixed
// table of 2^(b-4) magnitude vectors, s the fp16 scale of the row's 128 inputs.
// Same interface as IntDecoder (int.cuh) without the affine and integer-mma forms: every kernel
// forms the weights with decode_subtile, as for dense and LUT tiles.
//
// Why this layout decodes cheaply: a vector's four dimensions are exactly registers a0/a2
// (row gid) or a1/a3 (row gid + 8) of the lane's A fragment in one k16 sub-tile, and its code
// is slot 2j + h of the lane's 16 (§2.2: the lane's own bytes in each code plane). The signs
// are XORs of bit 15 / 31; the scale two bf16x2/half2 multiplies. The magnitude vector:
// - vq1.5 and vq2 (4 and 16 entries): held in the lanes (lane m holds entry m mod 2^(b-4)),
//   fetched by two shuffles; loaded and converted once per work item (ItemQuant), not per
//   k-tile;
// - vq2.5 and vq3 (64 and 256 entries, 512 B and 2 KB): one 8-byte load from a table already in
//   Act (RNE'd to bf16 at compile time), which stays in L1. A lane holding 2 or 8 entries would
//   need 4 or 16 shuffles a vector.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/decode/common.cuh"
#include "cuda/decode/int.cuh"
#include "cuda/decode/tile.cuh"
#include "src/formats/vq_codebook.hpp"

namespace qmoe::dev {

namespace vq {

/// RNE_bf16 of an fp16 value, bits to bits (finite inputs: the tables hold no Inf or NaN),
/// at compile time: the fp16 value exactly as float bits, then round the low 16 bits off.
constexpr uint16_t bf16_bits_of_fp16(uint16_t h) {
  uint32_t f = uint32_t{h} >> 15 << 31;
  int exponent = (h >> 10) & 31;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0 && mantissa != 0) {  // subnormal: normalise
    exponent = 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3FFu;
  }
  // Not zero (a subnormal of one bit, e.g. 0x0200, normalises to exponent 0 and mantissa 0).
  if ((h & 0x7FFFu) != 0) f |= uint32_t(exponent + 112) << 23 | mantissa << 13;
  return static_cast<uint16_t>((f + 0x7FFFu + ((f >> 16) & 1u)) >> 16);
}

/// A magnitude table as 16-bit pairs: entry m's dimensions 0, 1 at word 2m, 2, 3 at 2m + 1.
template <int kEntries>
struct TableWords {
  uint32_t words[2 * kEntries];
};
/// The table of fp16 values `fp16` (4 a row) in fp16 (kBf16 false) or RNE'd to bf16.
template <int kEntries, bool kBf16>
constexpr TableWords<kEntries> table_words(const uint16_t (&fp16)[4 * kEntries]) {
  TableWords<kEntries> t{};
  for (int i = 0; i < 2 * kEntries; ++i) {
    const uint16_t lo = kBf16 ? bf16_bits_of_fp16(fp16[2 * i]) : fp16[2 * i];
    const uint16_t hi = kBf16 ? bf16_bits_of_fp16(fp16[2 * i + 1]) : fp16[2 * i + 1];
    t.words[i] = uint32_t{lo} | uint32_t{hi} << 16;
  }
  return t;
}

/// The spec's tables (src/formats/vq_codebook.hpp includes docs/formats/vq*_codebook.inc), by
/// code bits; the fp16 ones are what the lane-held tables load and convert per item.
template <int kCodeBits>
constexpr const auto& codebook() {
  if constexpr (kCodeBits == 6)
    return ::qmoe::detail::kVq15Codebook;
  else if constexpr (kCodeBits == 8)
    return ::qmoe::detail::kVq2Codebook;
  else if constexpr (kCodeBits == 10)
    return ::qmoe::detail::kVq25Codebook;
  else
    return ::qmoe::detail::kVq3Codebook;
}
template <int kCodeBits, bool kBf16>
constexpr TableWords<(1 << (kCodeBits - 4))> kHostTable =
    table_words<(1 << (kCodeBits - 4)), kBf16>(codebook<kCodeBits>());

// Device copies. Internal linkage: one copy per translation unit (no relocatable device code).
static __device__ __align__(16) const TableWords<4> kVq15Fp16 = kHostTable<6, false>;
static __device__ __align__(16) const TableWords<16> kVq2Fp16 = kHostTable<8, false>;
static __device__ __align__(16) const TableWords<64> kVq25Fp16 = kHostTable<10, false>;
static __device__ __align__(16) const TableWords<64> kVq25Bf16 = kHostTable<10, true>;
static __device__ __align__(16) const TableWords<256> kVq3Fp16 = kHostTable<12, false>;
static __device__ __align__(16) const TableWords<256> kVq3Bf16 = kHostTable<12, true>;

/// Entry m's words of the table of kCodeBits in fp16 (kBf16 false) or bf16: the device copy
/// on the device (8 bytes, read-only path), the host table in host code (the tests).
template <int kCodeBits, bool kBf16>
__host__ __device__ inline void load_entry(uint32_t m, uint32_t (&entry)[2]) {
  static_assert(!kBf16 || kCodeBits >= 10, "bf16 tables for the loaded ones (vq2.5, vq3) only");
#if defined(__CUDA_ARCH__)
  const TableWords<(1 << (kCodeBits - 4))>* table;
  if constexpr (kCodeBits == 6)
    table = &kVq15Fp16;
  else if constexpr (kCodeBits == 8)
    table = &kVq2Fp16;
  else if constexpr (kCodeBits == 10)
    table = kBf16 ? &kVq25Bf16 : &kVq25Fp16;
  else
    table = kBf16 ? &kVq3Bf16 : &kVq3Fp16;
  const uint2 v = __ldg(reinterpret_cast<const uint2*>(table->words) + m);
  entry[0] = v.x;
  entry[1] = v.y;
#else
  entry[0] = kHostTable<kCodeBits, kBf16>.words[2 * m];
  entry[1] = kHostTable<kCodeBits, kBf16>.words[2 * m + 1];
#endif
}

/// One code plane of c bits (§2.2): lane l's 16 slots are the 2c bytes at plane byte 2c l,
/// slot i at bit c i, copied (cp.async) and read back by the lane alone. The 8- and 4-bit
/// planes (16 and 8 bytes a lane) are laid out as an int2 / int1 code plane (CodePlane<2>,
/// CodePlane<1>), whose copy and read serve them; the 2-bit plane (4 bytes a lane) has its own.
template <int kPlaneBits>
struct LanePlane {
  static constexpr int kLaneBytes = 2 * kPlaneBits;
  static constexpr int kWords = kLaneBytes / 4;
  static constexpr int kBytes = 32 * kLaneBytes;
  using IntPlane = CodePlane<(kPlaneBits >= 4 ? kPlaneBits / 4 : 1)>;
  static_assert(kPlaneBits < 4 || (IntPlane::kBytes == kBytes && IntPlane::kWords == kWords),
                "the same lane-contiguous layout");
  __device__ static void copy_async(const uint8_t* plane, uint8_t* plane_smem, int lane) {
    if constexpr (kPlaneBits >= 4)
      IntPlane::copy_async(plane, plane_smem, lane);
    else
      cp_async_4(smem_addr(plane_smem + lane * kLaneBytes), plane + lane * kLaneBytes);
  }
  __host__ __device__ static void read(const uint8_t* plane_smem, int lane, uint32_t* words) {
    if constexpr (kPlaneBits >= 4)
      IntPlane::read(plane_smem, lane, words);
    else
      words[0] = *reinterpret_cast<const uint32_t*>(plane_smem + lane * kLaneBytes);
  }
  /// Slot i's bits (i a compile-time constant after unrolling: a word pick and one shift).
  __host__ __device__ static uint32_t slot(const uint32_t* words, int i) {
    return (words[kPlaneBits * i / 32] >> (kPlaneBits * i % 32)) & ((1u << kPlaneBits) - 1u);
  }
};

}  // namespace vq

/// The decoder of the vector format with kCodeBits bits a code (6, 8, 10, 12: vq1.5, vq2, vq2.5,
/// vq3). Its codes are two planes, least significant first (§2.2): 4 + 2, 8, 8 + 2, 8 + 4 bits.
/// Its scales are int2:g128:sym's (§2.5): G128Scales loads, stages and reads them.
template <int kCodeBits>
struct VectorDecoder : G128Scales {
  static_assert(kCodeBits == 6 || kCodeBits == 8 || kCodeBits == 10 || kCodeBits == 12,
                "vq1.5, vq2, vq2.5 and vq3");
  static constexpr int kIndexBits = kCodeBits - 4;  ///< the top 4 bits are the signs
  static constexpr int kEntries = 1 << kIndexBits;
  /// Entries held one per lane (lanes m, m + kEntries, ... hold entry m) and fetched by
  /// shuffles; larger tables are loaded from memory per vector.
  static constexpr bool kLaneTable = kEntries <= 32;
  using Low = vq::LanePlane<(kCodeBits >= 8 ? 8 : 4)>;
  static constexpr int kHighBits = kCodeBits - (kCodeBits >= 8 ? 8 : 4);  ///< 0, 2 or 4
  using High = vq::LanePlane<(kHighBits > 0 ? kHighBits : 2)>;
  static constexpr int kRawWords = Low::kWords + (kHighBits > 0 ? High::kWords : 0);
  static constexpr int kTileBytes = Low::kBytes + (kHighBits > 0 ? High::kBytes : 0);
  static_assert(kTileBytes == 64 * kCodeBits, "a tile holds 512 codes");
  template <class Act>
  static constexpr int kAffineParts = 0;
  static constexpr int kImmaMap = -1;

  /// The lane's table entry (lane mod kEntries) as Act pairs, dimensions 0, 1 and 2, 3: the
  /// same for every strip and k-tile, loaded and converted once per work item (lane-held
  /// tables only; none otherwise).
  struct LaneEntry {
    uint32_t entry[2];
  };
  template <class Act>
  using ItemQuant = std::conditional_t<kLaneTable, LaneEntry, NoItemQuant::ItemQuant<Act>>;
  /// The lane's entry (lane-held tables) and scale[h] = (s, s) of row gid + 8h, RNE'd to Act.
  template <class Act>
  struct Quant {
    ItemQuant<Act> item;
    uint32_t scale[2];
  };

  __device__ static void copy_codes(const uint8_t* tile, uint8_t* tile_smem, int lane) {
    Low::copy_async(tile, tile_smem, lane);
    if constexpr (kHighBits > 0)
      High::copy_async(tile + Low::kBytes, tile_smem + Low::kBytes, lane);
  }
  __host__ __device__ static void read_codes(const uint8_t* tile_smem, int lane,
                                             uint32_t (&raw)[kRawWords]) {
    Low::read(tile_smem, lane, raw);
    if constexpr (kHighBits > 0) High::read(tile_smem + Low::kBytes, lane, raw + Low::kWords);
  }

  template <class Act>
  __device__ static ItemQuant<Act> prepare_item(const ExpertParams&, int /*strip*/, int lane) {
    if constexpr (kLaneTable) {
      uint32_t entry[2];
      vq::load_entry<kCodeBits, false>(static_cast<uint32_t>(lane) & (kEntries - 1), entry);
      return item_quant<Act>(entry);
    } else {
      return {};
    }
  }
  /// The conversion of prepare_item (host code too, for the tests).
  template <class Act>
  __host__ __device__ static LaneEntry item_quant(const uint32_t (&entry)[2]) {
    LaneEntry q;
    QMOE_UNROLL
    for (int i = 0; i < 2; ++i) q.entry[i] = ActTraits<Act>::from_fp16x2(entry[i]);
    return q;
  }

  template <class Act>
  __host__ __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant& rq,
                                                const ItemQuant<Act>& item) {
    Quant<Act> q;
    q.item = item;
    QMOE_UNROLL
    for (int h = 0; h < 2; ++h)
      q.scale[h] = ActTraits<Act>::scale_pair((rq.scale[0] >> (16 * h)) & 0xFFFFu);
    return q;
  }

  /// Code of the vector of row gid + 8h in sub-tile j: slot 2j + h of the lane's planes.
  __host__ __device__ static uint32_t code_of(const uint32_t (&raw)[kRawWords], int j, int h) {
    const uint32_t low = Low::slot(raw, 2 * j + h);
    if constexpr (kHighBits > 0)
      return low | High::slot(raw + Low::kWords, 2 * j + h) << (kCodeBits - kHighBits);
    else
      return low;
  }
  /// The sign bits of dimensions d0 and d0 + 1 (code bits I + d0, I + 1 + d0, I = kIndexBits)
  /// placed on the sign bits of a 16-bit pair's halves (bits 15 and 31): XOR them into the pair
  /// of magnitudes. One IMAD and one LOP3 (which also does the XOR): code * (2^(15 - I - d0) +
  /// 2^(30 - I - d0)) is code << (15 - I - d0) (bits up to 18 - d0) plus code << (30 - I - d0)
  /// (bits 22 - d0 and up, I <= 8), which do not overlap: bit 15 is code bit I + d0, bit 31 bit
  /// I + 1 + d0.
  __host__ __device__ static uint32_t sign_mask(uint32_t code, int d0) {
    return (code * ((1u << (15 - kIndexBits - d0)) + (1u << (30 - kIndexBits - d0)))) & 0x80008000u;
  }

  /// The magnitude vector of a code as Act pairs (dimensions 0, 1 and 2, 3).
  template <class Act>
  __device__ static void entry_of(uint32_t code, const Quant<Act>& q, uint32_t (&entry)[2]) {
    if constexpr (kLaneTable) {
      // Source lane code mod 32: the lanes holding entry m are those equal to m mod kEntries,
      // so the sign bits within the low 5 do not matter and the index needs no mask. Every lane
      // of the warp reaches here: the kernels decode whole tiles per warp.
      const int lane = static_cast<int>(code);
      entry[0] = __shfl_sync(0xFFFFFFFFu, q.item.entry[0], lane);
      entry[1] = __shfl_sync(0xFFFFFFFFu, q.item.entry[1], lane);
    } else {
      vq::load_entry<kCodeBits, std::is_same_v<Act, __nv_bfloat16>>(code & (kEntries - 1), entry);
    }
  }

  template <class Act>
  __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j,
                                        const Quant<Act>& q, uint32_t (&a)[4]) {
    // a[h] = dimensions 0, 1 and a[h + 2] = dimensions 2, 3 of row gid + 8h's vector.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t code = code_of(raw, j, h);
      uint32_t entry[2];
      entry_of<Act>(code, q, entry);
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
