// cuda/decode/common.cuh — device helpers shared by every decoder and kernel: activation
// traits (bf16 / fp16: exact dequantization, rounding, mma.sync), ldmatrix and cp.async
// (sm_80+). No createpolicy / L2::cache_hint anywhere: with nvcc 13 on sm_90 it can lose
// the policy register and trap with "illegal instruction" at run time.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cassert>
#include <cstdint>
#include <cstring>

namespace qmoe::dev {

constexpr int kWarpSize = 32;

template <class To, class From>
__host__ __device__ __forceinline__ To bit_cast(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast needs equal sizes");
  To to;
  memcpy(static_cast<void*>(&to), &from, sizeof(To));
  return to;
}

/// ceil(a / b) for a >= 0, b > 0. In unsigned arithmetic: a + b - 1 overflows int where a is
/// a token count near 2^31 (x.rows may reach 2^31 - 1), never uint32.
__host__ __device__ constexpr int ceil_div(int a, int b) {
  return static_cast<int>((static_cast<unsigned>(a) + static_cast<unsigned>(b) - 1u) /
                          static_cast<unsigned>(b));
}
static_assert(ceil_div(2147483647, 256) == 8388608 && ceil_div(2147483647, 8) == 268435456 &&
                  ceil_div(0, 16) == 0 && ceil_div(17, 16) == 2,
              "ceil_div holds up to INT_MAX");

/// (a & b) | c in one LOP3. Written out because ptxas, given two immediates (a code mask and
/// a magic exponent), emits an AND and an OR: one extra instruction per decoded pair.
__device__ __forceinline__ uint32_t and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

/// `#pragma unroll` for loops in __host__ __device__ functions: host compilers warn on it.
#if defined(__CUDA_ARCH__)
#define QMOE_UNROLL _Pragma("unroll")
#else
#define QMOE_UNROLL
#endif

/// PRMT: byte n of the result is byte s_n (nibble n of s, 0..7) of the pair (x, y), x's bytes
/// 0..3, y's 4..7. Host code too, so that the CPU can check the decoders' A bytes (tests).
__host__ __device__ __forceinline__ uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, s);
#else
  const uint64_t both = static_cast<uint64_t>(y) << 32 | x;
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n)
    r |= static_cast<uint32_t>(both >> (8 * ((s >> (4 * n)) & 7)) & 0xFF) << (8 * n);
  return r;
#endif
}

/// byte_perm for a selector computed at run time whose nibbles have bit 3 clear (PRMT would
/// replicate the byte's sign bit instead; the host version asserts it). Inline PTX: with
/// __byte_perm's semantics (bit 3 ignored) ptxas clears those bits with a LOP3 before every
/// PRMT of a run-time selector (the LUT decoders' lookups, lut.cuh). Constant selectors keep
/// byte_perm, which the compiler can fold.
__host__ __device__ __forceinline__ uint32_t byte_perm_runtime(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(r) : "r"(x), "r"(y), "r"(s));
  return r;
#else
  assert((s & 0x8888u) == 0 && "byte_perm_runtime: sign-replicate selector");
  return byte_perm(x, y, s);
#endif
}

// ---- Activation traits ------------------------------------------------------------------
// Both traits turn a pair of integer codes (q0 in bits 0..15, q1 in bits 16..31, each
// < 2^8) into the A-fragment register of docs/formats.md §1: RNE_fp16((q - z) * s), or
// RNE_bf16((q - z) * RNE_bf16(s)); the product is formed exactly and rounded once.
// kPairBias<kBits> is OR-ed into the pair by the decoder, in the same LOP3 that masks the
// codes out of their word; dequant_pair takes the biased pair.

template <class Act>
struct ActTraits;

template <>
struct ActTraits<__nv_bfloat16> {
  /// bf16 128.0 in both halves: 128 has ulp 1 in bf16, so OR-ing q < 2^7 into each mantissa
  /// gives the bfloat162 (128 + q0, 128 + q1) exactly, two conversions in one LOP3.
  static constexpr uint32_t kMagic2 = 0x43004300u;
  /// 2^15 as float bits: a code byte q placed in bits 8..15 (mantissa bits 8..15, whose unit is
  /// 2^(15 - 23 + 8) = 1) gives 2^15 + q exactly (int8, whose codes do not fit the 7-bit bf16
  /// mantissa). A byte lands there by one PRMT (dequant_code_bytes).
  static constexpr uint32_t kMagic = 0x47000000u;
  template <int kBits>
  static constexpr uint32_t kPairBias = kBits <= 7 ? kMagic2 : 0u;

  // Affine decode (the weight-streaming kernel, int.cuh): the biased pair itself is the A
  // operand, exact while 128 + q fits the 8 significant bits (codes of up to 7 bits).
  template <int kBits>
  static constexpr bool kExactBiasedCodes = kBits <= 7;
  static constexpr float kCodeBias = 128.f;
  static constexpr uint32_t kOnes2 = 0x3F803F80u;  ///< bfloat162 (1, 1)
  /// Scale of the affine decode: the spec's RNE_bf16(s), as float.
  __device__ static float affine_scale(uint32_t scale_fp16_bits) {
    return __bfloat162float(scale_of(scale_fp16_bits));
  }

  /// Scale (already rounded to bf16, docs/formats.md §1) and zero of one row's group,
  /// prepared once per tile. Codes of up to 7 bits stay in bf16x2; int8 goes through fp32.
  template <int kBits, bool kNarrow = (kBits <= 7)>
  struct RowQuant;
  template <int kBits>
  struct RowQuant<kBits, true> {
    uint32_t scale2;       ///< bfloat162 (s, s)
    uint32_t zero_magic2;  ///< bfloat162 (128 + z, 128 + z)
  };
  template <int kBits>
  struct RowQuant<kBits, false> {
    float scale;       ///< s rounded to bf16, as float
    float zero_magic;  ///< 2^15 + z
  };

  /// The spec's scale RNE_bf16(s) of an fp16 scale.
  __host__ __device__ static __nv_bfloat16 scale_of(uint32_t scale_fp16_bits) {
    return __float2bfloat16_rn(
        __half2float(__ushort_as_half(static_cast<unsigned short>(scale_fp16_bits))));
  }

  /// (s, s) for an fp16 scale s: the spec's RNE_bf16(s) in both halves.
  __host__ __device__ static uint32_t scale_pair(uint32_t scale_fp16_bits) {
    return static_cast<uint32_t>(__bfloat16_as_ushort(scale_of(scale_fp16_bits))) * 0x10001u;
  }
  /// a * b per half, each product rounded once (the _rn form: never contracted into an FMA).
  __host__ __device__ static uint32_t mul_pair_rn(uint32_t a, uint32_t b) {
    return bit_cast<uint32_t>(__hmul2_rn(bit_cast<__nv_bfloat162>(a), bit_cast<__nv_bfloat162>(b)));
  }

  template <int kBits>
  __host__ __device__ static RowQuant<kBits> row_quant(uint32_t scale_fp16_bits, uint32_t zero) {
    if constexpr (kBits <= 7) {
      return {scale_pair(scale_fp16_bits), kMagic2 | (zero * 0x10001u)};
    } else {
      return {__bfloat162float(scale_of(scale_fp16_bits)), bit_cast<float>(kMagic | zero << 8)};
    }
  }

  template <int kBits>
  __device__ static uint32_t dequant_pair(uint32_t q, const RowQuant<kBits>& rq) {
    static_assert(kBits <= 7, "int8 codes go through dequant_code_bytes");
    // (128 + q) - (128 + z) is exact (+0 when q == z, like the spec's (q - z) * s); with a
    // bf16 scale the bf16 multiply rounds the exact product (q - z) * s once: the spec's
    // RNE_bf16((q - z) * RNE_bf16(s)) in two bfloat162 instructions per pair. The _rn forms
    // (sub.rn / mul.rn.bf16x2 on sm_90; sm_80 has only fma.rn either way) keep ptxas from
    // contracting or reassociating them, which the spec forbids.
    const __nv_bfloat162 d =
        __hsub2_rn(bit_cast<__nv_bfloat162>(q), bit_cast<__nv_bfloat162>(rq.zero_magic2));
    return bit_cast<uint32_t>(__hmul2_rn(d, bit_cast<__nv_bfloat162>(rq.scale2)));
  }

  /// int8: the pair of codes in bytes b (q0) and b + 2 (q1) of a code word (b = 0 or 1, a
  /// compile-time constant once unrolled), straight from the word: one PRMT per code puts its
  /// byte in bits 8..15 of 2^15 (kMagic), the float 2^15 + q. (2^15 + q) - (2^15 + z) is exact
  /// (+0 when q == z); |q - z| < 2^8 times an 8-bit bf16 scale is exact in fp32, so the bf16
  /// conversion is the single RNE rounding of the spec (a fused q s - z s would give +0 for the
  /// spec's -0 at q == z, s < 0: docs/formats.md §1). Per pair 2 PRMT, 2 FADD, 2 FMUL and one
  /// F2FP; the 2^23 magic it replaced took 3 LOP3 and half a shift a pair to mask the codes out
  /// of the word and OR them into the magic (SASS of the int8 256-token kernel; H100 A/B: int8
  /// 0.83-0.95x the time on most rows at T >= 256, bench/results/s47-2026-12-06/i8d).
  template <int kByte>
  __host__ __device__ static uint32_t dequant_code_bytes(uint32_t word, const RowQuant<8>& rq) {
    static_assert(kByte == 0 || kByte == 1, "q0 in byte 0 or 1, q1 two bytes up");
    // Result bytes: 0 (kMagic's byte 0), the code, 0, 0x47 (kMagic's byte 3).
    const float q0 = bit_cast<float>(byte_perm(word, kMagic, 0x7404u | kByte << 4));
    const float q1 = bit_cast<float>(byte_perm(word, kMagic, 0x7404u | (kByte + 2) << 4));
    return pack_rn(mul_rn(sub_rn(q0, rq.zero_magic), rq.scale),
                   mul_rn(sub_rn(q1, rq.zero_magic), rq.scale));
  }
  /// fp32 a - b and a * b, rounded once, never contracted (host: plain IEEE operations; the
  /// host tests run without FMA contraction of these, as neither feeds an add).
  __host__ __device__ static float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
  }
  __host__ __device__ static float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
  }

  __host__ __device__ static uint32_t pack_rn(float lo, float hi) {
    return bit_cast<uint32_t>(__floats2bfloat162_rn(lo, hi));
  }
  /// A pair of values (low half first), exactly.
  __device__ static float2 unpack(uint32_t pair) {
    return __bfloat1622float2(bit_cast<__nv_bfloat162>(pair));
  }
  __device__ static unsigned short to_bits_rn(float v) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
  /// The value of these bits, exactly.
  __device__ static float to_float(unsigned short bits) {
    return __bfloat162float(__ushort_as_bfloat16(bits));
  }
  /// Dense weights: bf16 pairs are already A registers; fp16 pairs go exactly to fp32, then RNE.
  __device__ static uint32_t from_bf16x2(uint32_t w) {
    return w;
  }
  __host__ __device__ static uint32_t from_fp16x2(uint32_t w) {
    const float2 f = __half22float2(bit_cast<__half2>(w));
    return pack_rn(f.x, f.y);
  }

  /// d += A[16x16] * B[16x8], fp32 accumulate.
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

template <>
struct ActTraits<__half> {
  /// fp16 1024.0 in both halves: 1024 has ulp 1, so OR-ing q < 2^10 into each mantissa gives
  /// the half2 (1024 + q0, 1024 + q1) exactly, two conversions in one LOP3.
  static constexpr uint32_t kMagic2 = 0x64006400u;
  template <int kBits>
  static constexpr uint32_t kPairBias = kMagic2;

  // Affine decode: 1024 + q is exact for codes below 2^10, so every int format qualifies.
  template <int kBits>
  static constexpr bool kExactBiasedCodes = kBits <= 10;
  static constexpr float kCodeBias = 1024.f;
  static constexpr uint32_t kOnes2 = 0x3C003C00u;  ///< half2 (1, 1)
  __device__ static float affine_scale(uint32_t scale_fp16_bits) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(scale_fp16_bits)));
  }

  template <int kBits>
  struct RowQuant {
    uint32_t scale2;       ///< half2 (s, s)
    uint32_t zero_magic2;  ///< half2 (1024 + z, 1024 + z)
  };

  /// (s, s) for an fp16 scale s.
  __host__ __device__ static uint32_t scale_pair(uint32_t scale_fp16_bits) {
    return scale_fp16_bits * 0x10001u;
  }
  /// a * b per half, each product rounded once to nearest even (subnormals and overflow
  /// included; the _rn form: never contracted into an FMA).
  __host__ __device__ static uint32_t mul_pair_rn(uint32_t a, uint32_t b) {
    return bit_cast<uint32_t>(__hmul2_rn(bit_cast<__half2>(a), bit_cast<__half2>(b)));
  }

  template <int kBits>
  __device__ static RowQuant<kBits> row_quant(uint32_t scale_fp16_bits, uint32_t zero) {
    return {scale_pair(scale_fp16_bits), kMagic2 | (zero * 0x10001u)};
  }

  template <int kBits>
  __host__ __device__ static uint32_t dequant_pair(uint32_t q, const RowQuant<kBits>& rq) {
    // (1024 + q) - (1024 + z) is exact (integers below 2^11); the fp16 multiply then rounds
    // the exact product (q - z) * s once, to nearest even, subnormals and overflow included:
    // exactly RNE_fp16 of the spec's value.
    const __half2 d = __hsub2(bit_cast<__half2>(q), bit_cast<__half2>(rq.zero_magic2));
    return bit_cast<uint32_t>(__hmul2(d, bit_cast<__half2>(rq.scale2)));
  }

  __host__ __device__ static uint32_t pack_rn(float lo, float hi) {
    return bit_cast<uint32_t>(__floats2half2_rn(lo, hi));
  }
  __device__ static float2 unpack(uint32_t pair) { return __half22float2(bit_cast<__half2>(pair)); }
  __device__ static unsigned short to_bits_rn(float v) {
    return __half_as_ushort(__float2half_rn(v));
  }
  __device__ static float to_float(unsigned short bits) {
    return __half2float(__ushort_as_half(bits));
  }
  __host__ __device__ static uint32_t from_fp16x2(uint32_t w) { return w; }
  __device__ static uint32_t from_bf16x2(uint32_t w) {
    const float2 f = __bfloat1622float2(bit_cast<__nv_bfloat162>(w));
    return pack_rn(f.x, f.y);
  }

  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

// ---- Integer mma (the weight-streaming kernel's integer decode, x_digits.cuh) --------------

/// d += A[16x32] * B[32x8], u8 codes times u8 (lo) or s8 (hi) digits of x, s32 accumulate
/// (exact: |d| stays below 2^31 for every int format, x_digits.cuh).
template <bool kSignedB>
__device__ __forceinline__ void imma(int (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                     uint32_t b1) {
  if constexpr (kSignedB)
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.u8.s32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- Shared memory: ldmatrix, cp.async ------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Four 8x8 b16 matrices; lane l gives the row address of matrix l/8, row l%8, and receives
/// (row l/4, columns 2(l%4), 2(l%4)+1) of each matrix in r[0..3].
__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

/// Copies 16 bytes from global to shared; src 16-byte aligned. .cg: cached in L2 only, so
/// streamed weights do not evict the small, reused activations from L1.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
/// The same, or (zero_fill) 16 zero bytes without reading src (the ignore-src form: one
/// predicated LDGSTS; a run-time source size costs ~6 more instructions per copy).
__device__ __forceinline__ void cp_async_16_or_zero(uint32_t dst, const void* src, bool zero_fill) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %2, 0;\n"
      "cp.async.cg.shared.global [%0], [%1], 16, p;\n"
      "}\n" ::"r"(dst),
      "l"(src), "r"(static_cast<int>(zero_fill))
      : "memory");
}
/// 8-byte variant (only .ca exists for 8 bytes); src 8-byte aligned.
__device__ __forceinline__ void cp_async_8(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst), "l"(src) : "memory");
}
/// 4-byte variant (.ca); src 4-byte aligned.
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// ---- mbarriers and bulk copies (sm_90+; PTX ISA "mbarrier", "cp.async.bulk") ---------------

/// Whether this compilation pass emits sm_90+ device code (bulk copies, mbarrier transaction
/// counts, the async proxy); false in the host pass and for the compute_80 PTX.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr bool kAsyncProxy = true;
#else
constexpr bool kAsyncProxy = false;
#endif

__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
/// Makes the initialising thread's mbarrier_init visible to the async proxy (bulk copies, TMA).
__device__ __forceinline__ void mbarrier_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
/// The one arrival of a stage's fill: the barrier's phase completes once `bytes` have landed.
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
/// bytes (a multiple of 16) from global src to shared dst, both 16-byte aligned, by the bulk
/// copy engine, completing on mbarrier bar (which must expect them).
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes,
                                              uint32_t bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
}
/// cp.async and st.shared are generic-proxy writes; wgmma and bulk copies access shared memory
/// through the async proxy: each thread fences its own accesses before the barrier that orders
/// them against the async ones.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

}  // namespace qmoe::dev
