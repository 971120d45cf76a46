// cuda/decode/trellis.cuh — device decoder of the trellis formats tcq2 / tcq3 / tcq4 and
// tcq1.5 / tcq2.5 / tcq3.5 (docs/formats.md §1, §2.2): b code bits a step, V = 1 or 2 values a
// state, a state the 12-bit window of the row's circular code string at its step's chunk,
// v = c_i(S) = bytesum(a_i S + c_i) - 510, and w_t = sigma_t (H v)_t s per 128-input block.
//
// Why the kernels never form w: each weight is a sum over its whole 128-input block (H v), but
// the product is not: per block, sum_t x_t w_t = s sum_j v_j (H (sigma . x))_j (H symmetric).
// So the activations are rotated once per token (x_rotate.cuh: x~ = H (sigma . x) / 128 in fp16,
// 7 butterfly stages shared by every row and expert) and the decoder hands the mma the codes'
// values v themselves, in the affine form of int.cuh: A = 1024 + bytesum as an fp16 pair
// (exact: bytesum <= 1020 < 2^10, the dp4a's accumulator ORs the fp16 exponent in), and per
// (row, k-tile) acc += 128 s * (sum A x~ - 1534 sum x~), i.e. v = A - 1534 (1534 = 1024 + 510).
// fp16 for both activation types: v needs 10 bits (bf16 would round 8 % of the codes), and
// x~ / 128 is within fp16's range whenever |x| is (|x~_j| <= 128 max |x|). CPU simulation of
// this numerics (notes/experiments/tcq_rotated_numerics_2026-12-05.cpp): 4e-8 NMSE against the
// exact product, 60x below a bf16 GEMM over the formed weights.
//
// Cost per value: a 12-bit window of the lane's pre-aligned row words (one or two shifts and a
// mask), one IMAD (the hash), one IDP4A (byte sum plus the fp16 exponent), and one IMAD per pair
// to pack the halves; V = 2 takes both values of a pair from one window.
//
// Codes: a tile holds its 16 rows' strings one after another (16 b / V bytes a row, §2.2). Lane
// (gid, tig) multiplies rows gid and gid + 8 at columns 16 j + 2 tig + {0, 1, 8, 9}, whose
// windows start at bit o + 16 b j + 8 b {0, 1} (V = 1; o = 2 b tig, the pair's second value b
// bits on) or o + 8 b j + 4 b {0, 1} (V = 2; o = b tig). read_codes copies each of the two rows
// rotated by o (circularly: the string wraps), so that every window's word and shift is a
// compile-time constant; the last window ends at bit 121 b + 12 <= 128 b (V = 1, b >= 2) or
// 60 b + 12 <= 64 b (V = 2, b >= 3) of the rotated copy, so no window wraps within it.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/decode/common.cuh"
#include "cuda/decode/int.cuh"
#include "cuda/decode/tile.cuh"

namespace qmoe::dev {

namespace tcq {

/// The hash constants of value i of a state (docs/formats.md §1).
__host__ __device__ constexpr uint32_t hash_mul(int i) {
  return i == 0 ? 34038481u : 2654435761u;
}
__host__ __device__ constexpr uint32_t hash_add(int i) {
  return i == 0 ? 76625530u : 2135587861u;
}
/// v = (1024 + bytesum) - kValueBias: the fp16 value of an A half minus this is the code's value.
constexpr float kValueBias = 1534.f;
/// x~ is H (sigma . x) / kRotatedXScale (fp16 range; the scale is applied to the fp32 sums).
constexpr float kRotatedXScale = 128.f;

/// (hi:lo) >> s, the low 32 bits (s in 0..31; SHF.R.W).
__host__ __device__ __forceinline__ uint32_t funnel_right(uint32_t lo, uint32_t hi, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_r(lo, hi, s);
#else
  return s == 0 ? lo : (lo >> s) | (hi << (32 - s));
#endif
}

/// The fp16 bits of 1024 + bytesum(x): the byte sum (<= 1020) ORed into 1024's mantissa.
__host__ __device__ __forceinline__ uint32_t biased_byte_sum(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __dp4a(x, 0x01010101u, 0x6400u);
#else
  return 0x6400u + (x & 0xFF) + ((x >> 8) & 0xFF) + ((x >> 16) & 0xFF) + (x >> 24);
#endif
}

/// The A half of value i of state S (12 bits).
__host__ __device__ __forceinline__ uint32_t value_half(uint32_t state, int i) {
  return biased_byte_sum(state * hash_mul(i) + hash_add(i));
}

/// sigma_t = -1 where 2654435761 t mod 2^32 >= 2^31 (t = 0..127, the position in the block).
__host__ __device__ constexpr bool sign_negative(uint32_t t) {
  return t * 2654435761u >= 0x80000000u;
}

/// The 128-point Sylvester Hadamard transform of a block held 4 a lane (lane l: positions
/// 4 l .. 4 l + 3), z_t <- sum_j (-1)^popcount(t & j) z_j: per position bit, (a, b) at (t,
/// t + bit) -> (a + b, a - b); bits 0 and 1 within the lane, bits 2..6 across lanes (xor 1..16).
/// Exact for int32; for float the order is fixed (deterministic).
template <class T>
__device__ __forceinline__ void warp_hadamard(T (&z)[4], int lane) {
#pragma unroll
  for (int bit = 1; bit <= 2; bit <<= 1)
#pragma unroll
    for (int i = 0; i < 4; ++i)
      if ((i & bit) == 0) {
        const T a = z[i], b = z[i + bit];
        z[i] = a + b;
        z[i + bit] = a - b;
      }
#pragma unroll
  for (int d = 1; d < 32; d <<= 1)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const T other = __shfl_xor_sync(0xFFFFFFFFu, z[i], d);
      z[i] = (lane & d) != 0 ? other - z[i] : z[i] + other;
    }
}

}  // namespace tcq

/// The decoder of tcq<r>: kStepBits = b code bits a step, kValues = V values a state.
template <int kStepBits, int kValues>
struct TrellisDecoder : NoItemQuant, G128Scales {
  static_assert((kValues == 1 && kStepBits >= 2 && kStepBits <= 4) ||
                    (kValues == 2 && (kStepBits == 3 || kStepBits == 5 || kStepBits == 7)),
                "tcq2, tcq3, tcq4 (V = 1) and tcq1.5, tcq2.5, tcq3.5 (V = 2)");
  static constexpr int kStateBits = 12;
  static constexpr int kRowBytes = 16 * kStepBits / kValues;  ///< a row's string in a tile
  static constexpr int kRowWords = kRowBytes / 4;
  static constexpr int kTileBytes = kTileRows * kRowBytes;
  static_assert(kTileBytes == 16 * 128 * kStepBits / (8 * kValues), "docs/formats.md §2.2");
  /// Rows gid and gid + 8, each rotated to the lane's first window (read_codes).
  static constexpr int kRawWords = 2 * kRowWords;
  /// The lane's first window: bit o = kLaneBits * tig of its rows' strings.
  static constexpr int kLaneBits = 2 * kStepBits / kValues;
  /// Bits between the windows of sub-tiles j and j + 1, and of a sub-tile's two column pairs.
  static constexpr int kSubtileBits = 16 * kStepBits / kValues;
  static constexpr int kPairBits = 8 * kStepBits / kValues;
  static_assert(kSubtileBits * 7 + kPairBits + (kValues == 1 ? kStepBits : 0) + kStateBits <=
                    32 * kRowWords,
                "no window wraps within the rotated copy");

  /// Multiplies the rotated activations (x_rotate.cuh) in fp16, whatever the call's type.
  static constexpr bool kRotatedX = true;
  template <class Act>
  static constexpr int kAffineParts = 1;
  __host__ __device__ static constexpr float part_weight(int) { return 1.f; }
  static constexpr int kImmaMap = -1;
  struct Affine {
    float scale[1][2];  ///< 128 s of rows gid, gid + 8
    float zero_bias[1][2];
  };

  /// Lane l copies 16-byte chunks l, l + 32 of the tile; other lanes read them (the kernels
  /// sync the warp between a stage's copies and its reads: the parameter blocks need it too).
  __device__ static void copy_codes(const uint8_t* tile, uint8_t* tile_smem, int lane) {
    QMOE_UNROLL
    for (int c = lane; c < kTileBytes / 16; c += kWarpSize)
      cp_async_16(smem_addr(tile_smem + 16 * c), tile + 16 * c);
  }
  /// Rows gid and gid + 8 of the tile, each rotated right by the lane's o bits: raw[h kRowWords
  /// + i] = bits o + 32 i .. o + 32 i + 31 of row gid + 8 h's string, circularly (o < 32 for
  /// every format: one funnel shift a word, the last one wrapping to word 0).
  __host__ __device__ static void read_codes(const uint8_t* tile_smem, int lane,
                                             uint32_t (&raw)[kRawWords]) {
    static_assert(3 * kLaneBits < 32, "the lanes' offsets o lie within a row's first word");
    const uint32_t shift = static_cast<uint32_t>(kLaneBits * (lane & 3));
    QMOE_UNROLL
    for (int h = 0; h < 2; ++h) {
      const auto* row =
          reinterpret_cast<const uint32_t*>(tile_smem + ((lane >> 2) + 8 * h) * kRowBytes);
      uint32_t w[kRowWords];
      QMOE_UNROLL
      for (int i = 0; i < kRowWords; ++i) w[i] = row[i];
      QMOE_UNROLL
      for (int i = 0; i < kRowWords; ++i)
        raw[h * kRowWords + i] = tcq::funnel_right(w[i], w[(i + 1) % kRowWords], shift);
    }
  }

  /// 128 s (exact: a power of two) and the bias 1534 of rows gid (h = 0) and gid + 8.
  template <class Act>
  __host__ __device__ static Affine prepare_affine(const ExpertParams&, const RawQuant& rq) {
    Affine q;
    QMOE_UNROLL
    for (int h = 0; h < 2; ++h) {
      const uint16_t s = static_cast<uint16_t>((rq.scale[0] >> (16 * h)) & 0xFFFFu);
      q.scale[0][h] = static_cast<float>(bit_cast<__half>(s)) * tcq::kRotatedXScale;
      q.zero_bias[0][h] = tcq::kValueBias;
    }
    return q;
  }

  /// The formed weights (the tile kernels, which decode once per 64 tokens, grouped_gemm_tc.cuh,
  /// or 128, the wgmma kernel's trellis launch): A = RNE_fp16(v s) against
  /// x~ = H (sigma . x) / 128, the 128 applied to the fp32 sums by the kernel's epilogue
  /// (kOutputScale). v = (1024 + bytesum) - 1534 is exact in fp16 (|v| <= 510), so the one
  /// rounding is the product's. Range: |v_j| <= max_t |u_t| (v =
  /// H u / 128, u = H v), so |v s| is at most the block's largest |w| before rounding: finite
  /// wherever the spec's weights are finite in fp16 (a bf16 call's weights beyond 65504 would
  /// overflow here; the decode kernel's fp32 scale takes any). At the other end, products below
  /// fp16's normal range (6.1e-5) are subnormal, off by up to 2^-25 absolute instead of 2^-12
  /// relative: with v's rms ~150 and u's ~1700, a typical |v s| is ~0.09 rms(w), so that matters
  /// only for blocks whose weights have an rms below ~1e-3 (at 1e-4, ~3e-3 of a typical product;
  /// the decode kernel's fp32 scale has no such loss).
  static constexpr float kOutputScale = tcq::kRotatedXScale;
  /// Rows gid and gid + 8: the fp16 pairs (s, s) and (1534, 1534), as an int code's scale and
  /// biased zero (ActTraits<__half>::dequant_pair: (A - 1534) s, exact difference, one rounding).
  template <class Act>
  struct Quant {
    static_assert(std::is_same_v<Act, __half>, "trellis weights are fp16 (MmaAct)");
    ActTraits<__half>::RowQuant<10> row[2];
  };
  template <class Act>
  __host__ __device__ static Quant<Act> prepare(const ExpertParams&, const RawQuant& rq,
                                                const ItemQuant<Act>&) {
    Quant<Act> q;
    QMOE_UNROLL
    for (int h = 0; h < 2; ++h)
      q.row[h] = {ActTraits<__half>::scale_pair((rq.scale[0] >> (16 * h)) & 0xFFFFu),
                  0x65FE65FEu};  // fp16 1534 = 1024 + 510
    return q;
  }
  template <class Act>
  __host__ __device__ static void decode_subtile(const uint32_t (&raw)[kRawWords], int j,
                                                 const Quant<Act>& q, uint32_t (&a)[4]) {
    biased_subtile<Act>(raw, j, 0, a);
    QMOE_UNROLL
    for (int r = 0; r < 4; ++r) a[r] = ActTraits<__half>::dequant_pair<10>(a[r], q.row[r & 1]);
  }

  /// The 12-bit state at bit `at` (a compile-time constant after unrolling) of a rotated row.
  __host__ __device__ static uint32_t state_at(const uint32_t* row, int at) {
    const int word = at / 32, shift = at % 32;
    const uint32_t bits = shift + kStateBits <= 32
                              ? row[word] >> shift
                              : tcq::funnel_right(row[word], row[word + 1], shift);
    return bits & ((1u << kStateBits) - 1u);
  }

  /// The state of step p of a row string (16 b / V bytes): its 12 bits from bit b p on,
  /// circularly. Bit by bit: for the dequantize kernel and the tests, not the GEMM path.
  __host__ __device__ static uint32_t step_state(const uint8_t* row, int p) {
    constexpr int kBits = 8 * kRowBytes;
    uint32_t state = 0;
    for (int i = 0; i < kStateBits; ++i) {
      const int bit = (kStepBits * p + i) % kBits;
      state |= static_cast<uint32_t>((row[bit >> 3] >> (bit & 7)) & 1) << i;
    }
    return state;
  }
  /// The value v_t = c_i(S_p) - 510 of position t (step p = t / V, value i = t mod V).
  __host__ __device__ static int position_value(const uint8_t* row, int t) {
    // value_half's fp16 bits are 0x6400 (1024) + the byte sum.
    return static_cast<int>(tcq::value_half(step_state(row, t / kValues), t % kValues) - 0x6400u) -
           510;
  }

  /// A register r of sub-tile j (row gid + 8 (r % 2), columns 2 tig + 8 (r / 2) + {0, 1}): the
  /// fp16 pair 1024 + bytesum of those positions' values.
  template <class Act>
  __host__ __device__ static void biased_subtile(const uint32_t (&raw)[kRawWords], int j, int,
                                                 uint32_t (&a)[4]) {
    QMOE_UNROLL
    for (int r = 0; r < 4; ++r) {
      const uint32_t* row = raw + (r & 1) * kRowWords;
      const int at = kSubtileBits * j + kPairBits * (r >> 1);
      uint32_t lo, hi;
      if constexpr (kValues == 1) {
        lo = tcq::value_half(state_at(row, at), 0);
        hi = tcq::value_half(state_at(row, at + kStepBits), 0);
      } else {
        const uint32_t state = state_at(row, at);
        lo = tcq::value_half(state, 0);
        hi = tcq::value_half(state, 1);
      }
      a[r] = hi * 0x10000u + lo;
    }
  }
};

}  // namespace qmoe::dev
