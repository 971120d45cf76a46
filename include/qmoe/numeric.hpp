// qmoe/numeric.hpp — host-side 16-bit float conversions (IEEE binary16 and bfloat16),
// round-to-nearest-even, as bit patterns. Header-only, no CUDA needed.
#pragma once
#include <cstdint>
#include <cstring>

#include "qmoe/format.hpp"

namespace qmoe {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) {
  return bits_float(static_cast<uint32_t>(h) << 16);
}

/// float -> IEEE half bits, round to nearest even, overflow to +-inf, subnormals kept.
inline uint16_t float_to_fp16(float f) {
  uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (u >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (u < 0x38800000u) {  // result is subnormal (|f| < 2^-14) or zero
    // Integer rounding (no float tricks, so -ffast-math in a consumer cannot break it):
    // f = m * 2^(e - 150) with the implicit bit in m; in units of 2^-24 that is
    // m >> (126 - e), rounded to nearest even. Below 2^-25 everything rounds to 0.
    const uint32_t e = u >> 23;
    if (e < 102u) return static_cast<uint16_t>(sign);
    const uint32_t m = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14 .. 24
    uint32_t h = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to even.
  uint32_t h = ((u - 0x38000000u) >> 13);
  const uint32_t rest = u & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {  // zero / subnormal: man * 2^-24 (exact in float)
    const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

/// A bf16 or fp16 bit pattern (activation type t) as float; exact.
inline float act_bits_to_float(DType t, uint16_t bits) {
  return t == DType::kBF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}

/// float -> bf16 or fp16 bits (activation type t), round to nearest even.
inline uint16_t float_to_act_bits(DType t, float v) {
  return t == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
}

}  // namespace qmoe
