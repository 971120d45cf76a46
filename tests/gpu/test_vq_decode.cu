// The vector decoders' steps, checked on the host against the CPU reference (mma m16n8k16 A
// layout: every lane, sub-tile and register of a random 16 x 128 matrix of each of vq1.5, vq2,
// vq2.5 and vq3): their code planes and sign handling (VectorDecoder::code_of, sign_mask) at
// scale 1; then prepare and form_vector, with the entry the decoder fetches (a shuffle from
// lane code mod 32 for the lane-held tables of vq1.5 and vq2, the Act table's entry for vq2.5
// and vq3), at a different scale per row, in fp16 and bf16; and the compile-time bf16 tables.
// Runs without a device; the GPU tests check the decoders inside every kernel.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/decode/vector.cuh"
#include "qmoe/cpu_ref.hpp"
#include "tests/cpu/test_util.hpp"

namespace {

const char* vq_name(int code_bits) {
  return code_bits == 6 ? "vq1.5" : code_bits == 8 ? "vq2" : code_bits == 10 ? "vq2.5" : "vq3";
}

/// A 16 x 128 logical matrix of the vector format with code_bits, random codes (at each
/// vector's first column).
qmoe::LogicalMatrix random_vq_tile(int code_bits, uint32_t seed) {
  qmoe::FormatSpec f;
  EXPECT_TRUE(qmoe::FormatSpec::parse(vq_name(code_bits), &f).is_ok());
  std::mt19937 rng(seed);
  qmoe::LogicalMatrix l = qmoe::LogicalMatrix::sized(f, 16, 128);
  for (int64_t i = 0; i < 16 * 128; ++i)
    if (i % 16 < 8 && i % 2 == 0)
      l.codes[static_cast<size_t>(i)] = static_cast<uint16_t>(rng() % (1u << code_bits));
  return l;
}

/// Entry e's dimensions 2 pair, 2 pair + 1 of the spec's table as an fp16 pair.
uint32_t spec_entry_pair(int code_bits, uint32_t e, int pair) {
  const uint16_t* t = qmoe::test::vq_table(code_bits) + 4 * e + 2 * pair;
  return uint32_t{t[0]} | uint32_t{t[1]} << 16;
}

template <int kCodeBits>
void expect_codes_and_signs() {
  using Dec = qmoe::dev::VectorDecoder<kCodeBits>;
  SCOPED_TRACE(vq_name(kCodeBits));
  qmoe::LogicalMatrix l = random_vq_tile(kCodeBits, 6201 + kCodeBits);
  for (uint16_t& s : l.scales) s = 0x3C00;  // 1.0: the fp16 weights are the signed entries
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  ASSERT_EQ(m.layout.tile_bytes, Dec::kTileBytes);
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, qmoe::DType::kFP16, &want).is_ok());
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;
  int64_t negative = 0;
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int j = 0; j < 8; ++j)
      for (int r = 0; r < 4; ++r) {
        const int h = r & 1, pair = r >> 1;  // a[h]: dimensions 0, 1; a[h + 2]: 2, 3
        const uint32_t code = Dec::code_of(raw, j, h);
        ASSERT_LT(code, 1u << kCodeBits);
        const uint32_t got =
            spec_entry_pair(kCodeBits, code % Dec::kEntries, pair) ^ Dec::sign_mask(code, 2 * pair);
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

TEST(VectorDecode, CodesAndSignsGiveTheReferenceWeightsAtEveryAFragmentPosition) {
  expect_codes_and_signs<6>();
  expect_codes_and_signs<8>();
  expect_codes_and_signs<10>();
  expect_codes_and_signs<12>();
}

// prepare (the scales, and a lane-held table's entry, to Act: RNE_bf16 of the fp16 values for
// bf16) and form_vector (signs, then one rounded product per half, for row gid + 8h's scale)
// give the reference's weights, docs/formats.md §1, for every lane, sub-tile and register, in
// both activation types.
template <class Act, int kCodeBits>
void expect_formed_registers(qmoe::DType dtype) {
  using Dec = qmoe::dev::VectorDecoder<kCodeBits>;
  SCOPED_TRACE(vq_name(kCodeBits));
  qmoe::LogicalMatrix l = random_vq_tile(kCodeBits, 6202 + kCodeBits);
  // A different fp16 scale per row: normal ones of every exponent (their bf16 roundings differ
  // from them), two subnormals and one large enough that fp16 products overflow.
  const uint16_t scales[16] = {0x211F, 0x3C00, 0x3555, 0x2E66, 0x1A3B, 0x0457, 0x0003, 0x0201,
                               0x4D2F, 0x5BFF, 0x7800, 0x3FFF, 0x2C01, 0x1001, 0x47A1, 0x3001};
  for (int r = 0; r < 16; ++r) l.scales[static_cast<size_t>(r)] = scales[r];
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  std::vector<uint16_t> want;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, dtype, &want).is_ok());
  // Each lane's prepared quant: a lane-held table's entry (lane mod entries, per item), rows
  // gid and gid + 8's scales (per k-tile).
  const qmoe::dev::ExpertParams ep{};
  std::vector<typename Dec::template Quant<Act>> quant(32);
  for (int lane = 0; lane < 32; ++lane) {
    typename Dec::RawQuant rq{};
    rq.scale[0] = uint32_t{scales[lane / 4]} | uint32_t{scales[lane / 4 + 8]} << 16;
    typename Dec::template ItemQuant<Act> item{};
    if constexpr (Dec::kLaneTable) {
      const uint32_t e = static_cast<uint32_t>(lane) % Dec::kEntries;
      const uint32_t entry[2] = {spec_entry_pair(kCodeBits, e, 0),
                                 spec_entry_pair(kCodeBits, e, 1)};
      item = Dec::template item_quant<Act>(entry);
    }
    quant[static_cast<size_t>(lane)] = Dec::template prepare<Act>(ep, rq, item);
  }
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int j = 0; j < 8; ++j)
      for (int h = 0; h < 2; ++h) {
        const uint32_t code = Dec::code_of(raw, j, h);
        // The entry as the device fetches it: the shuffle's source lane is code mod 32.
        uint32_t entry[2];
        if constexpr (Dec::kLaneTable) {
          for (int i = 0; i < 2; ++i) entry[i] = quant[code % 32].item.entry[i];
        } else {
          qmoe::dev::vq::load_entry<kCodeBits, std::is_same_v<Act, __nv_bfloat16>>(
              code % Dec::kEntries, entry);
        }
        uint32_t a[2];
        Dec::template form_vector<Act>(code, entry, quant[static_cast<size_t>(lane)].scale[h], a[0],
                                       a[1]);
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
  expect_formed_registers<__half, 6>(qmoe::DType::kFP16);
  expect_formed_registers<__half, 8>(qmoe::DType::kFP16);
  expect_formed_registers<__half, 10>(qmoe::DType::kFP16);
  expect_formed_registers<__half, 12>(qmoe::DType::kFP16);
}

TEST(VectorDecode, FormedRegistersAreTheReferenceWeightsInBf16) {
  expect_formed_registers<__nv_bfloat16, 6>(qmoe::DType::kBF16);
  expect_formed_registers<__nv_bfloat16, 8>(qmoe::DType::kBF16);
  expect_formed_registers<__nv_bfloat16, 10>(qmoe::DType::kBF16);
  expect_formed_registers<__nv_bfloat16, 12>(qmoe::DType::kBF16);
}

// The tables the device loads per vector (vq2.5, vq3) are the spec's, in fp16 as they are and
// in bf16 RNE'd at compile time (vq::bf16_bits_of_fp16): every entry against the conversion
// through float; and the conversion itself on every finite fp16 value.
template <int kCodeBits>
void expect_tables() {
  SCOPED_TRACE(vq_name(kCodeBits));
  constexpr int kEntries = 1 << (kCodeBits - 4);
  for (uint32_t e = 0; e < kEntries; ++e) {
    uint32_t fp16[2], bf16[2];
    qmoe::dev::vq::load_entry<kCodeBits, false>(e, fp16);
    qmoe::dev::vq::load_entry<kCodeBits, true>(e, bf16);
    for (int pair = 0; pair < 2; ++pair) {
      EXPECT_EQ(fp16[pair], spec_entry_pair(kCodeBits, e, pair)) << "entry " << e;
      EXPECT_EQ(bf16[pair], qmoe::dev::ActTraits<__nv_bfloat16>::from_fp16x2(fp16[pair]))
          << "entry " << e;
    }
  }
}

TEST(VectorDecode, DeviceTablesAreTheSpecTablesInEachActivationType) {
  expect_tables<10>();
  expect_tables<12>();
  // Every finite fp16 value (normal, subnormal, zero, both signs).
  int checked = 0;
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7C00u) == 0x7C00u) continue;  // Inf and NaN: not in any table
    const uint16_t got = qmoe::dev::vq::bf16_bits_of_fp16(static_cast<uint16_t>(h));
    const uint32_t want = qmoe::dev::ActTraits<__nv_bfloat16>::from_fp16x2(h) & 0xFFFFu;
    if (got != want)
      ADD_FAILURE() << std::hex << "fp16 0x" << h << ": 0x" << got << ", want 0x" << want;
    ++checked;
  }
  EXPECT_EQ(checked, 63488);
}

}  // namespace
