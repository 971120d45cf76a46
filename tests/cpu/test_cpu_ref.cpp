// CPU reference (cpu_ref/): the worked examples of docs/formats.md §3 built by hand, code
// positions poked by hand, round trips through the encoder (qmoe::pack), the grouped GEMM
// against a naive float64 loop, input and padding validation, out-of-memory as a Status, and
// the 16-bit RNE conversions checked against independent long-double rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"
#include "qmoe/packed.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::act_value;
using test::decoded;
using test::packed;
using test::parse_format;
using test::put_fp16;
using test::random_activations;
using test::random_logical;
using test::scale_byte;
using test::shape_name;
using test::to_act;
using test::zero_byte;

// A random normal (so nonzero) positive fp16 pattern.
uint16_t random_normal_fp16(std::mt19937& rng) {
  const uint32_t exponent = 1 + rng() % 30;
  return static_cast<uint16_t>(exponent << 10 | (rng() & 0x3ffu));
}

// A packed matrix of a tile-aligned shape (so without the padding of §2.1) with layout from
// packed_layout() and random bytes everywhere; int scales and LUT table entries are random
// normal fp16 values and zeros random codes, so the blob is valid.
PackedMatrix random_blob(const FormatSpec& f, int64_t n, int64_t k, std::mt19937& rng) {
  EXPECT_TRUE(n % kTileRows == 0 && k % kTileCols == 0) << "random bytes would break padding";
  PackedMatrix m = test::random_packed(f, n, k, rng);
  if (f.kind != FormatKind::kDense) {
    for (int64_t i = 0; i < m.layout.scales_bytes; i += 2)
      put_fp16(&m, m.layout.scales_offset + i, random_normal_fp16(rng));
    for (int64_t i = 0; i < m.layout.zeros_bytes; ++i)
      m.blob[static_cast<size_t>(m.layout.zeros_offset + i)] =
          static_cast<uint8_t>(rng() % (1u << f.bits));
  }
  return m;
}

std::vector<float> dequantized(const PackedMatrix& m) {
  std::vector<float> w;
  const Status st = ref::dequantize(m, &w);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return w;
}

// Weight `at` of m in activation type act, by ref::dequantize_to (an error fails the test).
uint16_t act_weight(const PackedMatrix& m, DType act, size_t at) {
  std::vector<uint16_t> w;
  const Status st = ref::dequantize_to(m, act, &w);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return at < w.size() ? w[at] : uint16_t{0};
}

// Moderate values a GEMM can multiply: dense weights in [-1, 1], int scales in [-1/64, 1/64].
LogicalMatrix moderate_logical(const FormatSpec& f, int64_t n, int64_t k, std::mt19937& rng) {
  return test::moderate_logical(f, n, k, 1.0f, 1.0f / 64, rng);
}

// Where the bits of one weight's code live in the blob: (byte, first bit, width), least
// significant code bits first.
struct BitField {
  int64_t byte;
  int shift, width;
};

void put_code(PackedMatrix* m, const std::vector<BitField>& fields, uint32_t code) {
  for (const BitField& f : fields) {
    const uint32_t mask = ((1u << f.width) - 1u) << f.shift;
    uint8_t& b = m->blob[static_cast<size_t>(f.byte)];
    b = static_cast<uint8_t>((b & ~mask) | ((code << f.shift) & mask));
    code >>= f.width;
  }
}

uint32_t get_code(const PackedMatrix& m, const std::vector<BitField>& fields) {
  uint32_t code = 0;
  int shift = 0;
  for (const BitField& f : fields) {
    code |= ((m.blob[static_cast<size_t>(f.byte)] >> f.shift) & ((1u << f.width) - 1u)) << shift;
    shift += f.width;
  }
  return code;
}

// ---- docs/formats.md §3 ------------------------------------------------------------------

// One worked example of §3: weight (row, col) of W[n, k], the blob bits of its code, its
// group's scale and zero (int formats) or its table entry (LUT formats: in the scale fields)
// and what it decodes to. Offsets of -1: no section.
struct SpecExample {
  const char* format;
  int64_t n, k;
  int64_t row, col;
  std::vector<BitField> code_bits;
  uint32_t code;  // q, or the dense 16-bit pattern
  int64_t scale_byte;
  uint16_t scale;
  int64_t zero_byte;
  uint8_t zero;
  float value;
  uint16_t bf16, fp16;
  int64_t scales_offset, zeros_offset, total_bytes;
};

// The numbers of §3.1-3.7, copied from the spec (every position derived by hand there).
const std::vector<SpecExample>& spec_examples() {
  // One example per row pair, as in the spec; clang-format would put each field on a line.
  // clang-format off
  static const std::vector<SpecExample> examples = {
      // format, n, k, row, col, code bits, code, scale byte, scale, zero byte, zero,
      //   value, bf16, fp16, scales offset, zeros offset, total bytes
      {"int4:g128", 16, 128, 9, 18, {{84, 4, 4}}, 12, 1030, 0x211F, 1283, 7,
       0.05001068115234375f, 0x3D4D, 0x2A67, 1024, 1280, 1536},
      {"int2:g32", 16, 128, 9, 50, {{85, 2, 2}}, 3, 538, 0x3266, 781, 1,
       0.39990234375f, 0x3ECD, 0x3666, 512, 768, 1024},
      {"int3:g64:sym", 16, 128, 9, 82, {{89, 2, 2}, {556, 5, 1}}, 7, 782, 0x2E66, -1, 0,
       0.2999267578125f, 0x3E9A, 0x34CC, 768, -1, 1024},
      {"int8:g128", 16, 256, 9, 146, {{2137, 0, 8}}, 200, 4134, 0x2123, 4371, 131,
       0.69225311279296875f, 0x3F31, 0x398A, 4096, 4352, 4608},
      {"int4:pc", 16, 100, 9, 99, {{602, 4, 4}}, 3, 1030, 0x2C4A, 1283, 10,
       -0.4691162109375f, 0xBEF0, 0xB782, 1024, 1280, 1536},
      {"bf16", 16, 128, 9, 18, {{596, 0, 8}, {597, 0, 8}}, 0xBE2A, -1, 0, -1, 0,
       -0.166015625f, 0xBE2A, 0xB150, -1, -1, 4096},
      {"fp16", 16, 128, 9, 19, {{598, 0, 8}, {599, 0, 8}}, 0x3555, -1, 0, -1, 0,
       0.333251953125f, 0x3EAB, 0x3555, -1, -1, 4096},
      {"nuq4", 16, 128, 9, 18, {{84, 4, 4}}, 12, 1336, 0x3C05, -1, 0,
       1.0048828125f, 0x3F81, 0x3C05, 1024, -1, 1536},
  };
  // clang-format on
  return examples;
}

// A C string, not a std::string: g++ 13 flags a reference returned from a call with a temporary
// std::string argument as possibly dangling (-Wdangling-reference), an error with QMOE_WERROR.
const SpecExample& spec_example(const char* format) {
  for (const SpecExample& ex : spec_examples())
    if (std::string_view(format) == ex.format) return ex;
  ADD_FAILURE() << "no example for " << format;
  return spec_examples().front();
}

// A valid blob of the example's format and shape, random elsewhere, whose example weight's
// group has the given scale and zero. Tile-aligned shapes get random bytes (independent of
// the encoder); padded ones come from the encoder, whose padding then holds that zero.
PackedMatrix example_blob(const SpecExample& ex, uint16_t scale, uint8_t zero, std::mt19937& rng) {
  const FormatSpec f = parse_format(ex.format);
  const bool is_int = f.kind == FormatKind::kInt;
  if (ex.n % kTileRows == 0 && ex.k % kTileCols == 0) {
    PackedMatrix m = random_blob(f, ex.n, ex.k, rng);
    if (ex.scale_byte >= 0) put_fp16(&m, ex.scale_byte, scale);
    if (ex.zero_byte >= 0) m.blob[static_cast<size_t>(ex.zero_byte)] = zero;
    return m;
  }
  LogicalMatrix l = random_logical(f, ex.n, ex.k, rng);
  if (is_int) {
    const int64_t g = f.group_len(ex.k);
    const size_t at = static_cast<size_t>(ex.row * (ex.k / g) + ex.col / g);
    l.scales[at] = scale;
    if (!f.symmetric) l.zeros[at] = zero;
  }
  return packed(l);
}

TEST(CpuRefWorkedExample, EverySpecExampleDecodesToItsValuesAndHasItsLayout) {
  std::mt19937 rng(3);
  for (const SpecExample& ex : spec_examples()) {
    SCOPED_TRACE(ex.format);
    PackedMatrix m = example_blob(ex, ex.scale, ex.zero, rng);
    const PackedLayout& L = m.layout;
    EXPECT_EQ(L.scales_bytes > 0 ? L.scales_offset : -1, ex.scales_offset);
    EXPECT_EQ(L.zeros_bytes > 0 ? L.zeros_offset : -1, ex.zeros_offset);
    EXPECT_EQ(m.layout.total_bytes, ex.total_bytes);
    put_code(&m, ex.code_bits, ex.code);

    const std::vector<float> w = dequantized(m);
    ASSERT_EQ(static_cast<int64_t>(w.size()), ex.n * ex.k);
    const size_t at = static_cast<size_t>(ex.row * ex.k + ex.col);
    EXPECT_EQ(w[at], ex.value);
    std::vector<uint16_t> bf16, fp16;
    ASSERT_TRUE(ref::dequantize_to(m, DType::kBF16, &bf16).is_ok());
    ASSERT_TRUE(ref::dequantize_to(m, DType::kFP16, &fp16).is_ok());
    EXPECT_EQ(bf16[at], ex.bf16);
    EXPECT_EQ(fp16[at], ex.fp16);
  }
}

// §3.5: in int4:pc with K = 100, padded weight (9, 114) sits at byte 604, high nibble
// (lane 5, pair 29, word 7, slot 1) and holds z = 10, the zero of group 0: the row's only one.
TEST(CpuRefWorkedExample, PerChannelPaddedColumnsHoldTheZeroOfGroupZero) {
  std::mt19937 rng(4);
  const SpecExample& ex = spec_example("int4:pc");
  PackedMatrix m = example_blob(ex, ex.scale, ex.zero, rng);
  const std::vector<BitField> padded = {{604, 4, 4}};
  EXPECT_EQ(get_code(m, padded), 10u);  // the encoder agrees with the spec
  std::vector<float> w;
  ASSERT_TRUE(ref::dequantize(m, &w).is_ok());

  put_code(&m, padded, 11);
  Status st = ref::dequantize(m, &w);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("row 9, column 114 (group 0)"), std::string::npos) << st.message();
  put_code(&m, padded, 10);
  EXPECT_TRUE(ref::dequantize(m, &w).is_ok());

  // A new zero for row 9 leaves its 28 padded codes behind: rejected.
  m.blob[static_cast<size_t>(ex.zero_byte)] = 11;
  st = ref::dequantize(m, &w);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("row 9, column 1"), std::string::npos) << st.message();
}

// §3.8: row 9's block of a tcq2 matrix is all chunks 0 but chunks 18..23 = 3, 1, 0, 2, 3, 1
// (bytes 292 high nibble and 293). Position 18's state is 0x787, v = -208; the Hadamard row
// 18 of all 128 codes gives u = -914, sigma = +1, times the scale 0x211F at bytes 518..519.
// Position 0 is the sum of all 128 codes, -21924. pack writes those bytes from the chunks.
TEST(CpuRefWorkedExample, TrellisBlocksDecodeThroughTheirStatesAndTheHadamardRow) {
  std::mt19937 rng(5);
  LogicalMatrix l = random_logical(parse_format("tcq2"), 16, 128, rng);
  const int chunks[] = {3, 1, 0, 2, 3, 1};
  for (int t = 0; t < 128; ++t) l.codes[9 * 128 + t] = 0;
  for (int i = 0; i < 6; ++i) l.codes[9 * 128 + 18 + i] = static_cast<uint16_t>(chunks[i]);
  l.scales[9] = 0x211F;
  const PackedMatrix m = packed(l);
  EXPECT_EQ(m.layout.scales_offset, 512);
  EXPECT_EQ(m.layout.total_bytes, 768);
  EXPECT_EQ(m.blob[292], 0x70);  // chunks 16, 17 = 0 below chunks 18, 19
  EXPECT_EQ(m.blob[293], 0x78);
  EXPECT_EQ(m.blob[518], 0x1F);
  EXPECT_EQ(m.blob[519], 0x21);
  const std::vector<float> w = dequantized(m);
  ASSERT_EQ(w.size(), 16u * 128u);
  EXPECT_EQ(w[9 * 128 + 18], -9.141952514648438f);
  EXPECT_EQ(w[9 * 128 + 0], -219.28683471679688f);
  EXPECT_EQ(act_weight(m, DType::kBF16, 9 * 128 + 18), 0xC112);
  EXPECT_EQ(act_weight(m, DType::kFP16, 9 * 128 + 18), 0xC892);
  // A chunk reaches every weight of its row's block (through the Hadamard rows) and no other.
  PackedMatrix other = m;
  other.blob[293] = static_cast<uint8_t>((other.blob[293] & 0x3F) | 0x80);  // chunk 23: 1 -> 2
  const std::vector<float> w2 = dequantized(other);
  int64_t changed_in_row = 0, changed_elsewhere = 0;
  for (int64_t i = 0; i < 16 * 128; ++i) {
    const bool differs = float_bits(w2[i]) != float_bits(w[i]);
    (i / 128 == 9 ? changed_in_row : changed_elsewhere) += differs;
  }
  EXPECT_GT(changed_in_row, 64);
  EXPECT_EQ(changed_elsewhere, 0);
}

// §3.9: tcq2.5, two values a state: row 9's chunks 9, 10, 11 = 22, 13, 3 (the rest 0) sit in
// bytes 365..367 of its 40-byte stream; step 9's state 0xDB6 codes positions 18 (c_0 = -47) and
// 19 (c_1 = 412); through the Hadamard rows and signs w_18 = 118 s, w_19 = 618 s.
TEST(CpuRefWorkedExample, TwoValueTrellisStepsCodeTwoPositions) {
  std::mt19937 rng(6);
  LogicalMatrix l = random_logical(parse_format("tcq2.5"), 16, 128, rng);
  for (int t = 0; t < 128; ++t) l.codes[9 * 128 + t] = 0;
  l.codes[9 * 128 + 18] = 22;  // step p's chunk is the code of position 2p
  l.codes[9 * 128 + 20] = 13;
  l.codes[9 * 128 + 22] = 3;
  l.scales[9] = 0x211F;
  const PackedMatrix m = packed(l);
  EXPECT_EQ(m.layout.tile_bytes, 640);
  EXPECT_EQ(m.layout.scales_offset, 768);
  EXPECT_EQ(m.layout.total_bytes, 1024);
  EXPECT_EQ(m.blob[365], 0xC0);
  EXPECT_EQ(m.blob[366], 0xB6);
  EXPECT_EQ(m.blob[367], 0x01);
  EXPECT_EQ(m.blob[774], 0x1F);
  EXPECT_EQ(m.blob[775], 0x21);
  const std::vector<float> w = dequantized(m);
  EXPECT_EQ(w[9 * 128 + 18], 1.1802520751953125f);
  EXPECT_EQ(w[9 * 128 + 19], 6.1813201904296875f);
  EXPECT_EQ(w[9 * 128 + 0], -201.52304077148438f);
  EXPECT_EQ(act_weight(m, DType::kFP16, 9 * 128 + 19), 0x462E);
  EXPECT_EQ(act_weight(m, DType::kBF16, 9 * 128 + 19), 0x40C6);
  EXPECT_EQ(act_weight(m, DType::kFP16, 9 * 128 + 18), 0x3CB9);
  EXPECT_EQ(act_weight(m, DType::kBF16, 9 * 128 + 18), 0x3F97);
}

// §3.10: vq2, row 9's vector at columns 18, 19, 26, 27 (sub-tile 1, t = 1: lane 5, slot 3) has
// code 0x56 at byte 83: magnitude 6 (0x388B, 0x38A4, 0x3E22, 0x3E30), dimensions 0 and 2
// negative; times the scale 0x211F at bytes 518..519. With bf16 activations both factors are
// rounded to bf16 first: the fourth weight differs from the bf16 of the exact value.
TEST(CpuRefWorkedExample, VectorCodesScaleTheirMagnitudesWithTheirSigns) {
  std::mt19937 rng(7);
  LogicalMatrix l = random_logical(parse_format("vq2"), 16, 128, rng);
  l.codes[9 * 128 + 18] = 0x56;
  l.scales[9] = 0x211F;
  const PackedMatrix m = packed(l);
  EXPECT_EQ(m.layout.tile_bytes, 512);
  EXPECT_EQ(m.layout.scales_offset, 512);
  EXPECT_EQ(m.layout.zeros_bytes, 0);
  EXPECT_EQ(m.layout.total_bytes, 768);
  EXPECT_EQ(m.blob[83], 0x56);
  EXPECT_EQ(m.blob[518], 0x1F);
  EXPECT_EQ(m.blob[519], 0x21);
  const std::vector<float> w = dequantized(m);
  const int cols[4] = {18, 19, 26, 27};
  const float value[4] = {-0.0056799240410327911f, 0.0058020204305648804f, -0.015335306525230408f,
                          0.015472054481506348f};
  const uint16_t fp16[4] = {0x9DD1, 0x1DF1, 0xA3DA, 0x23EC};
  const uint16_t bf16[4] = {0xBBBA, 0x3BBE, 0xBC7B, 0x3C7E};
  for (int d = 0; d < 4; ++d) {
    SCOPED_TRACE(d);
    const size_t at = static_cast<size_t>(9 * 128 + cols[d]);
    EXPECT_EQ(w[at], value[d]);
    EXPECT_EQ(act_weight(m, DType::kFP16, at), fp16[d]);
    EXPECT_EQ(act_weight(m, DType::kBF16, at), bf16[d]);
  }
  // The byte reaches exactly its vector's four weights.
  PackedMatrix other = m;
  other.blob[83] = 0x57;
  const std::vector<float> w2 = dequantized(other);
  std::vector<int64_t> changed;
  for (int64_t i = 0; i < 16 * 128; ++i)
    if (float_bits(w2[i]) != float_bits(w[i])) changed.push_back(i);
  EXPECT_EQ(changed,
            (std::vector<int64_t>{9 * 128 + 18, 9 * 128 + 19, 9 * 128 + 26, 9 * 128 + 27}));
}

// §2.2's planes for the other code widths: weight (9, 18)'s vector (lane 5, slot 3) with every
// code bit set sits in plane 0 at byte 41 high nibble (vq1.5: 4 bits, 8 bytes a lane) or byte 83
// (8 bits, 16 bytes a lane) and in plane 1 at byte 276 bits 6-7 (vq1.5: 2 bits at 256 + 4 lane),
// 532 bits 6-7 (vq2.5: at 512 + 4 lane) or 553 high nibble (vq3: 4 bits at 512 + 8 lane); no
// other code byte is set; the four weights are the largest index's magnitudes, all negative.
TEST(CpuRefWorkedExample, TwoPlaneVectorCodesSitWhereTheSpecSays) {
  struct Case {
    const char* format;
    std::vector<std::pair<int, int>> bytes;  // (blob byte, value)
  };
  const Case cases[] = {{"vq1.5", {{41, 0xF0}, {276, 0xC0}}},
                        {"vq2.5", {{83, 0xFF}, {532, 0xC0}}},
                        {"vq3", {{83, 0xFF}, {553, 0xF0}}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    const FormatSpec f = parse_format(c.format);
    LogicalMatrix l = LogicalMatrix::sized(f, 16, 128);
    l.codes[9 * 128 + 18] = static_cast<uint16_t>(f.code_limit() - 1);
    for (uint16_t& s : l.scales) s = 0x3C00;
    const PackedMatrix m = packed(l);
    for (int64_t b = 0; b < m.layout.codes_bytes; ++b) {
      int want = 0;
      for (const auto& [byte, value] : c.bytes)
        if (byte == b) want = value;
      EXPECT_EQ(m.blob[static_cast<size_t>(b)], want) << "byte " << b;
    }
    const std::vector<float> w = dequantized(m);
    const std::vector<float> want = decoded(l);
    for (int col : {18, 19, 26, 27}) {
      EXPECT_LT(w[9 * 128 + col], 0.0f) << col;
      EXPECT_EQ(w[9 * 128 + col], want[9 * 128 + col]) << col;
    }
  }
}

// ---- hand-placed codes (docs/formats.md §2.3-2.4) -----------------------------------------

TEST(CpuRefLayout, HandPlacedCodeBitsDecodeAtTheirOwnPositionOnly) {
  std::mt19937 rng(11);
  for (const SpecExample& ex : spec_examples()) {
    SCOPED_TRACE(std::string(ex.format) + " at (" + std::to_string(ex.row) + ", " +
                 std::to_string(ex.col) + ")");
    const FormatSpec f = parse_format(ex.format);
    PackedMatrix m = example_blob(ex, 0x3C00, 0, rng);  // s = 1, z = 0: w = q - z
    // LUT: row 9's table T[9][q] = q, so that w = q as well.
    for (int q = 0; q < f.lut_entries(); ++q)
      put_fp16(&m, m.layout.scales_offset + 2 * (ex.row * f.lut_entries() + q),
               float_to_fp16(static_cast<float>(q)));
    // Two codes differing in every bit: for dense, 1.5 and its complement (-2.984375 in bf16,
    // -2.998046875 in fp16); for int, 0101... and 1010..., decoded with s = 1.
    const bool dense = f.kind == FormatKind::kDense;
    const bool bf16 = f.dense_dtype == DType::kBF16;
    const uint32_t mask = (1u << f.bits) - 1u;
    const uint32_t code_a = dense ? (bf16 ? 0x3FC0u : 0x3E00u) : 0x5555u & mask;
    const uint32_t code_b = ~code_a & mask;
    const float z = dense || !f.symmetric ? 0.0f : static_cast<float>(1 << (f.bits - 1));
    const float value_a = dense ? 1.5f : static_cast<float>(code_a) - z;
    const float value_b =
        dense ? (bf16 ? -2.984375f : -2.998046875f) : static_cast<float>(code_b) - z;
    put_code(&m, ex.code_bits, code_a);
    const std::vector<float> wa = dequantized(m);
    put_code(&m, ex.code_bits, code_b);
    const std::vector<float> wb = dequantized(m);
    ASSERT_EQ(static_cast<int64_t>(wa.size()), ex.n * ex.k);
    ASSERT_EQ(wb.size(), wa.size());
    const size_t at = static_cast<size_t>(ex.row * ex.k + ex.col);
    EXPECT_EQ(wa[at], value_a);
    EXPECT_EQ(wb[at], value_b);
    for (size_t i = 0; i < wa.size(); ++i) {
      if (i == at) continue;
      ASSERT_EQ(float_bits(wa[i]), float_bits(wb[i])) << "weight " << i;
    }
  }
}

// ---- round trip through the encoder --------------------------------------------------------

TEST(CpuRefRoundTrip, EveryFormatDecodesPackedLogicalMatrixExactlyOnOddShapes) {
  std::mt19937 rng(2024);
  const int64_t ns[] = {1, 17, 33};
  const int64_t ks[] = {77, 96, 160, 192, 224, 384};
  int checked = 0;
  for (const FormatSpec& f : all_formats()) {
    for (int64_t n : ns) {
      for (int64_t k : ks) {
        if (k % f.group_len(k) != 0) continue;
        SCOPED_TRACE(shape_name(f, n, k));
        const LogicalMatrix l = random_logical(f, n, k, rng);
        PackedMatrix p;
        const Status st = pack(l, &p);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        const std::vector<float> expect = decoded(l);
        const std::vector<float> expect_bf16 = decoded(l, /*bf16_scales=*/true);
        const std::vector<float> got = dequantized(p);
        ASSERT_EQ(got.size(), expect.size());
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(float_bits(got[i]), float_bits(expect[i]))
              << "row " << i / static_cast<size_t>(k) << " col " << i % static_cast<size_t>(k);
        for (DType act : {DType::kBF16, DType::kFP16}) {
          std::vector<uint16_t> rounded;
          ASSERT_TRUE(ref::dequantize_to(p, act, &rounded).is_ok());
          ASSERT_EQ(rounded.size(), expect.size());
          const bool verbatim = f.kind == FormatKind::kDense && f.dense_dtype == act;
          for (size_t i = 0; i < rounded.size(); ++i) {
            const uint16_t want = verbatim              ? l.codes[i]
                                  : act == DType::kBF16 ? float_to_bf16(expect_bf16[i])
                                                        : float_to_fp16(expect[i]);
            ASSERT_EQ(rounded[i], want) << dtype_name(act) << " weight " << i;
          }
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// ---- grouped GEMM ----------------------------------------------------------------------

ExpertBank random_bank(const std::vector<std::string>& formats, int64_t n, int64_t k,
                       std::mt19937& rng) {
  return test::bank_of(formats,
                       [&](const FormatSpec& f) { return packed(moderate_logical(f, n, k, rng)); });
}

std::vector<int32_t> offsets_from_counts(const std::vector<int32_t>& counts) {
  std::vector<int32_t> offsets(1, 0);
  for (int32_t c : counts) offsets.push_back(offsets.back() + c);
  return offsets;
}

// y from ref::grouped_gemm against a plain triple loop over the act-rounded weights.
void expect_gemm_matches_naive_loop(const ExpertBank& bank, DType act,
                                    const std::vector<int32_t>& counts, std::mt19937& rng) {
  const std::vector<int32_t> offsets = offsets_from_counts(counts);
  const int64_t m = offsets.back(), n = bank.n(), k = bank.k();
  const std::vector<uint16_t> x = random_activations(act, m * k, 2.0f, rng);
  std::vector<double> y = {-1.0};
  const Status st = ref::grouped_gemm(bank, act, x.data(), m, offsets.data(), &y);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(static_cast<int64_t>(y.size()), m * n);
  for (int64_t e = 0; e < bank.num_experts(); ++e) {
    std::vector<uint16_t> w;
    ASSERT_TRUE(ref::dequantize_to(bank.expert(e), act, &w).is_ok());
    for (int64_t i = offsets[static_cast<size_t>(e)]; i < offsets[static_cast<size_t>(e) + 1];
         ++i) {
      for (int64_t c = 0; c < n; ++c) {
        double sum = 0.0, magnitude = 0.0;
        for (int64_t kk = 0; kk < k; ++kk) {
          const double p = act_value(act, x[static_cast<size_t>(i * k + kk)]) *
                           act_value(act, w[static_cast<size_t>(c * k + kk)]);
          sum += p;
          magnitude += std::fabs(p);
        }
        const double got = y[static_cast<size_t>(i * n + c)];
        ASSERT_TRUE(std::isfinite(got));
        // Only the order of float64 additions may differ: a few ulps of sum |x w|.
        ASSERT_NEAR(got, sum, 1e-13 * magnitude) << "expert " << e << " row " << i << " col " << c;
      }
    }
  }
}

TEST(CpuRefGroupedGemm, MixedFormatBankWithEmptyExpertsMatchesNaiveLoop) {
  std::mt19937 rng(7);
  const ExpertBank bank = random_bank(
      {"int4:g32", "int3:g32:sym", "int2:pc", "bf16", "int8:g32", "fp16", "int3:pc"}, 33, 96, rng);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    SCOPED_TRACE(dtype_name(act));
    expect_gemm_matches_naive_loop(bank, act, {5, 0, 17, 1, 0, 9, 3}, rng);
  }
}

TEST(CpuRefGroupedGemm, AllTokensOnOneExpertWithOddDimsMatchesNaiveLoop) {
  std::mt19937 rng(8);
  const ExpertBank bank = random_bank({"int4:pc", "fp16", "int3:pc:sym", "bf16"}, 17, 77, rng);
  for (DType act : {DType::kBF16, DType::kFP16}) {
    SCOPED_TRACE(dtype_name(act));
    expect_gemm_matches_naive_loop(bank, act, {0, 0, 45, 0}, rng);
  }
}

TEST(CpuRefGroupedGemm, ManyRowsAcrossBlocksMatchNaiveLoop) {
  std::mt19937 rng(9);
  const ExpertBank bank = random_bank({"int4:g128", "int2:g64:sym"}, 300, 384, rng);
  expect_gemm_matches_naive_loop(bank, DType::kBF16, {37, 70}, rng);
}

TEST(CpuRefGroupedGemm, NoTokensGivesEmptyOutput) {
  std::mt19937 rng(10);
  const ExpertBank bank = random_bank({"int4:g32", "bf16"}, 17, 96, rng);
  const int32_t offsets[] = {0, 0, 0};
  std::vector<double> y = {1.0, 2.0};
  ASSERT_TRUE(ref::grouped_gemm(bank, DType::kBF16, nullptr, 0, offsets, &y).is_ok());
  EXPECT_TRUE(y.empty());
}

// ---- bad inputs: kInvalidArgument, output untouched ------------------------------------------

TEST(CpuRefBadInput, GroupedGemmRejectsBadOffsetsAndNullPointersWithoutWriting) {
  std::mt19937 rng(12);
  const ExpertBank bank = random_bank({"int4:g32", "int3:pc", "bf16"}, 17, 96, rng);
  const int64_t m = 8;
  const std::vector<uint16_t> x = random_activations(DType::kBF16, m * bank.k(), 2.0f, rng);
  const std::vector<double> sentinel = {4.5, -3.25};
  struct Case {
    const char* what;
    std::vector<int32_t> offsets;
    bool null_x;
  };
  const Case cases[] = {
      {"decreasing", {0, 5, 3, 8}, false},     {"last != m", {0, 3, 5, 7}, false},
      {"last > m", {0, 3, 5, 9}, false},       {"negative first", {-1, 3, 5, 8}, false},
      {"positive first", {1, 3, 5, 8}, false}, {"null x", {0, 3, 5, 8}, true},
  };
  for (const Case& c : cases) {
    std::vector<double> y = sentinel;
    const Status st = ref::grouped_gemm(bank, DType::kBF16, c.null_x ? nullptr : x.data(), m,
                                        c.offsets.data(), &y);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_EQ(y, sentinel) << c.what;
  }
  const int32_t good[] = {0, 3, 5, 8};
  std::vector<double> y = sentinel;
  EXPECT_EQ(ref::grouped_gemm(bank, DType::kBF16, x.data(), m, nullptr, &y).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::grouped_gemm(bank, DType::kBF16, x.data(), -1, good, &y).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ref::grouped_gemm(bank, static_cast<DType>(7), x.data(), m, good, &y).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(y, sentinel);
  EXPECT_EQ(ref::grouped_gemm(bank, DType::kBF16, x.data(), m, good, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ref::grouped_gemm(bank, DType::kBF16, x.data(), m, good, &y).is_ok());
}

TEST(CpuRefBadInput, GroupedGemmRejectsCorruptExpertWithoutWriting) {
  std::mt19937 rng(13);
  std::vector<PackedMatrix> experts;
  for (const char* format : {"int4:g32", "int8:pc"})
    experts.push_back(packed(random_logical(parse_format(format), 17, 96, rng)));
  put_fp16(&experts[1], scale_byte(experts[1], 5, 0), 0x7C00);  // +inf scale, row 5
  ExpertBank bank;
  ASSERT_TRUE(ExpertBank::create(std::move(experts), &bank).is_ok());
  const std::vector<uint16_t> x = random_activations(DType::kFP16, 4 * 96, 2.0f, rng);
  const int32_t offsets[] = {0, 4, 4};  // the corrupt expert has no tokens: still an error
  std::vector<double> y = {7.0};
  const Status st = ref::grouped_gemm(bank, DType::kFP16, x.data(), 4, offsets, &y);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 1: ref: scale of row 5, group 0 is not finite"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(y, std::vector<double>{7.0});
}

// Rejected by dequantize and dequantize_to with kInvalidArgument and a message holding
// `reason`, both outputs untouched.
void expect_rejected(const PackedMatrix& m, const std::string& reason) {
  const std::vector<float> sentinel = {1.0f, 2.0f, 3.0f};
  const std::vector<uint16_t> sentinel_bits = {9, 8};
  std::vector<float> w = sentinel;
  std::vector<uint16_t> bits = sentinel_bits;
  const Status st = ref::dequantize(m, &w);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << reason;
  EXPECT_NE(st.message().find(reason), std::string::npos) << st.message();
  EXPECT_EQ(ref::dequantize_to(m, DType::kBF16, &bits).code(), StatusCode::kInvalidArgument)
      << reason;
  EXPECT_EQ(w, sentinel) << reason;
  EXPECT_EQ(bits, sentinel_bits) << reason;
}

// int3:g64 [33, 192]: rows 33..47 are padded rows, columns 192..255 (group 3) padded groups.
PackedMatrix valid_int3_33x192(std::mt19937& rng) {
  PackedMatrix m = packed(random_logical(parse_format("int3:g64"), 33, 192, rng));
  std::vector<float> w;
  EXPECT_TRUE(ref::dequantize(m, &w).is_ok());
  return m;
}

TEST(CpuRefBadInput, DequantizeRejectsBlobAndLayoutMismatchWithoutWriting) {
  std::mt19937 rng(14);
  const PackedMatrix good = valid_int3_33x192(rng);
  PackedMatrix m = good;
  m.blob.pop_back();
  expect_rejected(m, "blob holds 5375 bytes");
  m = good;
  m.blob.push_back(0);
  expect_rejected(m, "blob holds 5377 bytes");
  m = good;
  m.layout.zeros_offset += kSectionAlign;
  m.layout.total_bytes += kSectionAlign;
  m.blob.resize(static_cast<size_t>(m.layout.total_bytes));
  expect_rejected(m, "zeros_offset");
  m = good;
  m.layout.n_pad = 64;
  expect_rejected(m, "n_pad");
  m = good;
  m.format.bits = 5;
  expect_rejected(m, "bits must be 2, 3, 4 or 8");
  m = good;
  m.layout.k = 128;  // k disagrees with k_pad and the section sizes
  expect_rejected(m, "k_pad");
  m = good;
  put_fp16(&m, scale_byte(m, 32, 2), 0x7E00);  // NaN
  expect_rejected(m, "scale of row 32, group 2 is not finite");
  m = good;
  m.blob[static_cast<size_t>(zero_byte(m, 1, 1))] = 8;
  expect_rejected(m, "zero of row 1, group 1 is 8");
  // A byte outside every section (a gap or the tail) that is not 0 (§2); the first such byte.
  const PackedLayout& L = good.layout;
  int64_t outside = -1;
  for (int64_t b = 0; b < L.total_bytes && outside < 0; ++b) {
    const auto in = [&](int64_t offset, int64_t bytes) {
      return b >= offset && b < offset + bytes;
    };
    if (!in(L.codes_offset, L.codes_bytes) && !in(L.scales_offset, L.scales_bytes) &&
        !in(L.zeros_offset, L.zeros_bytes))
      outside = b;
  }
  ASSERT_GE(outside, 0) << "the case has no gap or tail byte";
  m = good;
  m.blob[static_cast<size_t>(outside)] = 1;
  expect_rejected(m, "byte " + std::to_string(outside) + " lies outside every section");
  // Fields an int format does not use keep their defaults (qmoe/format.hpp).
  m = good;
  m.format.dense_dtype = DType::kFP16;
  expect_rejected(m, "int formats need the default dtype");

  std::vector<uint16_t> bits = {9, 8};
  EXPECT_EQ(ref::dequantize_to(good, static_cast<DType>(3), &bits).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(bits, (std::vector<uint16_t>{9, 8}));
  EXPECT_EQ(ref::dequantize(good, nullptr).code(), StatusCode::kInvalidArgument);
}

// The offsets of sections a format lacks follow §2's rule like the others (the library's
// layout check holds them to it), and groups_pad is 0 for dense and LUT formats: a layout that
// moves either is refused, though nothing is read there.
TEST(CpuRefBadInput, DequantizeRejectsTheFieldsOfAbsentSectionsMoved) {
  std::mt19937 rng(15);
  struct Case {
    const char* format;
    int64_t PackedLayout::*field;
    int64_t by;
    const char* reason;
  };
  const Case cases[] = {
      {"int4:g64:sym", &PackedLayout::zeros_offset, kSectionAlign, "zeros_offset"},
      {"tcq3", &PackedLayout::zeros_offset, -kSectionAlign, "zeros_offset"},
      {"nuq3", &PackedLayout::groups_pad, 1, "groups_pad"},
      {"bf16", &PackedLayout::scales_offset, kSectionAlign, "scales_offset"},
      {"bf16", &PackedLayout::zeros_offset, -kSectionAlign, "zeros_offset"},
      {"fp16", &PackedLayout::groups_pad, 1, "groups_pad"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    PackedMatrix m = packed(random_logical(parse_format(c.format), 48, 256, rng));
    std::vector<uint16_t> bits;
    const Status valid = ref::dequantize_to(m, DType::kBF16, &bits);
    ASSERT_TRUE(valid.is_ok()) << valid.message();
    m.layout.*c.field += c.by;
    expect_rejected(m, c.reason);
  }
}

// values_per_state is read before anything divides by it: 2 or 4 on a LUT, int or dense format,
// anything but 4 on a vector format, 0 or 3 anywhere, or 2 with tcq2's 2 bits a step, is a bad
// format, not a layout.
TEST(CpuRefBadInput, ValuesPerStateOutsideTrellisFormatsIsRejected) {
  std::mt19937 rng(16);
  for (const char* text : {"nuq3", "bf16", "int4:g128", "tcq2", "vq2", "vq3"}) {
    for (int v : {0, 1, 2, 3, 4}) {
      PackedMatrix m = packed(random_logical(parse_format(text), 16, 128, rng));
      if (v == m.format.values_per_state) continue;
      m.format.values_per_state = v;
      SCOPED_TRACE(std::string(text) + " V = " + std::to_string(v));
      std::vector<float> w = {7.0f};
      EXPECT_EQ(ref::dequantize(m, &w).code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(w, std::vector<float>{7.0f});
    }
  }
}

// §2.1 for vector formats: a padded row's scales and codes (every plane) are 0, and the reference
// names the first that is not. vq2 [17, 256]: row 20 is row 4 of strip 1; its vector at column 130
// (tile 3, sub-tile 0, t = 1: lane 17, slot 0) has its code at byte 3 * 512 + 16 * 17 = 1808.
TEST(CpuRefBadInput, VectorPaddingRowsMustBeZero) {
  std::mt19937 rng(17);
  const PackedMatrix good = packed(random_logical(parse_format("vq2"), 17, 256, rng));
  std::vector<float> w;
  ASSERT_TRUE(ref::dequantize(good, &w).is_ok());
  PackedMatrix m = good;
  m.blob[1808] = 1;
  expect_rejected(m, "code of padded row 20, column 130 is 1");
  m = good;
  put_fp16(&m, scale_byte(m, 20, 1), 0x3C00);
  expect_rejected(m, "scale of row 20, block 1 (padding) is 0x3C00");
  m = good;
  put_fp16(&m, scale_byte(m, 3, 1), 0xFC00);  // -inf on a real row
  expect_rejected(m, "scale of row 3, block 1 is not finite");
  // vq3: the same vector's second plane (its sign nibble) is tile 3's byte 512 + 8 * 17, low
  // nibble; the reference and unpack both refuse a bit there.
  PackedMatrix vq3 = packed(random_logical(parse_format("vq3"), 17, 256, rng));
  vq3.blob[static_cast<size_t>(3 * 768 + 512 + 8 * 17)] = 1;
  expect_rejected(vq3, "code of padded row 20, column 130 is 256");
  LogicalMatrix back;
  EXPECT_EQ(unpack(vq3, &back).code(), StatusCode::kInvalidArgument);
}

// §2.1: padding decodes to exactly 0. A kernel multiplies whole tiles, so a NaN scale in a
// padded group would reach real outputs through 0 * NaN; the reference refuses such blobs.
TEST(CpuRefBadInput, PaddingThatDoesNotDecodeToZeroIsRejectedWithItsPosition) {
  std::mt19937 rng(15);
  const PackedMatrix good = valid_int3_33x192(rng);
  const PackedLayout& L = good.layout;
  PackedMatrix m = good;
  put_fp16(&m, scale_byte(m, 40, 0), 0x7E00);  // NaN
  expect_rejected(m, "scale of padded row 40, group 0 is 0x7E00");
  m = good;
  put_fp16(&m, scale_byte(m, 1, 3), 0x8000);  // -0.0
  expect_rejected(m, "scale of padded row 1, group 3 is 0x8000");
  m = good;
  m.blob[static_cast<size_t>(zero_byte(m, 40, 0))] = 2;
  expect_rejected(m, "zero of padded row 40, group 0 is 2");
  // (1, 200): tile 1 (at byte 768), sub-tile 4, lane 4, element 4, pair 18; plane 0 word 2
  // slot 2, so bits 4..5 of tile byte 72.
  m = good;
  put_code(&m, {{768 + 72, 4, 2}}, 1);
  expect_rejected(m, "padded code at row 1, column 200 (group 3) is 1");
  // The last code byte: plane 1 of the last tile, lane 31's word 1, bit 31 = (47, 255).
  m = good;
  m.blob[static_cast<size_t>(L.codes_bytes - 1)] |= 0x80u;
  expect_rejected(m, "padded code at row 47, column 255 (group 3) is 4");
  // Dense fp16 [17, 96]: padded row 17 is row 1 of tile 1 (at byte 4096); (17, 0) is lane 4's
  // first code, at tile byte 4 * 16.
  m = packed(random_logical(parse_format("fp16"), 17, 96, rng));
  std::vector<float> w;
  ASSERT_TRUE(ref::dequantize(m, &w).is_ok());
  put_fp16(&m, 4096 + 64, 0x3C00);
  expect_rejected(m, "padded code at row 17, column 0 is 0x3C00");
  // nuq3 [33, 192]: the planes (and code positions) of int3; tables row-major, 8 entries a row.
  const PackedMatrix lut = packed(random_logical(parse_format("nuq3"), 33, 192, rng));
  ASSERT_TRUE(ref::dequantize(lut, &w).is_ok());
  const int64_t tables = lut.layout.scales_offset;
  m = lut;
  put_fp16(&m, tables + 2 * (40 * 8 + 5), 0x3C00);
  expect_rejected(m, "table entry 5 of row 40 (a padded row) is 0x3C00, must be 0");
  m = lut;
  put_fp16(&m, tables + 2 * (3 * 8 + 0), 0x7E00);
  expect_rejected(m, "table entry 0 of row 3 is not finite (0x7E00)");
  m = lut;
  put_code(&m, {{768 + 72, 4, 2}}, 1);
  expect_rejected(m, "padded code at row 1, column 200 is 1, must be 0");
  // tcq3 [33, 256]: row 40 is row 8 of strip 2, whose block 1 is tile 5 (768 B each); its
  // stream starts 8 * 48 bytes into the tile.
  const PackedMatrix tcq = packed(random_logical(parse_format("tcq3"), 33, 256, rng));
  ASSERT_TRUE(ref::dequantize(tcq, &w).is_ok());
  m = tcq;
  m.blob[static_cast<size_t>(5 * 768 + 8 * 48)] = 1;
  expect_rejected(m, "code bit 0 of padded row 40, block 1 is 1, must be 0");
  m = tcq;
  put_fp16(&m, scale_byte(m, 40, 0), 0x3C00);
  expect_rejected(m, "scale of row 40, block 0 (padding) is 0x3C00, must be 0");
  m = tcq;
  put_fp16(&m, scale_byte(m, 3, 1), 0x7E00);
  expect_rejected(m, "scale of row 3, block 1 is not finite (0x7E00)");
}

// An output of (2^31 - 1) x 2^15 doubles (2^49 bytes) exceeds every 48-bit address space, so
// its allocation fails at once, before anything is read.
TEST(CpuRefOutOfMemory, GroupedGemmReportsAnUnallocatableOutputAsOutOfRange) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitizer allocators abort on oversized requests instead of throwing";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
  GTEST_SKIP() << "sanitizer allocators abort on oversized requests instead of throwing";
#endif
#endif
  std::mt19937 rng(16);
  const int64_t n = int64_t{1} << 15;
  std::vector<PackedMatrix> experts;
  experts.push_back(packed(moderate_logical(parse_format("int2:pc"), n, 1, rng)));
  ExpertBank bank;
  ASSERT_TRUE(ExpertBank::create(std::move(experts), &bank).is_ok());
  const int32_t m = std::numeric_limits<int32_t>::max();
  const int32_t offsets[] = {0, m};
  const uint16_t x[1] = {0x3F80};  // never read: the output allocation fails first
  std::vector<double> y = {7.0};
  const Status st = ref::grouped_gemm(bank, DType::kBF16, x, m, offsets, &y);
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.to_string();
  EXPECT_NE(st.message().find("ref::grouped_gemm: out of memory"), std::string::npos)
      << st.message();
  EXPECT_EQ(y, std::vector<double>{7.0});
}

// ---- 16-bit round to nearest even ----------------------------------------------------------

// Binary16 / bfloat16 parameters: explicit mantissa bits, min normal and max exponent.
struct Fp16Like {
  int mantissa_bits, min_exp, max_exp;
};
constexpr Fp16Like kHalf = {10, -14, 15};
constexpr Fp16Like kBfloat = {7, -126, 127};

// RNE of a finite float to the format, in long double: scale |f| to an integer multiple of
// the format's quantum at its binade, round with nearbyintl (ties to even in the default
// rounding mode), scale back; beyond the largest finite value is infinity.
long double round_long_double(float f, const Fp16Like& t) {
  const long double a = std::fabs(static_cast<long double>(f));
  if (a == 0.0L) return f;
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e with m in [0.5, 1): the binade exponent is e - 1
  const int exponent = std::max(e - 1, t.min_exp);
  const long double quantum = std::ldexp(1.0L, exponent - t.mantissa_bits);
  long double r = std::nearbyint(a / quantum) * quantum;
  const long double max_finite = std::ldexp(2.0L - std::ldexp(1.0L, -t.mantissa_bits), t.max_exp);
  if (r > max_finite) r = std::numeric_limits<long double>::infinity();
  return f < 0 ? -r : r;
}

uint16_t encode_half(long double v) {
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  const long double a = std::fabs(v);
  if (std::isinf(a)) return static_cast<uint16_t>(sign | 0x7C00);
  if (a < std::ldexp(1.0L, -14))  // subnormal: a whole number of 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::ldexp(a, 24)));
  int e = 0;
  std::frexp(a, &e);
  const auto mantissa = static_cast<uint16_t>(std::ldexp(a, 11 - e) - 1024.0L);
  return static_cast<uint16_t>(sign | (e - 1 + 15) << 10 | mantissa);
}

uint16_t encode_bfloat(long double v) {
  // Every bfloat16 value is a float: its top 16 bits are the pattern.
  return static_cast<uint16_t>(float_bits(static_cast<float>(v)) >> 16);
}

// fp16 value from its fields, with ldexp (independent of numeric.hpp's bit assembly).
long double half_value(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  long double v;
  if (exponent == 0)
    v = std::ldexp(static_cast<long double>(mantissa), -24);
  else if (exponent == 31)
    v = mantissa == 0 ? std::numeric_limits<long double>::infinity()
                      : std::numeric_limits<long double>::quiet_NaN();
  else
    v = std::ldexp(static_cast<long double>(1024 + mantissa), exponent - 25);
  return (h & 0x8000) ? -v : v;
}

bool is_half_nan(uint16_t h) {
  return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
}
bool is_bfloat_nan(uint16_t h) {
  return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
}

TEST(CpuRefRounding, EveryFp16PatternWidensExactlyAndRoundsBackToItself) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float f = fp16_to_float(bits);
    const uint16_t back = float_to_fp16(f);
    if (is_half_nan(bits)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(is_half_nan(back)) << std::hex << h;
      ASSERT_EQ(back & 0x8000, bits & 0x8000) << std::hex << h;
      continue;
    }
    ASSERT_EQ(static_cast<long double>(f), half_value(bits)) << std::hex << h;
    ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;
    ASSERT_EQ(back, bits) << std::hex << h;
  }
}

TEST(CpuRefRounding, Fp16MidpointsRoundToEvenAndNeighboursToNearest) {
  for (uint16_t h = 0; h < 0x7C00; ++h) {  // every finite non-negative half, its successor
    const long double lo = half_value(h);
    const long double hi = h == 0x7BFF ? 65536.0L : half_value(static_cast<uint16_t>(h + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);
    ASSERT_EQ(static_cast<long double>(mid), (lo + hi) / 2) << "midpoint not a float";
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;  // 0x7BFF -> 0x7C00 = inf
    for (float sign : {1.0f, -1.0f}) {
      const auto s = static_cast<uint16_t>(sign < 0 ? 0x8000 : 0);
      ASSERT_EQ(float_to_fp16(sign * mid), s | even) << std::hex << h;
      ASSERT_EQ(float_to_fp16(sign * std::nextafter(mid, 0.0f)), s | h) << std::hex << h;
      ASSERT_EQ(float_to_fp16(sign * std::nextafter(mid, 1e30f)), s | (h + 1)) << std::hex << h;
    }
  }
  EXPECT_EQ(float_to_fp16(1e30f), 0x7C00);
  EXPECT_EQ(float_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -26)), 0x0000);  // below half the least subnormal
  EXPECT_EQ(float_to_fp16(-std::ldexp(1.0f, -26)), 0x8000);
}

TEST(CpuRefRounding, RandomFloatsRoundLikeLongDoubleArithmetic) {
  std::mt19937 rng(99);
  int fp16_checked = 0, bf16_checked = 0;
  for (int i = 0; i < 20000; ++i) {
    // fp16: exponents around the half range (subnormal to overflow), random mantissa.
    const uint32_t exponent = 127 - 28 + rng() % 46;
    const float f = bits_float((rng() & 0x80000000u) | exponent << 23 | (rng() & 0x7fffffu));
    ASSERT_EQ(float_to_fp16(f), encode_half(round_long_double(f, kHalf))) << f;
    ++fp16_checked;
    // bf16: any non-NaN pattern; every fourth an exact tie (low 16 bits 0x8000).
    uint32_t u = rng();
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;
    const float g = bits_float(u);
    if (std::isnan(g)) continue;
    if (std::isinf(g)) {
      ASSERT_EQ(float_to_bf16(g), static_cast<uint16_t>(u >> 16));
      continue;
    }
    ASSERT_EQ(float_to_bf16(g), encode_bfloat(round_long_double(g, kBfloat))) << std::hex << u;
    ++bf16_checked;
  }
  EXPECT_GT(bf16_checked, 19000);
  // Edges: float subnormals, ties at zero, the overflow boundary.
  for (uint32_t u : {0x00000001u, 0x00008000u, 0x00018000u, 0x007fffffu, 0x80008001u, 0x7f7f7fffu,
                     0x7f7f8000u, 0x7f7fffffu, 0xff7f8000u, 0x3f808000u, 0x3f818000u}) {
    const float g = bits_float(u);
    EXPECT_EQ(float_to_bf16(g), encode_bfloat(round_long_double(g, kBfloat))) << std::hex << u;
  }
  EXPECT_EQ(fp16_checked, 20000);
}

TEST(CpuRefRounding, Bf16PatternsRoundTripAndNaNStaysNaNWithItsSign) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const uint16_t back = float_to_bf16(bf16_to_float(bits));
    if (is_bfloat_nan(bits)) {
      ASSERT_TRUE(is_bfloat_nan(back)) << std::hex << h;
      ASSERT_EQ(back & 0x8000, bits & 0x8000) << std::hex << h;
    } else {
      ASSERT_EQ(back, bits) << std::hex << h;
    }
  }
  // NaNs whose payload sits only in the low 16 bits must not collapse to infinity.
  for (uint32_t u : {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7f80ffffu, 0xffffffffu}) {
    EXPECT_TRUE(is_bfloat_nan(float_to_bf16(bits_float(u)))) << std::hex << u;
    EXPECT_EQ(float_to_bf16(bits_float(u)) & 0x8000, (u >> 16) & 0x8000) << std::hex << u;
    EXPECT_TRUE(is_half_nan(float_to_fp16(bits_float(u)))) << std::hex << u;
    EXPECT_EQ(float_to_fp16(bits_float(u)) & 0x8000, (u >> 16) & 0x8000) << std::hex << u;
  }
}

}  // namespace
}  // namespace qmoe
