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
struct LutDecoder {
  static_assert(BITS == 2 || BITS == 3 || BITS == 4, "nuq2/3/4 only");
  using Codes = IntDecoder<BITS, 1>;
  static constexpr int kRawWords = Codes::kRawWords;
  static constexpr int kTileBytes = Codes::kTileBytes;
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
  /// A row's table as the lookup takes it: the entries' low bytes (lo[i]: entries 4i .. 4i + 3,
  /// one byte each) and high bytes (hi[i]), so that one PRMT picks any of 8 entries' bytes.
  struct Table {
    uint32_t lo[kEntries / 4];
    uint32_t hi[kEntries / 4];
  };
  /// The entries as Act values (RNE to bf16 once per table, not per weight), split in bytes.
  template <class Act>
  struct Quant {
    Table row[2];
  };
  static constexpr int kGroupsPerTile = 1;
  template <class Act>
  static constexpr int kAffineParts = 0;
  static constexpr int kImmaMap = -1;

  __device__ static void copy_codes(const uint8_t* tile, uint8_t* tile_smem, int lane) {
    Codes::copy_codes(tile, tile_smem, lane);
  }
  __host__ __device__ static void read_codes(const uint8_t* tile_smem, int lane,
                                             uint32_t (&raw)[kRawWords]) {
    Codes::read_codes(tile_smem, lane, raw);
  }

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

  /// A row's 16-bit entries (two per word, entry q in half q % 2 of word q / 2) split into
  /// byte planes: words 2i and 2i + 1 hold entries 4i .. 4i + 3, low bytes at bytes 0, 2, 4, 6.
  __host__ __device__ static Table split_table(const uint32_t (&words)[kRowWords]) {
    Table t;
    QMOE_UNROLL
    for (int i = 0; i < kRowWords / 2; ++i) {
      t.lo[i] = byte_perm(words[2 * i], words[2 * i + 1], 0x6420);
      t.hi[i] = byte_perm(words[2 * i], words[2 * i + 1], 0x7531);
    }
    return t;
  }

  template <class Act>
  __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant& rq) {
    Quant<Act> q;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t words[kRowWords];
#pragma unroll
      for (int w = 0; w < kRowWords; ++w) words[w] = ActTraits<Act>::from_fp16x2(rq.row[h][w]);
      q.row[h] = split_table(words);
    }
    return q;
  }

  /// Codes of pair p = 4j + r of the lane, unbiased: q0 at bits 0.., q1 at bits 16...
  __host__ __device__ static uint32_t codes_pair(const uint32_t (&raw)[kRawWords], int p) {
    using Low = typename Codes::Low;
    using High = typename Codes::High;
    const uint32_t low = Low::placed(raw, p, 0) & Low::kPairMask;
    if constexpr (Codes::kSplit)
      return low | (High::placed(raw + Low::kWords, p, 2) & (High::kPairMask << 2));
    else
      return low;
  }

  /// Entries q0 (low half) and q1 (high half) of a row's table for the codes of codes_pair.
  /// A PRMT picks bytes of 8 entries by a 3-bit index: with the selector nibbles q0, q0, q1, q1
  /// (one IMAD from q0 + 256 q1; PRMT reads the selector's low 16 bits only, so the bits above
  /// are free), the low-byte plane gives (lo[q0], lo[q0], lo[q1], lo[q1]) and the high-byte
  /// plane the same of hi, and one LOP3 interleaves them into the two 16-bit entries. nuq2's
  /// 4 entries fit one PRMT over both planes (nibbles q0, 4 + q0, q1, 4 + q1). nuq4 looks up
  /// entries 0-7 and 8-15 both and picks by bit 3, per half, with a mask from PRMT's sign mode
  /// (the code shifted so that bit 3 is a byte's top bit). Per pair: nuq2 one PRMT, nuq3 two
  /// and a LOP3, nuq4 five and three LOP3, plus the selector (three instructions) and the code
  /// extraction; 2^b entries in registers, no shared-memory or local-memory indexing.
  __host__ __device__ static uint32_t lookup(const Table& t, uint32_t codes) {
    constexpr uint32_t kIndexMask = BITS == 2 ? 0x00030003u : 0x00070007u;
    const uint32_t index = codes & kIndexMask;
    const uint32_t sel = (index | (index >> 8)) * 0x11u;
    if constexpr (BITS == 2) {
      return byte_perm(t.lo[0], t.hi[0], sel + 0x4040u);
    } else {
      auto entries = [&](int i) {  // entries 8i .. 8i + 7, as 16-bit pairs
        const uint32_t lo = byte_perm(t.lo[2 * i], t.lo[2 * i + 1], sel);
        const uint32_t hi = byte_perm(t.hi[2 * i], t.hi[2 * i + 1], sel);
        return (lo & 0x00FF00FFu) | (hi & 0xFF00FF00u);
      };
      if constexpr (BITS == 3) {
        return entries(0);
      } else {
        const uint32_t upper = byte_sign_mask(codes << 4, 0, 0x2200);  // bit 3 of q0, q1
        return (entries(0) & ~upper) | (entries(1) & upper);
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
