// The vector decoder's steps, checked on the host against the CPU reference (mma m16n8k16 A
// layout: every lane, sub-tile and register of a random vq2 16 x 128 matrix): its code and sign
// handling (VectorDecoder::code_of, sign_mask) at scale 1; then item_quant, prepare and
// form_vector, with the entry a shuffle would fetch (source lane = code mod 32), at a different
// scale per row, in fp16 and bf16. Runs without a device; the GPU tests check the decoder inside
// every kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/decode/vector.cuh"
#include "qmoe/cpu_ref.hpp"
#include "tests/cpu/test_util.hpp"

namespace {

/// A vq2 16 x 128 logical matrix with random codes (at each vector's first column).
qmoe::LogicalMatrix random_vq2_tile(uint32_t seed) {
  qmoe::FormatSpec f;
  EXPECT_TRUE(qmoe::FormatSpec::parse("vq2", &f).is_ok());
  std::mt19937 rng(seed);
  qmoe::LogicalMatrix l = qmoe::LogicalMatrix::sized(f, 16, 128);
  for (int64_t i = 0; i < 16 * 128; ++i)
    if (i % 16 < 8 && i % 2 == 0)
      l.codes[static_cast<size_t>(i)] = static_cast<uint16_t>(rng() % 256);
  return l;
}

TEST(VectorDecode, CodesAndSignsGiveTheReferenceWeightsAtEveryAFragmentPosition) {
  using Dec = qmoe::dev::VectorDecoder;
  qmoe::LogicalMatrix l = random_vq2_tile(6201);
  for (uint16_t& s : l.scales) s = 0x3C00;  // 1.0: the fp16 weights are the signed entries
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  ASSERT_EQ(m.layout.tile_bytes, Dec::kTileBytes);
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, qmoe::DType::kFP16, &want).is_ok());
  // The words lane m holds (ItemQuant::entry): entry m's dimensions 0, 1 and 2, 3.
  const auto entry = [](uint32_t e, int pair) {
    const uint16_t* t = qmoe::test::kVq2Table + 4 * e + 2 * pair;
    return uint32_t{t[0]} | uint32_t{t[1]} << 16;
  };
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;
  int64_t negative = 0;
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int j = 0; j < 8; ++j)
      for (int r = 0; r < 4; ++r) {
        const int h = r & 1, pair = r >> 1;  // a[h]: dimensions 0, 1; a[h + 2]: 2, 3
        const uint32_t code = Dec::code_of(raw, j, h);
        const uint32_t got = entry(code % 16, pair) ^ Dec::sign_mask(code, 2 * pair);
        const int row = lane / 4 + 8 * h;
        const int col = 16 * j + 2 * (lane % 4) + 8 * pair;
        for (int half = 0; half < 2; ++half) {
          negative += (got >> (16 * half + 15)) & 1u;
          EXPECT_EQ((got >> (16 * half)) & 0xFFFFu,
                    want[static_cast<size_t>(row) * 128 + col + half])
              << "lane " << lane << " sub-tile " << j << " register " << r << " half " << half
              << " (row " << row << ", k " << col + half << ", code " << code << ")";
        }
      }
  }
  EXPECT_GT(negative, 0);
  EXPECT_LT(negative, 16 * 128);
}

// prepare (the table and scales to Act: RNE_bf16 of the fp16 values for bf16) and form_vector
// (signs, then one rounded product per half, for row gid + 8h's scale) give the reference's
// weights, docs/formats.md §1, for every lane, sub-tile and register, in both activation types.
template <class Act>
void expect_formed_registers(qmoe::DType dtype) {
  using Dec = qmoe::dev::VectorDecoder;
  qmoe::LogicalMatrix l = random_vq2_tile(6202);
  // A different fp16 scale per row: normal ones of every exponent (their bf16 roundings differ
  // from them), two subnormals and one large enough that fp16 products overflow.
  const uint16_t scales[16] = {0x211F, 0x3C00, 0x3555, 0x2E66, 0x1A3B, 0x0457, 0x0003, 0x0201,
                               0x4D2F, 0x5BFF, 0x7800, 0x3FFF, 0x2C01, 0x1001, 0x47A1, 0x3001};
  for (int r = 0; r < 16; ++r) l.scales[static_cast<size_t>(r)] = scales[r];
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, dtype, &want).is_ok());
  // Each lane's prepared quant: its table entry (lane & 15, per item), rows gid and gid + 8's
  // scales (per k-tile).
  const qmoe::dev::ExpertParams ep{};
  std::vector<Dec::Quant<Act>> quant(32);
  for (int lane = 0; lane < 32; ++lane) {
    Dec::RawQuant rq{};
    rq.scale[0] = uint32_t{scales[lane / 4]} | uint32_t{scales[lane / 4 + 8]} << 16;
    uint32_t entry[2];
    for (int pair = 0; pair < 2; ++pair) {
      const uint16_t* t = qmoe::test::kVq2Table + 4 * (lane & 15) + 2 * pair;
      entry[pair] = uint32_t{t[0]} | uint32_t{t[1]} << 16;
    }
    quant[static_cast<size_t>(lane)] = Dec::prepare<Act>(ep, rq, Dec::item_quant<Act>(entry));
  }
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h) {
        const uint32_t code = Dec::code_of(raw, j, h);
        uint32_t a[2];
        Dec::form_vector<Act>(code, quant[code % 32].entry,
                              quant[static_cast<size_t>(lane)].scale[h], a[0], a[1]);
        const int row = lane / 4 + 8 * h;
        for (int pair = 0; pair < 2; ++pair)
          for (int half = 0; half < 2; ++half) {
            const int col = 16 * j + 2 * (lane % 4) + 8 * pair + half;
            EXPECT_EQ((a[pair] >> (16 * half)) & 0xFFFFu,
                      want[static_cast<size_t>(row) * 128 + col])
                << "lane " << lane << " sub-tile " << j << " h " << h << " (row " << row << ", k "
                << col << ", code " << code << ")";
          }
      }
  }
}

TEST(VectorDecode, FormedRegistersAreTheReferenceWeightsInFp16) {
  expect_formed_registers<__half>(qmoe::DType::kFP16);
}

TEST(VectorDecode, FormedRegistersAreTheReferenceWeightsInBf16) {
  expect_formed_registers<__nv_bfloat16>(qmoe::DType::kBF16);
}

}  // namespace
