// FormatSpec: string round trips, rejected strings, exact bits/weight and packed layout sizes
// (docs/formats.md §1-2).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "qmoe/format.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::parse_format;
using test::shape_name;

TEST(FormatParse, EveryRegisteredFormatRoundTripsThroughItsString) {
  ASSERT_EQ(all_formats().size(), 2u + 4u * 4u * 2u + 3u + 6u + 4u);
  for (const FormatSpec& f : all_formats()) {
    SCOPED_TRACE(f.to_string());
    EXPECT_TRUE(f.validate().is_ok());
    FormatSpec parsed;
    ASSERT_TRUE(FormatSpec::parse(f.to_string(), &parsed).is_ok());
    EXPECT_EQ(parsed, f);
    EXPECT_EQ(parsed.to_string(), f.to_string());
  }
}

TEST(FormatParse, CanonicalStringsNameTheExpectedParameters) {
  struct Case {
    const char* text;
    FormatSpec want;
    const char* canonical;
  };
  const Case cases[] = {
      {"bf16", FormatSpec::dense(DType::kBF16), "bf16"},
      {"fp16", FormatSpec::dense(DType::kFP16), "fp16"},
      {"int4:g128", FormatSpec::integer(4, 128, false), "int4:g128"},
      {"int4:g128:asym", FormatSpec::integer(4, 128, false), "int4:g128"},
      {"int3:g64:sym", FormatSpec::integer(3, 64, true), "int3:g64:sym"},
      {"int2:g32", FormatSpec::integer(2, 32, false), "int2:g32"},
      {"int8:pc", FormatSpec::integer(8, 0, false), "int8:pc"},
      {"int8:pc:sym", FormatSpec::integer(8, 0, true), "int8:pc:sym"},
      {"nuq2", FormatSpec::lut(2), "nuq2"},
      {"nuq3", FormatSpec::lut(3), "nuq3"},
      {"nuq4", FormatSpec::lut(4), "nuq4"},
      {"tcq2", FormatSpec::trellis(2), "tcq2"},
      {"tcq4", FormatSpec::trellis(4), "tcq4"},
      {"tcq1.5", FormatSpec::trellis(3, 2), "tcq1.5"},
      {"tcq3.5", FormatSpec::trellis(7, 2), "tcq3.5"},
      {"vq1.5", FormatSpec::vector(6), "vq1.5"},
      {"vq2", FormatSpec::vector(8), "vq2"},
      {"vq2.5", FormatSpec::vector(10), "vq2.5"},
      {"vq3", FormatSpec::vector(12), "vq3"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    FormatSpec f;
    ASSERT_TRUE(FormatSpec::parse(c.text, &f).is_ok());
    EXPECT_EQ(f, c.want);
    EXPECT_EQ(f.to_string(), c.canonical);
  }
}

TEST(FormatParse, MalformedStringsAreInvalidArgumentAndLeaveOutputUntouched) {
  const char* bad[] = {
      "",           "int4",       "int4:",      "int4:g",     "int4:g0",       "int5:g128",
      "int1:g128",  "int16:g128", "int4:g100",  "int4:g256",  "int4:g128:foo", "int4:g128:sym:asym",
      "INT4:g128",  "int4:G128",  "BF16",       "fp32",       "int:g128",      "int4:pc:",
      "int4:gx",    "int4:g-32",  "int4:g 128", " int4:g128", "int4:g128 ",    "int4::g128",
      "int-4:g128", "int4:pcsym", "nf4",        "bf16:g128",  "nuq",           "nuq1",
      "nuq5",       "nuq8",       "nuq4:g128",  "nuq4:sym",   "nuq4:pc",       "NUQ4",
      "nuq-4",      "nuq4 ",      "nuq 4",      "nuqx",       "tcq",           "tcq1",
      "tcq8",       "tcq2:g128",  "tcq2:sym",   "TCQ2",       "tcq2:l16",      "tcq 2",
      "int04:g128", "int4:g064",  "nuq04",      "tcq02",      "tcq0.5",        "tcq4.5",
      "tcq2.50",    "tcq2.",      "tcq.5",      "nuq2.5",     "tcq2.5:g128",   "tcq1.25",
      "vq",         "vq1",        "vq3.5",      "vq4",        "vq02",          "vq2:g128",
      "VQ2",        "vq0.5",      "vq 2",       "vq2 ",       "vq-2",          "vqx",
      "vq2.50",     "vq2.",       "vq.5",       "vq1.25",     "vq16",          "vq2.5:sym"};
  for (const char* text : bad) {
    SCOPED_TRACE(std::string("'") + text + "'");
    FormatSpec f = FormatSpec::integer(8, 32, true);
    const FormatSpec before = f;
    const Status st = FormatSpec::parse(text, &f);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(st.message().empty());
    EXPECT_EQ(f, before);
  }
  EXPECT_EQ(FormatSpec::parse("int4:g128", nullptr).code(), StatusCode::kInvalidArgument);
}

// values_per_state belongs to trellis formats (1 or 2) and vector formats (4) and is checked
// before anything divides by it: any other value, or any value but 1 on another kind, is
// rejected, and such a spec gets no layout.
TEST(FormatValidate, ValuesPerStateOutsideItsTrellisRangeIsRejected) {
  for (const FormatSpec& f : all_formats()) {
    for (int v : {0, 1, 2, 3, 4, -1}) {
      if (f.kind == FormatKind::kTrellis && v == 2) continue;
      FormatSpec g = f;
      g.values_per_state = f.kind == FormatKind::kTrellis && v == 2 ? 1 : v;
      if (g.values_per_state == f.values_per_state) continue;
      SCOPED_TRACE(f.to_string() + " with values_per_state " + std::to_string(g.values_per_state));
      const bool swap = g.kind == FormatKind::kTrellis && (g.bits == 3) &&
                        (g.values_per_state == 1 || g.values_per_state == 2);  // tcq3 <-> tcq1.5
      EXPECT_EQ(g.validate().is_ok(), swap);
      PackedLayout L;
      EXPECT_EQ(packed_layout(g, 16, 128, &L).is_ok(), swap);
    }
  }
  FormatSpec tcq = FormatSpec::trellis(3);
  tcq.values_per_state = 2;
  EXPECT_EQ(tcq, FormatSpec::trellis(3, 2));
  EXPECT_EQ(tcq.to_string(), "tcq1.5");
}

TEST(FormatValidate, UnsupportedParametersAreRejected) {
  EXPECT_FALSE(FormatSpec::integer(5, 128, false).validate().is_ok());
  EXPECT_FALSE(FormatSpec::integer(4, 96, false).validate().is_ok());
  EXPECT_FALSE(FormatSpec::integer(4, -32, false).validate().is_ok());
  FormatSpec dense = FormatSpec::dense(DType::kBF16);
  dense.bits = 8;
  EXPECT_FALSE(dense.validate().is_ok());
}

// Every field counts in ==, so validate() rejects specs whose unused fields are not at their
// defaults: among valid specs, printing the same string and comparing equal are the same thing.
TEST(FormatValidate, ValidSpecsAreEqualExactlyWhenTheyPrintTheSameString) {
  std::vector<FormatSpec> candidates;
  for (const FormatSpec& f : all_formats()) {
    candidates.push_back(f);
    FormatSpec other_dtype = f, grouped = f, sym = f;
    other_dtype.dense_dtype = f.dense_dtype == DType::kBF16 ? DType::kFP16 : DType::kBF16;
    grouped.group_size = f.group_size == 0 ? 64 : 0;
    sym.symmetric = !f.symmetric;
    candidates.insert(candidates.end(), {other_dtype, grouped, sym});
  }
  std::vector<FormatSpec> valid;
  for (const FormatSpec& f : candidates)
    if (f.validate().is_ok()) valid.push_back(f);
  // Rejected: dense with a group or :sym (2 each), int with an fp16 dense_dtype (1 each), LUT,
  // trellis and vector with any of the three (3 each).
  EXPECT_EQ(valid.size(), 4u * all_formats().size() - 2u * 2u - 32u * 1u - 13u * 3u);
  for (const FormatSpec& a : valid) {
    for (const FormatSpec& b : valid) {
      SCOPED_TRACE(a.to_string() + " vs " + b.to_string());
      EXPECT_EQ(a == b, a.to_string() == b.to_string());
    }
  }
}

TEST(FormatValidate, UnusedFieldsAwayFromTheirDefaultsAreRejected) {
  FormatSpec dense_grouped = FormatSpec::dense(DType::kBF16);
  dense_grouped.group_size = 128;
  FormatSpec dense_sym = FormatSpec::dense(DType::kFP16);
  dense_sym.symmetric = true;
  FormatSpec int_fp16 = FormatSpec::integer(4, 128, false);
  int_fp16.dense_dtype = DType::kFP16;
  for (const FormatSpec& f : {dense_grouped, dense_sym, int_fp16}) {
    SCOPED_TRACE(f.to_string());
    EXPECT_EQ(f.validate().code(), StatusCode::kInvalidArgument);
    PackedLayout L;
    EXPECT_EQ(packed_layout(f, 16, 128, &L).code(), StatusCode::kInvalidArgument);
    // It prints like a registered format yet is not equal to it.
    FormatSpec parsed;
    ASSERT_TRUE(FormatSpec::parse(f.to_string(), &parsed).is_ok());
    EXPECT_NE(parsed, f);
  }
}

TEST(FormatBits, BitsPerWeightMatchesTheSpecExamplesExactly) {
  auto bpw = [](const char* text, int64_t k) { return parse_format(text).bits_per_weight(k); };
  EXPECT_EQ(bpw("int4:g128", 4096), 4.1875);
  EXPECT_EQ(bpw("int3:g64:sym", 4096), 3.25);
  EXPECT_EQ(bpw("int2:g32", 4096), 2.75);
  EXPECT_EQ(bpw("int8:pc", 4096), 8.005859375);
  EXPECT_EQ(bpw("int8:pc:sym", 4096), 8.00390625);
  EXPECT_EQ(bpw("bf16", 4096), 16.0);
  EXPECT_EQ(bpw("fp16", 77), 16.0);
  EXPECT_EQ(bpw("nuq4", 4096), 4.0625);
  EXPECT_EQ(bpw("nuq4", 128), 6.0);  // §3.7
  EXPECT_EQ(bpw("nuq3", 2048), 3.0625);
  EXPECT_EQ(bpw("nuq2", 1408), 2.0 + 64.0 / 1408.0);
  EXPECT_EQ(parse_format("nuq3").lut_entries(), 8);
  EXPECT_EQ(parse_format("int3:g64").lut_entries(), 0);
  EXPECT_EQ(bpw("tcq2", 4096), 2.125);
  EXPECT_EQ(bpw("tcq3", 128), 3.125);
  EXPECT_EQ(bpw("tcq2.5", 4096), 2.625);
  EXPECT_EQ(bpw("vq2", 4096), 2.125);  // the codebook is the format's, not stored
  EXPECT_EQ(bpw("vq1.5", 128), 1.625);
  EXPECT_EQ(bpw("vq2.5", 4096), 2.625);
  EXPECT_EQ(bpw("vq3", 4096), 3.125);
  EXPECT_EQ(parse_format("vq2").code_limit(), 256u);
  EXPECT_EQ(parse_format("vq3").code_limit(), 4096u);
  EXPECT_EQ(parse_format("nuq3").code_limit(), 8u);
}

// Shapes whose dims are tile multiples: the payload carries exactly bits_per_weight.
TEST(FormatLayout, AlignedPayloadEqualsBitsPerWeightForEveryFormat) {
  const int64_t shapes[][2] = {{16, 128}, {64, 512}, {48, 1024}, {2048, 768}};
  for (const FormatSpec& f : all_formats()) {
    for (const auto& s : shapes) {
      SCOPED_TRACE(shape_name(f, s[0], s[1]));
      PackedLayout L;
      ASSERT_TRUE(packed_layout(f, s[0], s[1], &L).is_ok());
      EXPECT_EQ(L.n_pad, s[0]);
      EXPECT_EQ(L.k_pad, s[1]);
      const double payload_bits =
          8.0 * static_cast<double>(L.codes_bytes + L.scales_bytes + L.zeros_bytes);
      // Exact for grouped formats; per-channel 16/K may not be a binary fraction (K = 768).
      EXPECT_DOUBLE_EQ(payload_bits, f.bits_per_weight(s[1]) * static_cast<double>(s[0] * s[1]));
    }
  }
}

TEST(FormatLayout, OddShapesArePaddedToWholeTiles) {
  struct Case {
    const char* format;
    int64_t n, k;
    int64_t n_pad, k_pad, groups_pad, tile_bytes;
  };
  const Case cases[] = {
      {"int4:g128", 17, 384, 32, 384, 3, 1024},   {"int3:g64", 1, 192, 16, 256, 4, 768},
      {"int2:g32", 33, 96, 48, 128, 4, 512},      {"int8:pc", 5, 77, 16, 128, 1, 2048},
      {"int4:pc:sym", 40, 300, 48, 384, 1, 1024}, {"bf16", 3, 1, 16, 128, 0, 4096},
      {"fp16", 100, 129, 112, 256, 0, 4096},      {"nuq3", 17, 77, 32, 128, 0, 768},
      {"nuq4", 1, 4096, 16, 4096, 0, 1024},       {"tcq3", 17, 384, 32, 384, 3, 768},
      {"vq2", 17, 384, 32, 384, 3, 512},          {"vq1.5", 1, 128, 16, 128, 1, 384},
      {"vq2.5", 40, 256, 48, 256, 2, 640},        {"vq3", 16, 4096, 16, 4096, 32, 768},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    FormatSpec f;
    ASSERT_TRUE(FormatSpec::parse(c.format, &f).is_ok());
    PackedLayout L;
    ASSERT_TRUE(packed_layout(f, c.n, c.k, &L).is_ok());
    EXPECT_EQ(L.n, c.n);
    EXPECT_EQ(L.k, c.k);
    EXPECT_EQ(L.n_pad, c.n_pad);
    EXPECT_EQ(L.k_pad, c.k_pad);
    EXPECT_EQ(L.groups_pad, c.groups_pad);
    EXPECT_EQ(L.tile_bytes, c.tile_bytes);
    EXPECT_EQ(L.codes_bytes, c.n_pad / 16 * (c.k_pad / 128) * c.tile_bytes);
    const int64_t params = f.kind != FormatKind::kDense ? c.n_pad * c.groups_pad : 0;
    EXPECT_EQ(L.scales_bytes, 2 * (params + c.n_pad * f.lut_entries()));  // LUT: the tables
    EXPECT_EQ(L.zeros_bytes, f.kind == FormatKind::kInt && !f.symmetric ? params : 0);
  }
}

TEST(FormatLayout, SectionsStartOn256ByteBoundariesAndDoNotOverlap) {
  const int64_t shapes[][2] = {{1, 32}, {17, 96}, {33, 224}, {100, 640}, {7, 64}};
  for (const FormatSpec& f : all_formats()) {
    for (const auto& s : shapes) {
      PackedLayout L;
      if (!packed_layout(f, s[0], s[1], &L).is_ok()) continue;  // K not divisible by group
      SCOPED_TRACE(shape_name(f, s[0], s[1]));
      EXPECT_EQ(L.codes_offset, 0);
      EXPECT_EQ(L.scales_offset % kSectionAlign, 0);
      EXPECT_EQ(L.zeros_offset % kSectionAlign, 0);
      EXPECT_EQ(L.total_bytes % kSectionAlign, 0);
      EXPECT_GE(L.scales_offset, L.codes_offset + L.codes_bytes);
      EXPECT_GE(L.zeros_offset, L.scales_offset + L.scales_bytes);
      EXPECT_GE(L.total_bytes, L.zeros_offset + L.zeros_bytes);
      EXPECT_LT(L.total_bytes - (L.codes_bytes + L.scales_bytes + L.zeros_bytes),
                3 * kSectionAlign);
    }
  }
}

// §2.5: every (row, group) of the padded grid has its own entry, and the 2 * GPT entries of
// the lanes of one gid in one tile column (rows gid and gid + 8) are adjacent and aligned.
TEST(FormatLayout, GroupParametersFillTheirBlocksOncePerEntry) {
  const int64_t shapes[][2] = {{17, 384}, {40, 256}, {5, 77}};
  for (const FormatSpec& f : all_formats()) {
    if (f.kind != FormatKind::kInt && f.kind != FormatKind::kTrellis &&
        f.kind != FormatKind::kVector) {
      PackedLayout L;
      ASSERT_TRUE(packed_layout(f, 16, 128, &L).is_ok());
      EXPECT_EQ(group_param_index(f, L, 0, 0), -1);
      continue;
    }
    for (const auto& s : shapes) {
      PackedLayout L;
      if (!packed_layout(f, s[0], s[1], &L).is_ok()) continue;
      SCOPED_TRACE(shape_name(f, s[0], s[1]));
      const int64_t gpt = f.group_size == 0 ? 1 : 128 / f.group_size;
      std::vector<int> seen(static_cast<size_t>(L.n_pad * L.groups_pad), 0);
      for (int64_t row = 0; row < L.n_pad; ++row)
        for (int64_t j = 0; j < L.groups_pad; ++j) {
          const int64_t i = group_param_index(f, L, row, j);
          ASSERT_GE(i, 0);
          ASSERT_LT(i, L.n_pad * L.groups_pad);
          ++seen[static_cast<size_t>(i)];
          // The lanes' word: rows gid and gid + 8 of tile column j / gpt, groups in order.
          const int64_t first = group_param_index(f, L, row % 8 + row / 16 * 16, j / gpt * gpt);
          EXPECT_EQ(first % (2 * gpt), 0);
          EXPECT_EQ(i - first, (row % 16) / 8 * gpt + j % gpt);
        }
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), L.n_pad * L.groups_pad);
    }
  }
}

TEST(FormatLayout, WorkedExampleOfTheSpecHasItsOffsets) {
  PackedLayout L;
  ASSERT_TRUE(packed_layout(FormatSpec::integer(4, 128, false), 16, 128, &L).is_ok());
  EXPECT_EQ(L.codes_bytes, 1024);
  EXPECT_EQ(L.scales_offset, 1024);
  EXPECT_EQ(L.scales_bytes, 32);
  EXPECT_EQ(L.zeros_offset, 1280);
  EXPECT_EQ(L.zeros_bytes, 16);
  EXPECT_EQ(L.zeros_offset + L.zeros_bytes, 1296);
}

TEST(FormatLayout, BadDimsOrGroupMismatchAreInvalidArgument) {
  const FormatSpec g128 = FormatSpec::integer(4, 128, false);
  struct Case {
    FormatSpec f;
    int64_t n, k;
  };
  FormatSpec broken = g128;
  broken.bits = 5;
  const Case cases[] = {{g128, 0, 128},
                        {g128, 16, 0},
                        {g128, -1, 128},
                        {g128, 16, -128},
                        {g128, 16, 100},
                        {g128, 16, 192},
                        {FormatSpec::integer(2, 32, true), 8, 48},
                        {g128, int64_t{1} << 30, 128},
                        {broken, 16, 128}};
  for (const Case& c : cases) {
    SCOPED_TRACE(shape_name(c.f, c.n, c.k));
    PackedLayout L;
    L.total_bytes = 12345;
    EXPECT_EQ(packed_layout(c.f, c.n, c.k, &L).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(L.total_bytes, 12345);
  }
  EXPECT_EQ(packed_layout(g128, 16, 128, nullptr).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qmoe
