// int8 codes with bf16 activations (ActTraits<bf16>::dequant_code_bytes, the decode every tile
// kernel and the dequantize kernel run for int8 with bf16): checked on the host against the
// spec's value RNE_bf16((q - z) * RNE_bf16(s)) (docs/formats.md §1) for every code q, every
// zero z, both byte positions of a pair in its code word, and scales of both signs, zero,
// fp16 subnormals and the fp16 extremes. The PRMT-built 2^15 + q and the exact fp32 difference
// must give every bit, -0 at q == z with a negative scale included. Runs without a device.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "cuda/decode/common.cuh"

namespace {

using Traits = qmoe::dev::ActTraits<__nv_bfloat16>;

/// The spec's weight bits for code q, zero z and fp16 scale bits.
uint16_t spec_bits(int q, int z, uint16_t scale_fp16_bits) {
  const float s = __bfloat162float(Traits::scale_of(scale_fp16_bits));
  const float w = static_cast<float>(q - z) * s;  // exact: 9 x 8 significant bits
  return __bfloat16_as_ushort(__float2bfloat16_rn(w));
}

/// Code word with q0 in byte kByte and q1 in byte kByte + 2, the other bytes `fill`.
template <int kByte>
uint32_t code_word(int q0, int q1, uint32_t fill) {
  const uint32_t mask = 0xFFu << (8 * kByte) | 0xFFu << (8 * (kByte + 2));
  return (fill & ~mask) | static_cast<uint32_t>(q0) << (8 * kByte) |
         static_cast<uint32_t>(q1) << (8 * (kByte + 2));
}

template <int kByte>
void check_all_codes(uint16_t scale_bits, int* negative_zeros) {
  for (int z = 0; z < 256; ++z) {
    const auto rq = Traits::row_quant<8>(scale_bits, static_cast<uint32_t>(z));
    for (int q = 0; q < 256; ++q) {
      const int q1 = (q * 37 + z) & 0xFF;  // a second code that runs through all values too
      const uint32_t word = code_word<kByte>(q, q1, 0xA5C3E1F7u ^ (static_cast<uint32_t>(q) << 9));
      const uint32_t got = Traits::dequant_code_bytes<kByte>(word, rq);
      const uint16_t want0 = spec_bits(q, z, scale_bits), want1 = spec_bits(q1, z, scale_bits);
      if ((got & 0xFFFFu) != want0 || (got >> 16) != want1) {
        ADD_FAILURE() << "scale 0x" << std::hex << scale_bits << std::dec << " z " << z << " q "
                      << q << " q1 " << q1 << " byte " << kByte << ": got 0x" << std::hex << got
                      << " want 0x" << want1 << " / 0x" << want0;
        return;
      }
      *negative_zeros += want0 == 0x8000u;
    }
  }
}

TEST(Int8Bf16Decode, EveryCodeAndZeroMatchesTheSpecBitForBit) {
  // fp16 scale bits: ordinary values of both signs, zero and -0, the smallest subnormal, a
  // subnormal with more bits than bf16 keeps, the largest finite values, and values whose bf16
  // rounding carries into the exponent.
  const std::vector<uint16_t> scales = {0x1C00, 0x2E66, 0x3C00, 0x3555, 0xB555, 0x9C01, 0x0000,
                                        0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x3BFF, 0x57F3};
  int negative_zeros = 0;
  for (const uint16_t s : scales) {
    check_all_codes<0>(s, &negative_zeros);
    check_all_codes<1>(s, &negative_zeros);
  }
  // The data reaches the -0 case the spec singles out (q == z, s < 0).
  EXPECT_GT(negative_zeros, 0);
}

}  // namespace
