// cuda/decode/int.cuh — device decoder of the group-wise integer formats int2/3/4/8
// (docs/formats.md §1, §2.3-2.5): weight = RNE_fp16((q - z) * s) or
// RNE_bf16((q - z) * RNE_bf16(s)), bit-identical to cpu_ref (decode_subtile; the affine form
// below skips the weights and is exact only up to the kernel's fp32 sums).
//
// Decoder interface (shared with dense.cuh; both kernels and the dequantize kernel are
// templated on it):
//   kRawWords, kTileBytes                          code words per lane, bytes per tile
//   RawQuant, Quant<Act>                           per-lane scale/zero words of one tile,
//                                                  raw (prefetchable) and prepared
//   copy_codes(tile, tile_smem, lane)              cp.async of the lane's code chunks; a tile's
//                                                  image in shared memory is its global bytes
//                                                  at the same offsets (the decode kernel may
//                                                  bulk-copy whole tiles instead)
//   read_codes(tile_smem, lane, raw)               the lane's code words, from shared memory
//   load_quant(ep, strip, kt, lane, rq, pred)      the lane's scales/zeros of tile (strip, kt)
//   kQuantChunks, kQuantBytes                      16-byte chunks, bytes of a tile's parameter
//                                                  block as staged in shared memory
//   quant_chunk(ep, strip, c) -> QuantChunk        where chunk c of that block comes from
//   read_quant(ep, quant_smem, lane, rq)           the lane's scales/zeros, from that block
//   ItemQuant<Act>                                 per-lane constants of one strip for a whole
//   prepare_item<Act>(ep, strip, lane)             work item (vq1.5's and vq2's table entry;
//                                                  none for the others: NoItemQuant, tile.cuh)
//   prepare<Act>(ep, rq, item) -> Quant<Act>
//   decode_subtile<Act>(raw, j, quant, a[4])       A fragment of sub-tile j (mma m16n8k16)
// and, for the weight-streaming kernel, the affine form of the same decode:
//   kGroupsPerTile                                 groups per row of a tile
//   kAffineParts<Act>                              parts of the affine form (0: none)
//   part_weight(d)                                 weight of part d's digit in q
//   prepare_affine<Act>(ep, rq) -> Affine          per row and group: s and B W + z as float
//   biased_subtile<Act>(raw, j, d, a[4])           A fragment of B + (digit d of q), exact in Act
// W x = s * (sum_d w_d sum_k (B + q_d) x_k - (B W + z) sum_k x_k) per group, q = sum_d w_d q_d
// and W = sum_d w_d: the kernel multiplies the biased digits on the tensor cores and applies
// s and z to fp32 partial sums (grouped_gemv.cuh). One part (d = q, w = 1) wherever B + q is
// exact in Act; int8 with bf16 takes two (below).
#pragma once
#include <cstdint>

#include "cuda/decode/common.cuh"
#include "cuda/decode/tile.cuh"

namespace qmoe::dev {

/// The kBytes (2, 4, 8 or 16) bytes at src, aligned to their size, in one load (global memory
/// through the read-only path, or shared memory): little-endian words (2 bytes: the low half of
/// words[0]).
template <int kBytes, bool kShared = false, int kWords>
__device__ __forceinline__ void load_words(const uint8_t* src, uint32_t (&words)[kWords]) {
  static_assert(kWords == (kBytes + 3) / 4, "one word per 4 bytes");
  auto load = [](const auto* p) { return kShared ? *p : __ldg(p); };
  if constexpr (kBytes == 16) {
    const uint4 v = load(reinterpret_cast<const uint4*>(src));
    words[0] = v.x;
    words[1] = v.y;
    words[2] = v.z;
    words[3] = v.w;
  } else if constexpr (kBytes == 8) {
    const uint2 v = load(reinterpret_cast<const uint2*>(src));
    words[0] = v.x;
    words[1] = v.y;
  } else if constexpr (kBytes == 4) {
    words[0] = load(reinterpret_cast<const unsigned int*>(src));
  } else {
    static_assert(kBytes == 2, "2, 4, 8 or 16 bytes");
    words[0] = load(reinterpret_cast<const unsigned short*>(src));
  }
}

/// GPT: groups per 16x128 tile along K (4 for g32, 2 for g64, 1 for g128 and per-channel),
/// a compile-time constant so a tile prepares exactly its own scales and loads them in one
/// branch-free load (ncu: the run-time group logic was ~15% of the decode kernel's
/// instructions).
template <int BITS, int GPT>
struct IntDecoder : NoItemQuant {
  static_assert(BITS == 2 || BITS == 3 || BITS == 4 || BITS == 8, "int2/3/4/8 only");
  static_assert(GPT == 1 || GPT == 2 || GPT == 4, "groups per tile: 1, 2 or 4");
  // int3 = a 2-bit plane (low bits of q) followed by a 1-bit plane (bit 2).
  static constexpr bool kSplit = BITS == 3;
  using Low = CodePlane<kSplit ? 2 : BITS>;
  using High = CodePlane<1>;
  static constexpr int kRawWords = Low::kWords + (kSplit ? High::kWords : 0);
  static constexpr int kTileBytes = Low::kBytes + (kSplit ? High::kBytes : 0);

  /// Rows gid and gid+8 of the strip, as stored in the tile's parameter block (docs/formats.md
  /// §2.5): fp16 scale i = h * GPT + g in half i % 2 of scale[i / 2], zero i in byte i % 4 of
  /// zero[i / 4] (row gid + 8h, group g of the tile).
  struct RawQuant {
    uint32_t scale[GPT];
    uint32_t zero[(GPT + 1) / 2];
  };
  /// row[g][h]: scale/zero of group g of the tile, row gid + 8h.
  template <class Act>
  struct Quant {
    typename ActTraits<Act>::template RowQuant<BITS> row[GPT][2];
  };

  static constexpr int kGroupsPerTile = GPT;
  /// int8 codes do not fit bf16's 8 significant bits next to the bias 128, so with bf16 an int8
  /// code q = 16 h + l goes in two parts: A = 128 + l, and 128 + 8 h (the high nibble moved to
  /// bit 3, where it still lies inside the 7 mantissa bits), weighted 1 and 2 (16 h = 2 * 8 h).
  /// Two mma per sub-tile instead of the exact fp32 dequantization (~8 instructions per pair).
  template <class Act>
  static constexpr int kAffineParts = ActTraits<Act>::template kExactBiasedCodes<BITS> ? 1
                                      : BITS == 8                                      ? 2
                                                                                       : 0;
  __host__ __device__ static constexpr float part_weight(int d) { return d == 0 ? 1.f : 2.f; }
  template <class Act>
  static constexpr float kBiasWeight = kAffineParts<Act> == 2 ? 3.f : 1.f;
  /// [g][h]: group g of the tile, row gid + 8h: s (as the spec rounds it for Act) and B W + z,
  /// B the code bias of Act (ActTraits::kCodeBias), W the sum of the part weights (1 or 3).
  struct Affine {
    float scale[GPT][2];
    float zero_bias[GPT][2];
  };

  __device__ static void copy_codes(const uint8_t* tile, uint8_t* tile_smem, int lane) {
    Low::copy_async(tile, tile_smem, lane);
    if constexpr (kSplit) High::copy_async(tile + Low::kBytes, tile_smem + Low::kBytes, lane);
  }
  __host__ __device__ static void read_codes(const uint8_t* tile_smem, int lane,
                                             uint32_t (&raw)[kRawWords]) {
    Low::read(tile_smem, lane, raw);
    if constexpr (kSplit) High::read(tile_smem + Low::kBytes, lane, raw + Low::kWords);
  }

  /// Index: the integer type of the entry arithmetic. int64_t by default (the dequantize kernel
  /// takes any bank); uint32_t where the caller checks n_pad * groups_pad < 2^30 (grouped_gemm
  /// does): the wgmma tile kernel, whose k-loop spent ~20 instructions per strip and k-tile on
  /// the 64-bit form (SASS of b98105c, bench/results/s30-2026-12-04/call4).
  template <class Index = int64_t>
  __device__ static void load_quant(const ExpertParams& ep, int strip, int kt, int lane,
                                    RawQuant& rq, bool pred) {
    rq = RawQuant{};
    if (!pred) return;
    // The lanes of gid read 2 * GPT entries of the tile's parameter block (rows gid and gid + 8,
    // side by side): one aligned load each for scales and zeros (sections are 256-byte
    // aligned, a block is 16 * GPT entries, the lane's part 2 * GPT of them).
    const Index idx = (static_cast<Index>(strip) * static_cast<Index>(ep.groups_pad) +
                       static_cast<Index>(kt) * static_cast<Index>(ep.group_tile_stride)) *
                          static_cast<Index>(kTileRows) +
                      static_cast<Index>(lane >> 2) * static_cast<Index>(2 * GPT);
    load_words<4 * GPT>(ep.scales + 2 * idx, rq.scale);
    // ep.zeros is null for symmetric formats.
    if (ep.zeros != nullptr) load_words<2 * GPT>(ep.zeros + idx, rq.zero);
  }

  /// A tile's parameter block staged in shared memory by the weight-streaming kernel (cp.async,
  /// with the codes), so that its k-tile loop issues no global load but x's: 16 * GPT fp16
  /// scales, then 16 * GPT zeros (the entries and order of global memory's block).
  /// Why: loaded into registers one k-tile ahead, ptxas gave the scale and zero loads the
  /// scoreboards of the k-tile's shared-memory code reads (it has six; SASS control bits), so
  /// those reads waited for the next k-tile's global loads: 9 % of the stall samples on one
  /// instruction in ncu of Mixtral's gate/up at one token (s13-2026-12-02/ncu-a730de0). A/B on
  /// the H200 (bench/results/s14-2026-12-02): g128 int formats 0.92-1.00x the time, int4:g32
  /// 1.00-1.06x, median 0.986x over 150 decode rows.
  static constexpr int kQuantChunks = 3 * GPT;
  static constexpr int kQuantBytes = 16 * kQuantChunks;
  /// Source of 16-byte chunk c of the staged parameter blocks of a strip's tiles (chunks
  /// 0 .. 2 GPT - 1 scales, then GPT of zeros): tile kt's at src + kt * kt_stride; src null for
  /// a chunk not copied (the zeros of a symmetric format). 32-bit offsets: the caller checks
  /// n_pad * groups_pad < 2^30 (grouped_gemm does).
  __device__ static QuantChunk quant_chunk(const ExpertParams& ep, int strip, int c) {
    const uint32_t first = static_cast<uint32_t>(strip) * static_cast<uint32_t>(ep.groups_pad) *
                           static_cast<uint32_t>(kTileRows);
    const uint32_t kt_entries = static_cast<uint32_t>(ep.group_tile_stride) * kTileRows;
    if (c < 2 * GPT) return {ep.scales + 2 * first + 16 * c, 2 * kt_entries};
    return {ep.zeros == nullptr ? nullptr : ep.zeros + first + 16 * (c - 2 * GPT), kt_entries};
  }
  /// The lane's scales and zeros (load_quant's words) from a tile's staged parameter block.
  __device__ static void read_quant(const ExpertParams& ep, const uint8_t* quant_smem, int lane,
                                    RawQuant& rq) {
    const int entry = (lane >> 2) * 2 * GPT;
    load_words<4 * GPT, true>(quant_smem + 2 * entry, rq.scale);
    // Symmetric: zero_of takes ep.sym_zero instead.
    if (ep.zeros != nullptr) load_words<2 * GPT, true>(quant_smem + 32 * GPT + entry, rq.zero);
  }

  /// fp16 scale bits and zero of group g, row gid + 8h.
  __device__ static uint32_t scale_bits(const RawQuant& rq, int g, int h) {
    const int i = h * GPT + g;
    return (rq.scale[i >> 1] >> (16 * (i & 1))) & 0xFFFFu;
  }
  __device__ static uint32_t zero_of(const ExpertParams& ep, const RawQuant& rq, int g, int h) {
    const int i = h * GPT + g;
    return ep.zeros != nullptr ? (rq.zero[i >> 2] >> (8 * (i & 3))) & 0xFFu : ep.sym_zero;
  }

  template <class Act>
  __device__ static Quant<Act> prepare(const ExpertParams& ep, const RawQuant& rq,
                                       const ItemQuant<Act>& /*item*/) {
    Quant<Act> q;
#pragma unroll
    for (int g = 0; g < GPT; ++g)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        q.row[g][h] =
            ActTraits<Act>::template row_quant<BITS>(scale_bits(rq, g, h), zero_of(ep, rq, g, h));
    return q;
  }

  template <class Act>
  __device__ static Affine prepare_affine(const ExpertParams& ep, const RawQuant& rq) {
    Affine q;
#pragma unroll
    for (int g = 0; g < GPT; ++g)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        q.scale[g][h] = ActTraits<Act>::affine_scale(scale_bits(rq, g, h));
        // 2^23 + z as float bits, minus 2^23 - B W: B W + z exactly, two instructions, no I2F.
        q.zero_bias[g][h] = __uint_as_float(0x4B000000u | zero_of(ep, rq, g, h)) -
                            (8388608.f - ActTraits<Act>::kCodeBias * kBiasWeight<Act>);
      }
    return q;
  }

  /// Codes of pair p = 4j + r of the lane (q0 in bits 0.., q1 in bits 16..), OR-ed with the
  /// activation's bias: one SHF + one LOP3 per plane.
  template <class Act>
  __device__ static uint32_t codes_pair(const uint32_t (&raw)[kRawWords], int p) {
    constexpr uint32_t bias = ActTraits<Act>::template kPairBias<BITS>;
    if constexpr (kSplit)
      return and_or(Low::placed(raw, p, 0), Low::kPairMask,
                    and_or(High::placed(raw + Low::kWords, p, 2), High::kPairMask << 2, bias));
    else
      return and_or(Low::placed(raw, p, 0), Low::kPairMask, bias);
  }

  /// Part d of sub-tile j's A fragment: B + q, or with two parts B + l (d = 0) and B + 8 h.
  template <class Act>
  __device__ static void biased_subtile(const uint32_t (&raw)[kRawWords], int j, int d,
                                        uint32_t (&a)[4]) {
    static_assert(kAffineParts<Act> > 0, "no affine form in this activation type");
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      if constexpr (kAffineParts<Act> == 1) {
        a[r] = codes_pair<Act>(raw, 4 * j + r);
      } else {
        // Low nibble at bit 0, or high nibble shifted to bit 3 ("codes at bit -1": one more
        // right shift); either way one SHF (none for the even pairs' low nibbles) and one LOP3.
        const uint32_t magic = ActTraits<Act>::kMagic2;
        a[r] = d == 0 ? and_or(Low::placed(raw, 4 * j + r, 0), 0x000F000Fu, magic)
                      : and_or(Low::placed(raw, 4 * j + r, -1), 0x00780078u, magic);
      }
    }
  }

  /// Integer-mma decode (the weight-streaming kernel, grouped_gemv.cuh, where the launch takes
  /// it: decode_imma, kernel_split.cuh): the codes themselves, as u8, are the A operand of
  /// mma.m16n8k32 and x comes as two 8-bit digits of a 16-bit fixed-point copy (x_digits.cuh);
  /// W x = s * s_x * (sum q x_int - z sum x_int) per group, the sums exact in int32. kImmaMap:
  /// which order of k the lane's A bytes take (x_digits writes x's digits in both): 1 for int2
  /// and int3 (whose 2-bit plane is int2's), 0 for int4 and int8. Measured on the H200 against
  /// the bf16 affine decode (bench/results/s19-2026-12-03): int2 0.76-0.93x the kernel's time on
  /// large launches, int8 0.93-1.0x; int4 (one mask, and one shift per two registers; the k-tile
  /// loop 23 % fewer instructions) 0.98-1.04x, so kAuto keeps int4 on the bf16 decode;
  /// int3 0.69-0.97x (session 23, bench/results/s23-2026-12-03/ab-int3-imma).
  static constexpr int kImmaMap = BITS == 2 || BITS == 3 ? 1 : 0;
  /// IMMAs (k32) per group of the tile.
  static constexpr int kImmaPerGroup = 4 / GPT;
  struct ImmaQuant {
    float scale[GPT][2];  ///< s as the spec rounds it for Act, [group][row gid + 8h]
    int zero[GPT][2];
  };
  template <class Act>
  __device__ static ImmaQuant prepare_imma(const ExpertParams& ep, const RawQuant& rq) {
    ImmaQuant q;
#pragma unroll
    for (int g = 0; g < GPT; ++g)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        q.scale[g][h] = ActTraits<Act>::affine_scale(scale_bits(rq, g, h));
        q.zero[g][h] = static_cast<int>(zero_of(ep, rq, g, h));
      }
    return q;
  }
  /// A fragment (u8 codes) of IMMA i, k = 32 i .. 32 i + 31 of the tile: registers 0 and 2 row
  /// gid, 1 and 3 row gid + 8 (PTX m16n8k32 layout), each four codes of the lane's own k.
  /// int2: word i holds sub-tiles 2i and 2i + 1, one 2-bit code of each pair of both in every
  /// byte; shifts 0, 2, 4, 6 and one mask give the four registers (k = 2 tig, 2 tig + 16,
  /// 2 tig + 1, 2 tig + 17 of the IMMA's 32, plus 8 for registers 2 and 3: map 1). int8: a
  /// byte per code already; one PRMT per register gathers a row's bytes from a sub-tile's two
  /// words (k = 2 tig, 2 tig + 8, 2 tig + 1, 2 tig + 9 of the sub-tile: map 0). int4: word j
  /// holds sub-tile j's pairs as nibbles, rows gid (pairs 0, 2) in the even nibbles and gid + 8
  /// (pairs 1, 3) in the odd ones, so one mask (and one shift) gives a register in int8's k order
  /// (map 0). int3: int2's
  /// bytes from the 2-bit plane, plus bit 2 from the 1-bit plane, where pair p's two codes sit at
  /// bits p % 16 and 16 + p % 16 of word p / 16 (CodePlane): register r of IMMA i needs the bits
  /// of pairs 8 i + r and 8 i + 4 + r, 4 apart there and 8 apart in the register. One PRMT of
  /// the word and the word >> 4 per IMMA puts them 8 apart (byte n, bit r), so that each register
  /// takes one shift and one LOP3 more than int2's.
  __host__ __device__ static void imma_a(const uint32_t (&raw)[kRawWords], int i,
                                         uint32_t (&a)[4]) {
    static_assert(kImmaMap >= 0, "no integer-mma decode for this format");
    if constexpr (BITS == 2) {
      QMOE_UNROLL
      for (int r = 0; r < 4; ++r) a[r] = (raw[i] >> (2 * r)) & 0x03030303u;
    } else if constexpr (BITS == 3) {
      const uint32_t high = raw[Low::kWords + i / 2] >> (8 * (i % 2));
      // Bytes: codes 0 of pairs 8i..8i+3, of 8i+4..8i+7, codes 1 of the same (bit r: pair + r).
      const uint32_t spread = byte_perm(high, high >> 4, 0x6240);
      QMOE_UNROLL
      for (int r = 0; r < 4; ++r) {
        const uint32_t bit2 = r <= 2 ? spread << (2 - r) : spread >> (r - 2);
        a[r] = ((raw[i] >> (2 * r)) & 0x03030303u) | (bit2 & 0x04040404u);
      }
    } else if constexpr (BITS == 4) {
      QMOE_UNROLL
      for (int h = 0; h < 2; ++h) {
        a[2 * h] = raw[2 * i + h] & 0x0F0F0F0Fu;
        a[2 * h + 1] = (raw[2 * i + h] >> 4) & 0x0F0F0F0Fu;
      }
    } else {
      QMOE_UNROLL
      for (int h = 0; h < 2; ++h) {
        a[2 * h] = byte_perm(raw[4 * i + 2 * h], raw[4 * i + 2 * h + 1], 0x6240);
        a[2 * h + 1] = byte_perm(raw[4 * i + 2 * h], raw[4 * i + 2 * h + 1], 0x7351);
      }
    }
  }

  template <class Act>
  __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j,
                                        const Quant<Act>& q, uint32_t (&a)[4]) {
    // Register r of the A fragment holds row gid (r even) or gid+8 (r odd) of sub-tile j,
    // which lies in group j * GPT / 8 of the tile.
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const auto& row = q.row[j * GPT / kSubtiles][r & 1];
      if constexpr (BITS == 8 && !ActTraits<Act>::template kExactBiasedCodes<8>) {
        // Pair p's codes are bytes p % 2 and p % 2 + 2 of word p / 2 (CodePlane<8>).
        constexpr int kPairsPerWord = Low::kPairsPerWord;
        static_assert(kPairsPerWord == 2, "int8: two pairs a word");
        const int p = 4 * j + r;
        a[r] = (p % 2 == 0) ? ActTraits<Act>::template dequant_code_bytes<0>(raw[p / 2], row)
                            : ActTraits<Act>::template dequant_code_bytes<1>(raw[p / 2], row);
      } else {
        a[r] = ActTraits<Act>::template dequant_pair<BITS>(codes_pair<Act>(raw, 4 * j + r), row);
      }
    }
  }
};

/// The parameter blocks of the formats whose scales are laid out as int2:g128:sym's (one fp16
/// scale per row and 128 inputs, no zeros; docs/formats.md §2.5: the vector and trellis
/// formats): IntDecoder<2, 1>'s loads, staged chunks (the zeros chunk is not copied: null zeros)
/// and shared-memory reads. RawQuant::scale[0]: rows gid (low half) and gid + 8 (high half).
struct G128Scales {
  using Scales = IntDecoder<2, 1>;
  using RawQuant = Scales::RawQuant;
  static constexpr int kGroupsPerTile = 1;
  static constexpr int kQuantChunks = Scales::kQuantChunks;
  static constexpr int kQuantBytes = Scales::kQuantBytes;
  template <class Index = int64_t>
  __device__ static void load_quant(const ExpertParams& ep, int strip, int kt, int lane,
                                    RawQuant& rq, bool pred) {
    Scales::template load_quant<Index>(ep, strip, kt, lane, rq, pred);
  }
  __device__ static QuantChunk quant_chunk(const ExpertParams& ep, int strip, int c) {
    return Scales::quant_chunk(ep, strip, c);
  }
  __device__ static void read_quant(const ExpertParams& ep, const uint8_t* quant_smem, int lane,
                                    RawQuant& rq) {
    Scales::read_quant(ep, quant_smem, lane, rq);
  }
};

/// The part of a decoder that reads its codes in an int<b> code layout (CodeLayout =
/// IntDecoder<b, 1>) but has no affine or integer-mma form, the weights not being affine in the
/// code (LUT and vector formats): every kernel forms their weights with decode_subtile, as for
/// dense tiles (the LUT decoders). The derived decoder adds its RawQuant / Quant, their loads
/// and decode_subtile.
template <class CodeLayout>
struct FormedFromIntCodes {
  using Codes = CodeLayout;
  static constexpr int kRawWords = Codes::kRawWords;
  static constexpr int kTileBytes = Codes::kTileBytes;
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
};

}  // namespace qmoe::dev
