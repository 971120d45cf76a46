// The LUT decoder's lookup (LutDecoder::codes_pair and lookup), checked on the host
// against the CPU reference: for every lane, sub-tile and A register of a quantized 16 x 128 nuq
// matrix, the two 16-bit values must be the fp16 bits that ref::dequantize_to gives at the
// (row, k) pair the register holds (mma m16n8k16 A layout). Wrong PRMT selectors or bit-2/3
// picks fail here at named positions, where a GPU run would show only a numeric error.
// Runs without a device; the GPU tests check the same decoder inside every kernel.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/decode/lut.cuh"
#include "qmoe/cpu_ref.hpp"
#include "tests/cpu/test_util.hpp"

namespace {

template <int BITS>
void check_lut_lookup(uint32_t seed) {
  using Dec = qmoe::dev::LutDecoder<BITS>;
  const std::string format = "nuq" + std::to_string(BITS);
  SCOPED_TRACE(format);
  qmoe::FormatSpec f;
  ASSERT_TRUE(qmoe::FormatSpec::parse(format, &f).is_ok());
  const std::vector<float> w = qmoe::test::gaussian(16 * 128, 1.0f, seed);
  const qmoe::PackedMatrix m = qmoe::test::quantized(w, 16, 128, f);
  ASSERT_EQ(m.layout.tile_bytes, Dec::kTileBytes);
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, qmoe::DType::kFP16, &want).is_ok());
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;
  const uint8_t* tables = m.blob.data() + m.layout.scales_offset;
  std::vector<int> hits(1 << BITS, 0);  // entries looked up: every one, so every pick is seen
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    uint32_t table[2][Dec::kRowWords];
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < Dec::kRowWords; ++i) {
        const uint8_t* p = tables + (lane / 4 + 8 * h) * Dec::kRowBytes + 4 * i;
        table[h][i] = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
      }
    for (int j = 0; j < 8; ++j)
      for (int r = 0; r < 4; ++r) {
        const uint32_t codes = Dec::codes_pair(raw, 4 * j + r);
        const uint32_t got = Dec::lookup(table[r & 1], codes);
        const int row = lane / 4 + 8 * (r & 1);
        const int col = 16 * j + 2 * (lane % 4) + 8 * (r >> 1);
        for (int half = 0; half < 2; ++half) {
          const uint32_t q = (codes >> (8 * half)) & ((1u << BITS) - 1);
          ++hits[q];
          EXPECT_EQ((got >> (16 * half)) & 0xFFFFu,
                    want[static_cast<size_t>(row) * 128 + col + half])
              << "lane " << lane << " sub-tile " << j << " register " << r << " half " << half
              << " (row " << row << ", k " << col + half << ", code " << q << ")";
        }
      }
  }
  for (int q = 0; q < (1 << BITS); ++q)
    EXPECT_GT(hits[q], 0) << "entry " << q << " never looked up";
}

TEST(LutDecode, LookupGivesTheReferenceWeightsAtEveryAFragmentPosition) {
  check_lut_lookup<2>(6101);
  check_lut_lookup<3>(6102);
  check_lut_lookup<4>(6103);
}

}  // namespace
