// ExpertBank: creation checks and the device image (offsets, alignment, descriptors).
#include <gtest/gtest.h>

#include "qmoe/packed.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::random_packed;

TEST(ExpertBank, ImageKeepsEveryExpertAlignedAndByteExact) {
  const std::vector<FormatSpec> fs = {
      FormatSpec::integer(4, 128, false), FormatSpec::integer(3, 64, true),
      FormatSpec::dense(DType::kBF16), FormatSpec::integer(2, 0, false)};
  std::vector<PackedMatrix> experts;
  for (size_t e = 0; e < fs.size(); ++e) experts.push_back(random_packed(fs[e], 40, 384, 7u + e));
  const std::vector<PackedMatrix> copy = experts;
  ExpertBank bank;
  ASSERT_TRUE(ExpertBank::create(std::move(experts), &bank).is_ok());
  std::vector<uint8_t> blob;
  std::vector<ExpertDesc> descs;
  ASSERT_TRUE(bank.build_image(&blob, &descs).is_ok());
  ASSERT_EQ(descs.size(), fs.size());
  EXPECT_EQ(static_cast<int64_t>(blob.size()), bank.image_bytes());
  for (size_t e = 0; e < fs.size(); ++e) {
    const ExpertDesc& d = descs[e];
    EXPECT_EQ(d.codes_offset % kSectionAlign, 0u);
    EXPECT_EQ(d.scales_offset % kSectionAlign, 0u);
    EXPECT_EQ(d.bits, fs[e].bits);
    EXPECT_EQ(d.symmetric, fs[e].symmetric ? 1 : 0);
    EXPECT_EQ(d.group_size, fs[e].group_len(384));
    EXPECT_EQ(d.tile_bytes, copy[e].layout.tile_bytes);
    // The expert's whole blob sits verbatim at its codes offset.
    EXPECT_TRUE(
        std::equal(copy[e].blob.begin(), copy[e].blob.end(), blob.begin() + d.codes_offset));
  }
}

TEST(ExpertBank, RejectsMismatchedDimsAndEmptyLists) {
  ExpertBank bank;
  EXPECT_EQ(ExpertBank::create({}, &bank).code(), StatusCode::kInvalidArgument);
  std::vector<PackedMatrix> experts;
  experts.push_back(random_packed(FormatSpec::integer(4, 128, false), 32, 256, 1));
  experts.push_back(random_packed(FormatSpec::integer(4, 128, false), 32, 384, 2));
  Status st = ExpertBank::create(std::move(experts), &bank);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 1"), std::string::npos) << st.message();
  EXPECT_EQ(bank.num_experts(), 0);
}

TEST(ExpertBank, RejectsBlobThatDoesNotMatchLayout) {
  std::vector<PackedMatrix> experts;
  experts.push_back(random_packed(FormatSpec::integer(8, 32, true), 16, 128, 3));
  experts[0].blob.pop_back();
  ExpertBank bank;
  EXPECT_EQ(ExpertBank::create(std::move(experts), &bank).code(), StatusCode::kInvalidArgument);
}

TEST(ExpertBank, RejectsLayoutOfAnotherFormat) {
  // int8 data described by an int2 layout would send the kernels past the blob.
  PackedMatrix m = random_packed(FormatSpec::integer(2, 128, true), 32, 256, 4);
  m.format = FormatSpec::integer(8, 32, false);
  std::vector<PackedMatrix> experts;
  experts.push_back(std::move(m));
  ExpertBank bank;
  EXPECT_EQ(ExpertBank::create(std::move(experts), &bank).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bank.num_experts(), 0);
}

TEST(Status, PrintsCodeAndMessage) {
  EXPECT_EQ(Status::ok().to_string(), "ok");
  EXPECT_EQ(unsupported("no wgmma").to_string(), "unsupported: no wgmma");
  EXPECT_FALSE(invalid_argument("x").is_ok());
}

}  // namespace
}  // namespace qmoe
