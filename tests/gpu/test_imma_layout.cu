// The integer-mma decode's A bytes (IntDecoder::imma_a), checked on the host against the format
// spec and against where x_digits puts x: for every lane, IMMA and byte, the code that imma_a
// gives must be the code of the (row, k) whose x digit sits in the matching B slot
// (xdig::slot_byte). Any order of k inside an IMMA is a correct product only if A and B agree
// on it, and a GPU run sees a disagreement only as a numeric error. Runs without a device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cpu_ref/formats/decode.hpp"
#include "cuda/decode/int.cuh"
#include "cuda/kernels/x_digits.cuh"
#include "tests/cpu/test_util.hpp"

namespace {

/// imma_a of decoder Dec over the first tile of a quantized 16 x 128 matrix, for every lane,
/// IMMA, register and byte, against the spec's code of the (row, k) that slot_byte maps there.
template <class Dec>
void check_imma_bytes(const std::string& format, int bits, uint32_t seed) {
  SCOPED_TRACE(format);
  qmoe::FormatSpec f;
  ASSERT_TRUE(qmoe::FormatSpec::parse(format, &f).is_ok());
  const std::vector<float> w = qmoe::test::gaussian(16 * 128, 1.0f, seed);
  const qmoe::PackedMatrix m = qmoe::test::quantized(w, 16, 128, f);
  qmoe::ref::detail::Layout layout;
  ASSERT_TRUE(qmoe::ref::detail::check_packed(m, &layout).is_ok());
  std::vector<uint16_t> codes;
  qmoe::ref::detail::read_codes(m, layout, &codes);
  ASSERT_EQ(layout.tile_bytes, Dec::kTileBytes);
  const uint8_t* tile = m.blob.data() + layout.codes_offset;
  int high_codes = 0;  // codes >= 4: the bits above int2's are exercised
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int k = 0; k < 128; ++k) {
      // B slot of k (x_digits.cuh): lane tig, IMMA i, half h, byte b.
      const int slot = qmoe::dev::xdig::slot_byte(Dec::kImmaMap, k);
      const int tig = slot / 32, i = (slot % 32) / 8, h = (slot % 8) / 4, b = slot % 4;
      if (tig != lane % 4) continue;
      uint32_t a[4];
      Dec::imma_a(raw, i, a);
      for (int half_rows = 0; half_rows < 2; ++half_rows) {
        const int row = lane / 4 + 8 * half_rows;  // A registers 2h (row gid), 2h + 1 (gid + 8)
        const uint32_t got = (a[2 * h + half_rows] >> (8 * b)) & 0xFFu;
        const uint32_t want = codes[static_cast<size_t>(row) * 128 + k];
        high_codes += want >= 4;
        ASSERT_EQ(got, want) << "lane " << lane << " k " << k << " row " << row << " (IMMA " << i
                             << ", register " << 2 * h + half_rows << ", byte " << b << ")";
      }
    }
  }
  if (bits > 2) EXPECT_GT(high_codes, 0) << "no code >= 4: the data cannot see the high bits";
}

TEST(ImmaLayout, DecodersAbytesMatchTheSpecAndXDigitsSlots) {
  check_imma_bytes<qmoe::dev::IntDecoder<2, 1>>("int2:g128", 2, 5101);
  check_imma_bytes<qmoe::dev::IntDecoder<3, 1>>("int3:g128", 3, 5102);
  check_imma_bytes<qmoe::dev::IntDecoder<3, 2>>("int3:g64:sym", 3, 5103);
  check_imma_bytes<qmoe::dev::IntDecoder<4, 1>>("int4:g128", 4, 5105);
  check_imma_bytes<qmoe::dev::IntDecoder<4, 4>>("int4:g32", 4, 5106);
  check_imma_bytes<qmoe::dev::IntDecoder<8, 1>>("int8:g128", 8, 5104);
}

}  // namespace
