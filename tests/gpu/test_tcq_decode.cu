// The trellis decoders' steps, checked on the host against the spec (docs/formats.md §1) on a
// random 16 x 128 tile of each of tcq2, tcq3, tcq4, tcq1.5, tcq2.5 and tcq3.5: the values v of
// every position from the packed row strings (TrellisDecoder::position_value, what the
// dequantize kernel forms w from); the A registers of every lane, sub-tile and register
// (read_codes' rotated row copies, biased_subtile: fp16 1024 + bytesum = v + 1534); the affine
// constants; the formed weights RNE_fp16(v s) of the tile kernel; and the identity the kernels
// rest on, sum_t w_t x_t = 128 s sum_j v_j x~_j with x~ = H (sigma . x) / 128, against the CPU
// reference's weights. Runs without a device; the GPU tests check the decoders inside the decode
// and tile kernels, the rotation kernel and the dequantize kernel.
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda/decode/trellis.cuh"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"

namespace {

/// A random 16 x 128 logical tile of tcq with kStepBits / kValues: a random chunk at each step's
/// first position, a scale per row (fp16, 0.5 .. 1.5 / 64, both signs).
qmoe::LogicalMatrix random_tcq_tile(int step_bits, int values, uint32_t seed) {
  const qmoe::FormatSpec f = qmoe::FormatSpec::trellis(step_bits, values);
  std::mt19937 rng(seed);
  qmoe::LogicalMatrix l = qmoe::LogicalMatrix::sized(f, 16, 128);
  for (int64_t i = 0; i < 16 * 128; i += values)
    l.codes[static_cast<size_t>(i)] = static_cast<uint16_t>(rng() % (1u << step_bits));
  std::uniform_real_distribution<float> mag(0.5f, 1.5f);
  for (uint16_t& s : l.scales)
    s = qmoe::float_to_fp16(((rng() & 1u) != 0 ? -1.f : 1.f) * mag(rng) / 64.f);
  return l;
}

/// v of (row, position t) from the logical chunks, as the spec defines it: the row's chunks in
/// step order form a circular bit string; the state of step p is its 12 bits from bit b p on;
/// v = bytesum(a_i S + c_i) - 510 for value i = t mod V.
int spec_value(const qmoe::LogicalMatrix& l, int step_bits, int values, int row, int t) {
  const int steps = 128 / values, bits = steps * step_bits;
  auto string_bit = [&](int bit) {
    const int p = bit / step_bits;
    return (l.codes[static_cast<size_t>(row * 128 + values * p)] >> (bit % step_bits)) & 1u;
  };
  const int p = t / values;
  uint32_t state = 0;
  for (int i = 0; i < 12; ++i) state |= string_bit((step_bits * p + i) % bits) << i;
  const uint32_t mul = t % values == 0 ? 34038481u : 2654435761u;
  const uint32_t add = t % values == 0 ? 76625530u : 2135587861u;
  const uint32_t x = state * mul + add;
  return static_cast<int>((x & 0xFF) + ((x >> 8) & 0xFF) + ((x >> 16) & 0xFF) + (x >> 24)) - 510;
}

template <int kStepBits, int kValues>
void expect_decoder_matches_spec() {
  using Dec = qmoe::dev::TrellisDecoder<kStepBits, kValues>;
  const qmoe::FormatSpec f = qmoe::FormatSpec::trellis(kStepBits, kValues);
  SCOPED_TRACE(f.to_string());
  const qmoe::LogicalMatrix l =
      random_tcq_tile(kStepBits, kValues, 7100 + 10 * kStepBits + kValues);
  qmoe::PackedMatrix m;
  ASSERT_TRUE(qmoe::pack(l, &m).is_ok());
  ASSERT_EQ(m.layout.tile_bytes, Dec::kTileBytes);
  const uint8_t* tile = m.blob.data() + m.layout.codes_offset;

  // The values from the packed strings (the dequantize kernel's path).
  std::vector<int> v(16 * 128);
  int lowest = 0, highest = 0;
  for (int row = 0; row < 16; ++row)
    for (int t = 0; t < 128; ++t) {
      const int want = spec_value(l, kStepBits, kValues, row, t);
      v[static_cast<size_t>(row * 128 + t)] = want;
      lowest = std::min(lowest, want);
      highest = std::max(highest, want);
      ASSERT_EQ(Dec::position_value(tile + row * Dec::kRowBytes, t), want)
          << "row " << row << " position " << t;
    }
  EXPECT_LT(lowest, -150);  // the codes' spread (sd ~148): not all one state
  EXPECT_GT(highest, 150);

  // Every lane's A registers: fp16 halves 1024 + bytesum, i.e. v + 1534 exactly.
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    for (int j = 0; j < 8; ++j) {
      uint32_t a[4];
      Dec::template biased_subtile<__half>(raw, j, 0, a);
      for (int r = 0; r < 4; ++r)
        for (int half = 0; half < 2; ++half) {
          const int row = lane / 4 + 8 * (r % 2);
          const int col = 16 * j + 2 * (lane % 4) + 8 * (r / 2) + half;
          const float got = qmoe::fp16_to_float(static_cast<uint16_t>(a[r] >> (16 * half)));
          ASSERT_EQ(got - qmoe::dev::tcq::kValueBias, static_cast<float>(v[row * 128 + col]))
              << "lane " << lane << " sub-tile " << j << " register " << r << " half " << half;
        }
    }
  }

  // The affine constants: 128 s of rows gid and gid + 8, and the bias 1534.
  for (int lane = 0; lane < 32; ++lane) {
    typename Dec::RawQuant rq{};
    rq.scale[0] = uint32_t{l.scales[static_cast<size_t>(lane / 4)]} |
                  uint32_t{l.scales[static_cast<size_t>(lane / 4 + 8)]} << 16;
    const auto q = Dec::template prepare_affine<__half>(qmoe::dev::ExpertParams{}, rq);
    for (int h = 0; h < 2; ++h) {
      EXPECT_EQ(q.scale[0][h],
                128.f * qmoe::fp16_to_float(l.scales[static_cast<size_t>(lane / 4 + 8 * h)]));
      EXPECT_EQ(q.zero_bias[0][h], 1534.f);
    }
  }

  // The formed weights of the mma.sync tile kernel (prepare, decode_subtile): each half is
  // RNE_fp16(v s) of its position and row, v s exact in float (a 10-bit by an 11-bit integer).
  for (int lane = 0; lane < 32; ++lane) {
    uint32_t raw[Dec::kRawWords];
    Dec::read_codes(tile, lane, raw);
    typename Dec::RawQuant rq{};
    rq.scale[0] = uint32_t{l.scales[static_cast<size_t>(lane / 4)]} |
                  uint32_t{l.scales[static_cast<size_t>(lane / 4 + 8)]} << 16;
    const auto q = Dec::template prepare<__half>(qmoe::dev::ExpertParams{}, rq, {});
    for (int j = 0; j < 8; ++j) {
      uint32_t a[4];
      Dec::template decode_subtile<__half>(raw, j, q, a);
      for (int r = 0; r < 4; ++r)
        for (int half = 0; half < 2; ++half) {
          const int row = lane / 4 + 8 * (r % 2);
          const int col = 16 * j + 2 * (lane % 4) + 8 * (r / 2) + half;
          const float s = qmoe::fp16_to_float(l.scales[static_cast<size_t>(row)]);
          ASSERT_EQ(static_cast<uint16_t>(a[r] >> (16 * half)),
                    qmoe::float_to_fp16(static_cast<float>(v[row * 128 + col]) * s))
              << "lane " << lane << " sub-tile " << j << " register " << r << " half " << half;
        }
    }
  }

  // sum_t w_t x_t = 128 s sum_j v_j x~_j, x~ = H (sigma . x) / 128, against the reference's fp16
  // weights: each is w rounded once (at most 2^-11 relative), so the two sums differ by at most
  // 2^-11 sum |w_t x_t| (plus double rounding).
  std::vector<uint16_t> w;
  ASSERT_TRUE(qmoe::ref::dequantize_to(m, qmoe::DType::kFP16, &w).is_ok());
  std::mt19937 rng(77);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> x(128), xr(128);
  for (double& e : x) e = normal(rng);
  for (int j = 0; j < 128; ++j) {
    double sum = 0;
    for (int t = 0; t < 128; ++t) {
      const double sigma = static_cast<uint32_t>(t) * 2654435761u >= 0x80000000u ? -1.0 : 1.0;
      const double h = __builtin_popcount(static_cast<unsigned>(t & j)) % 2 == 0 ? 1.0 : -1.0;
      sum += h * sigma * x[static_cast<size_t>(t)];
    }
    xr[static_cast<size_t>(j)] = sum / 128.0;
  }
  for (int row = 0; row < 16; ++row) {
    double rotated = 0, direct = 0, magnitude = 0;
    for (int j = 0; j < 128; ++j) rotated += v[row * 128 + j] * xr[static_cast<size_t>(j)];
    rotated *= 128.0 * qmoe::fp16_to_float(l.scales[static_cast<size_t>(row)]);
    for (int t = 0; t < 128; ++t) {
      const double p =
          qmoe::fp16_to_float(w[static_cast<size_t>(row * 128 + t)]) * x[static_cast<size_t>(t)];
      direct += p;
      magnitude += std::fabs(p);
    }
    EXPECT_LE(std::fabs(rotated - direct), std::ldexp(magnitude, -11) * 1.0001) << "row " << row;
    EXPECT_GT(magnitude, 0.0);
  }
}

TEST(TrellisDecode, ValuesRegistersAndRotatedProductMatchTheSpec) {
  expect_decoder_matches_spec<2, 1>();
  expect_decoder_matches_spec<3, 1>();
  expect_decoder_matches_spec<4, 1>();
  expect_decoder_matches_spec<3, 2>();
  expect_decoder_matches_spec<5, 2>();
  expect_decoder_matches_spec<7, 2>();
}

}  // namespace
