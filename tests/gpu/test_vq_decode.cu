// The vector decoder's code and sign handling (VectorDecoder::code_of and sign_mask, with the
// table entries its shuffles would fetch), checked on the host against the CPU reference: for
// every lane, sub-tile and A register of a random vq2 16 x 128 matrix at scale 1, the two 16-bit
// values must be the fp16 bits ref::dequantize_to gives at the (row, k) pair the register holds
// (mma m16n8k16 A layout). Runs without a device; the GPU tests check the decoder (shuffles and
// the scale multiply included) inside every kernel.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/decode/vector.cuh"
#include "qmoe/cpu_ref.hpp"
#include "tests/cpu/test_util.hpp"

namespace {

TEST(VectorDecode, CodesAndSignsGiveTheReferenceWeightsAtEveryAFragmentPosition) {
  using Dec = qmoe::dev::VectorDecoder;
  qmoe::FormatSpec f;
  ASSERT_TRUE(qmoe::FormatSpec::parse("vq2", &f).is_ok());
  std::mt19937 rng(6201);
  qmoe::LogicalMatrix l = qmoe::LogicalMatrix::sized(f, 16, 128);
  for (int64_t i = 0; i < 16 * 128; ++i)
    if (i % 16 < 8 && i % 2 == 0)
      l.codes[static_cast<size_t>(i)] = static_cast<uint16_t>(rng() % 256);
  for (uint16_t& s : l.scales) s = 0x3C00;  // 1.0: the fp16 weights are the signed entries
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  ASSERT_EQ(m.layout.tile_bytes, Dec::kTileBytes);
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, qmoe::DType::kFP16, &want).is_ok());
  // The words lane m holds (RawQuant::entry): entry m's dimensions 0, 1 and 2, 3.
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

}  // namespace
