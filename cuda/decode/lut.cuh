// cuda/decode/lut.cuh — device decoder of the LUT (non-uniform) formats nuq2/3/4
// (docs/formats.md §1): weight = RNE_Act(T[n][q]), entry q of row n's table of 2^b fp16
// values. The codes are int<b> codes in the int<b> layout (§2.4), read through IntDecoder's
// planes; a table lookup replaces (q - z) * s. Same interface as IntDecoder (int.cuh) without
// the affine and integer-mma forms (the weights are not affine in q): every kernel forms the
// weights with decode_subtile, as for dense tiles.
#pragma once
#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/decode/int.cuh"
#include "cuda/decode/tile.cuh"

namespace qmoe::dev {

template <int BITS>
struct LutDecoder : FormedFromIntCodes<IntDecoder<BITS, 1>>, NoItemQuant {
  static_assert(BITS == 2 || BITS == 3 || BITS == 4, "nuq2/3/4 only");
  using Base = FormedFromIntCodes<IntDecoder<BITS, 1>>;
  using Base::kRawWords;
  using typename Base::Codes;
  static constexpr int kEntries = 1 << BITS;
  /// A row's table: kEntries fp16 values, two per word (entry q in half q % 2 of word q / 2),
  /// kRowBytes bytes in the scales section (row-major, docs/formats.md §2.5), aligned to their
  /// size (the section is 256-byte aligned).
  static constexpr int kRowWords = kEntries / 2;
  static constexpr int kRowBytes = 2 * kEntries;

  /// Tables of rows gid (row[0]) and gid + 8 (row[1]) of the strip, fp16 pairs.
  struct RawQuant {
    uint32_t row[2][kRowWords];
  };
  /// The same entries as Act pairs: RNE to bf16 once per table, not once per weight.
  template <class Act>
  struct Quant {
    uint32_t row[2][kRowWords];
  };

  /// A row's table from global (kShared false) or shared memory, 16 bytes a load at most.
  template <bool kShared>
  __device__ static void load_row(const uint8_t* src, uint32_t (&words)[kRowWords]) {
    constexpr int kLoadBytes = kRowBytes < 16 ? kRowBytes : 16;
    constexpr int kLoadWords = kLoadBytes / 4;
#pragma unroll
    for (int i = 0; i < kRowBytes / kLoadBytes; ++i) {
      uint32_t part[kLoadWords];
      load_words<kLoadBytes, kShared>(src + i * kLoadBytes, part);
#pragma unroll
      for (int w = 0; w < kLoadWords; ++w) words[i * kLoadWords + w] = part[w];
    }
  }

  /// The lane's two tables (one per row: the same for every k-tile kt).
  template <class Index = int64_t>
  __device__ static void load_quant(const ExpertParams& ep, int strip, int /*kt*/, int lane,
                                    RawQuant& rq, bool pred) {
    rq = RawQuant{};
    if (!pred) return;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const Index row = static_cast<Index>(strip) * static_cast<Index>(kTileRows) +
                        static_cast<Index>((lane >> 2) + 8 * h);
      load_row<false>(ep.scales + static_cast<Index>(kRowBytes) * row, rq.row[h]);
    }
  }

  /// The weight-streaming kernel stages a strip's 16 tables (its rows', contiguous) with each
  /// code tile: kt_stride 0, every k-tile copies the same block (L2 hits after the first).
  static constexpr int kQuantChunks = kRowBytes;  // 16 rows x kRowBytes / 16-byte chunks
  static constexpr int kQuantBytes = 16 * kQuantChunks;
  /// 32-bit offsets: n <= 2^24 (packed_layout), so the tables end below 2^29 bytes.
  __device__ static QuantChunk quant_chunk(const ExpertParams& ep, int strip, int c) {
    return {ep.scales + static_cast<uint32_t>(strip) * kQuantBytes + 16u * c, 0};
  }
  __device__ static void read_quant(const ExpertParams&, const uint8_t* quant_smem, int lane,
                                    RawQuant& rq) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
      load_row<true>(quant_smem + ((lane >> 2) + 8 * h) * kRowBytes, rq.row[h]);
  }

  /// The tables are staged and converted with every k-tile, not held per item (NoItemQuant):
  /// held in registers for a work item's strips (16 words a strip for nuq4), they made the decode
  /// and wgmma kernels spill (ptxas sm_90a: decode <bf16, 4, 1> 1064 bytes loaded, wgmma
  /// <bf16, 64, 2> 1112), where restaging takes 512 bytes of ring and 16 conversions per strip
  /// and k-tile.
  template <class Act>
  __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant& rq,
                                       const ItemQuant<Act>&) {
    Quant<Act> q;
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
      for (int w = 0; w < kRowWords; ++w) q.row[h][w] = ActTraits<Act>::from_fp16x2(rq.row[h][w]);
    return q;
  }

  /// Codes of pair p = 4j + r of the lane as PRMT selector material: q0 in bits 0..BITS-1,
  /// q1 in bits 8..8+BITS-1 (the bits between may hold other codes: lookup masks what it
  /// uses, and the compiler folds the split case's masks into lookup's).
  __host__ __device__ static uint32_t codes_pair(const uint32_t (&raw)[kRawWords], int p) {
    using Low = typename Codes::Low;
    using High = typename Codes::High;
    const uint32_t low = Low::placed_bytes(raw, p, 0);
    if constexpr (Codes::kSplit)  // nuq3: bit 2 from the one-bit plane
      return (low & 0x0303u) | (High::placed_bytes(raw + Low::kWords, p, 2) & 0x0404u);
    else
      return low;
  }

  /// Entries q0 (low half) and q1 (high half) of a row's table (16-bit pairs) for the codes
  /// of codes_pair, with PRMTs only: no shared-memory lookups, no local-memory indexing.
  /// 1. Entry 4m + (q & 3) of each code from register pair m (words 2m, 2m + 1 hold entries
  ///    4m..4m+3): bytes 2 (q & 3) and 2 (q & 3) + 1, selector nibbles 2 q0, 2 q0 + 1, 2 q1,
  ///    2 q1 + 1 from one IMAD ((q & 3) * 0x22 + 0x10 per byte); one PRMT per register pair (1,
  ///    2, 4 for nuq2, 3, 4).
  /// 2. Bit 2 of each code picks between the pairs' results per half: selector 0x3210 plus 4
  ///    in the nibbles of the codes whose bit is set (bit * 0x11 per byte, one IMAD) takes that
  ///    half from the second register. Bit 3 likewise between the two bit-2 picks (nuq4).
  /// With codes_pair: about 4, 9 and 15 instructions a pair for nuq2, 3, 4 (ptxas sm_90a, a test
  /// kernel of decode_subtile alone), against 5.5, 11 and 18 for the previous form (bit masks
  /// built per pick, LOP3 selects, a shift and OR per pair to place q1).
  __host__ __device__ static uint32_t lookup(const uint32_t (&row)[kRowWords], uint32_t codes) {
    const uint32_t sel = (codes & 0x0303u) * 0x22u + 0x1010u;
    uint32_t v[kEntries / 4];
    QMOE_UNROLL
    for (int m = 0; m < kEntries / 4; ++m)
      v[m] = byte_perm_runtime(row[2 * m], row[2 * m + 1], sel);
    if constexpr (BITS == 2) {
      return v[0];
    } else {
      const uint32_t by_bit2 = (codes & 0x0404u) * 0x11u + 0x3210u;
      const uint32_t low = byte_perm_runtime(v[0], v[1], by_bit2);
      if constexpr (BITS == 3) {
        return low;
      } else {
        const uint32_t by_bit3 = ((codes >> 1) & 0x0404u) * 0x11u + 0x3210u;
        return byte_perm_runtime(low, byte_perm_runtime(v[2], v[3], by_bit2), by_bit3);
      }
    }
  }

  template <class Act>
  __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j,
                                        const Quant<Act>& q, uint32_t (&a)[4]) {
    // Register r of the A fragment: row gid (r even) or gid + 8 (r odd), pair 4j + r.
#pragma unroll
    for (int r = 0; r < 4; ++r) a[r] = lookup(q.row[r & 1], codes_pair(raw, 4 * j + r));
  }
};

}  // namespace qmoe::dev
