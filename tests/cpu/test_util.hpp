// Helpers the CPU tests share: formats from strings, trace names, random activations, weights
// and matrices, packing and banks. Header-only, on the public headers. A helper calls into the
// library only through the function its comment names (FormatSpec::parse, pack, packed_layout,
// quantize, ExpertBank::create), so the CPU reference tests, whose oracles stay off most of the
// library, can use the others freely.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "qmoe/format.hpp"
#include "qmoe/numeric.hpp"
#include "qmoe/packed.hpp"
#include "qmoe/quantize.hpp"

namespace qmoe::test {

/// The format `text` names; a parse error is a test failure (and gives a default FormatSpec).
inline FormatSpec parse_format(const std::string& text) {
  FormatSpec f;
  const Status st = FormatSpec::parse(text, &f);
  EXPECT_TRUE(st.is_ok()) << text << ": " << st.to_string();
  return f;
}

/// "int4:g128 [17, 384]": a format and an [n, k] shape, for SCOPED_TRACE.
inline std::string shape_name(const FormatSpec& f, int64_t n, int64_t k) {
  return f.to_string() + " [" + std::to_string(n) + ", " + std::to_string(k) + "]";
}

/// v rounded to nearest even in activation type act, as its 16-bit pattern.
inline uint16_t to_act(DType act, float v) {
  return act == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
}

/// The value of the 16-bit pattern `bits` of activation type act.
inline double act_value(DType act, uint16_t bits) {
  return act == DType::kBF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}

/// `count` activations of type act: uniform in [-limit, limit], then rounded to act.
inline std::vector<uint16_t> random_activations(DType act, int64_t count, float limit,
                                                std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-limit, limit);
  std::vector<uint16_t> x(static_cast<size_t>(count));
  for (auto& v : x) v = to_act(act, dist(rng));
  return x;
}

/// random_activations drawn from a fresh std::mt19937(seed).
inline std::vector<uint16_t> random_activations(DType act, int64_t count, float limit,
                                                uint32_t seed) {
  std::mt19937 rng(seed);
  return random_activations(act, count, limit, rng);
}

/// `count` floats drawn from N(0, sigma^2).
inline std::vector<float> gaussian(int64_t count, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(count));
  for (auto& x : v) x = normal(rng);
  return v;
}

/// gaussian drawn from a fresh std::mt19937(seed).
inline std::vector<float> gaussian(int64_t count, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  return gaussian(count, sigma, rng);
}

/// A random finite fp16 pattern of either sign, subnormals and zero included.
inline uint16_t random_finite_fp16(std::mt19937& rng) {
  for (;;) {
    const auto h = static_cast<uint16_t>(rng());
    if ((h & 0x7c00u) != 0x7c00u) return h;
  }
}

/// Logical f [n, k] sized as LogicalMatrix::sized does, filled by code(), scale(), zero() in turn
/// (a LUT format's table entries by scale()).
template <typename CodeFn, typename ScaleFn, typename ZeroFn>
LogicalMatrix logical_matrix(const FormatSpec& f, int64_t n, int64_t k, CodeFn code, ScaleFn scale,
                             ZeroFn zero) {
  LogicalMatrix m;
  m.format = f;
  m.n = n;
  m.k = k;
  m.codes.resize(static_cast<size_t>(n * k));
  for (auto& c : m.codes) c = code();
  if (f.kind == FormatKind::kInt || f.kind == FormatKind::kTrellis ||
      f.kind == FormatKind::kVector) {
    m.scales.resize(static_cast<size_t>(n * (k / f.group_len(k))));
    for (auto& s : m.scales) s = scale();
    if (f.kind == FormatKind::kInt && !f.symmetric) {
      m.zeros.resize(m.scales.size());
      for (auto& z : m.zeros) z = zero();
    }
  }
  if (f.kind == FormatKind::kLut) {
    m.scales.resize(static_cast<size_t>(n * f.lut_entries()));
    for (auto& s : m.scales) s = scale();
  }
  if (f.kind == FormatKind::kTrellis && f.values_per_state == 2)  // one chunk per two positions
    for (size_t i = 1; i < m.codes.size(); i += 2) m.codes[i] = 0;
  if (f.kind == FormatKind::kVector)  // one code per vector, at its first column 16u + 2t
    for (size_t i = 0; i < m.codes.size(); ++i)
      if (i % static_cast<size_t>(k) % 16 >= 8 || i % 2 == 1) m.codes[i] = 0;
  return m;
}

/// Any pattern f can hold: any codes (dense: NaN and Inf too), finite fp16 scales and table
/// entries, any zeros.
inline LogicalMatrix random_logical(const FormatSpec& f, int64_t n, int64_t k, std::mt19937& rng) {
  const uint32_t code_mask = f.kind == FormatKind::kDense ? 0xffffu : f.code_limit() - 1u;
  return logical_matrix(
      f, n, k, [&] { return static_cast<uint16_t>(rng() & code_mask); },
      [&] { return random_finite_fp16(rng); },
      [&] { return static_cast<uint8_t>(rng() & code_mask); });
}

/// random_logical drawn from a fresh std::mt19937(seed).
inline LogicalMatrix random_logical(const FormatSpec& f, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  return random_logical(f, n, k, rng);
}

/// Values a GEMM can multiply: dense in +-dense_limit, scales (and LUT table entries) in
/// +-scale_limit, any codes, zeros.
inline LogicalMatrix moderate_logical(const FormatSpec& f, int64_t n, int64_t k, float dense_limit,
                                      float scale_limit, std::mt19937& rng) {
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  const uint32_t codes = f.code_limit();
  return logical_matrix(
      f, n, k,
      [&] {
        return f.kind == FormatKind::kDense ? to_act(f.dense_dtype, dense_limit * unit(rng))
                                            : static_cast<uint16_t>(rng() % codes);
      },
      [&] { return float_to_fp16(scale_limit * unit(rng)); },
      [&] { return static_cast<uint8_t>(rng() % codes); });
}

/// The trellis formats' code value c_i(S) of docs/formats.md §1: the byte sum of the low 32 bits
/// of 34038481 S + 76625530 (value 0) or 2654435761 S + 2135587861 (value 1), minus 510.
inline int trellis_code_value(uint32_t state, int value = 0) {
  const uint32_t x = value == 0
                         ? static_cast<uint32_t>(uint64_t{state} * 34038481u + 76625530u)
                         : static_cast<uint32_t>(uint64_t{state} * 2654435761u + 2135587861u);
  return static_cast<int>((x & 255u) + (x >> 8 & 255u) + (x >> 16 & 255u) + (x >> 24)) - 510;
}

/// The exact weights of a logical trellis matrix by docs/formats.md §1, block by block: the codes
/// of the block's positions (value j mod V of the state of step j / V: 12 bits of the circular
/// chunk string from that step's chunk on), each Hadamard row of them summed directly, the
/// position's sign, times the block's scale rounded once to float.
inline std::vector<float> trellis_decoded(const LogicalMatrix& m) {
  const int bits = m.format.bits, values = m.format.values_per_state, steps = 128 / values;
  std::vector<float> w(static_cast<size_t>(m.n * m.k));
  for (int64_t r = 0; r < m.n; ++r) {
    for (int64_t base = r * m.k; base < (r + 1) * m.k; base += 128) {
      int64_t v[128];
      for (int64_t j = 0; j < 128; ++j) {
        uint64_t string = 0;  // at least 12 bits of the chunk string from step j / V on
        for (int i = 0; i * bits < 12; ++i)
          string |=
              uint64_t{m.codes[static_cast<size_t>(base + values * ((j / values + i) % steps))]}
              << (i * bits);
        const uint32_t state = static_cast<uint32_t>(string & 0xFFFu);
        v[j] = trellis_code_value(state, static_cast<int>(j % values));
      }
      const float s = fp16_to_float(m.scales[static_cast<size_t>(base / 128)]);
      for (int64_t t = 0; t < 128; ++t) {
        int64_t u = 0;
        for (int64_t j = 0; j < 128; ++j) {
          int ones = 0;
          for (int64_t rest = t & j; rest != 0; rest &= rest - 1) ++ones;
          u += ones % 2 == 0 ? v[j] : -v[j];
        }
        const bool negative =
            static_cast<uint32_t>(uint64_t{2654435761u} * static_cast<uint64_t>(t)) >= 0x80000000u;
        w[static_cast<size_t>(base + t)] = static_cast<float>(negative ? -u : u) * s;
      }
    }
  }
  return w;
}

/// The vector formats' magnitude tables (docs/formats/vq*_codebook.inc, spec data): entry m,
/// dimension d at 4m + d, fp16 bits.
inline constexpr uint16_t kVq15Table[4 * 4] = {
#include "../../docs/formats/vq1.5_codebook.inc"
};
inline constexpr uint16_t kVq2Table[16 * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};
inline constexpr uint16_t kVq25Table[64 * 4] = {
#include "../../docs/formats/vq2.5_codebook.inc"
};
inline constexpr uint16_t kVq3Table[256 * 4] = {
#include "../../docs/formats/vq3_codebook.inc"
};

/// The exact weights of a logical vector-format matrix by docs/formats.md §1: column c of a row
/// is dimension d = c mod 2 + 2 ((c mod 16) >= 8) of the vector whose code sits at column
/// 16 floor(c / 16) + 2 floor((c mod 8) / 2); with b code bits, w = (-1)^(bit b - 4 + d)
/// M[code mod 2^(b - 4)][d] s, with bf16_factors M and s each rounded to bf16 first.
/// The magnitude table of the vector format with b code bits (6, 8, 10, 12).
inline const uint16_t* vq_table(int b) {
  return b == 6 ? kVq15Table : b == 8 ? kVq2Table : b == 10 ? kVq25Table : kVq3Table;
}

inline std::vector<float> vector_decoded(const LogicalMatrix& m, bool bf16_factors) {
  const int b = m.format.bits;
  const uint16_t* table = vq_table(b);
  const auto factor = [&](uint16_t h) {
    const float v = fp16_to_float(h);
    return bf16_factors ? bf16_to_float(float_to_bf16(v)) : v;
  };
  std::vector<float> w(static_cast<size_t>(m.n * m.k));
  for (int64_t r = 0; r < m.n; ++r) {
    for (int64_t c = 0; c < m.k; ++c) {
      const int64_t first = c / 16 * 16 + c % 8 / 2 * 2;
      const int d = static_cast<int>(c % 2 + (c % 16 >= 8 ? 2 : 0));
      const uint32_t q = m.codes[static_cast<size_t>(r * m.k + first)];
      const float mag = factor(table[(q % (1u << (b - 4))) * 4 + static_cast<uint32_t>(d)]);
      const float s = factor(m.scales[static_cast<size_t>(r * (m.k / 128) + c / 128)]);
      w[static_cast<size_t>(r * m.k + c)] = ((q >> (b - 4 + d)) % 2 == 1 ? -mag : mag) * s;
    }
  }
  return w;
}

/// Exact weights [n, k] of m by docs/formats.md §1: (q - z) * s in float, the table entry
/// T[n][q], sigma_t (H v)_t * s (trellis_decoded), +-M * s (vector_decoded), or the dense value;
/// bf16_scales: the bf16-activation rule of int and vector formats, the scale (and a vector's
/// magnitude) rounded to bf16 first (LUT, trellis and dense values: the caller rounds them).
inline std::vector<float> decoded(const LogicalMatrix& m, bool bf16_scales = false) {
  const FormatSpec& f = m.format;
  if (f.kind == FormatKind::kTrellis) return trellis_decoded(m);
  if (f.kind == FormatKind::kVector) return vector_decoded(m, bf16_scales);
  std::vector<float> w(static_cast<size_t>(m.n * m.k));
  for (int64_t r = 0; r < m.n; ++r) {
    for (int64_t c = 0; c < m.k; ++c) {
      const size_t i = static_cast<size_t>(r * m.k + c);
      if (f.kind == FormatKind::kDense) {  // bf16 spelled out: decoders may use bf16_to_float
        w[i] = f.dense_dtype == DType::kBF16 ? bits_float(uint32_t{m.codes[i]} << 16)
                                             : fp16_to_float(m.codes[i]);
        continue;
      }
      if (f.kind == FormatKind::kLut) {
        w[i] = fp16_to_float(m.scales[static_cast<size_t>(r * f.lut_entries() + m.codes[i])]);
        continue;
      }

      const int64_t g = f.group_len(m.k);
      const size_t gi = static_cast<size_t>(r * (m.k / g) + c / g);
      const int z = f.symmetric ? 1 << (f.bits - 1) : m.zeros[gi];
      const float s = fp16_to_float(m.scales[gi]);
      w[i] = static_cast<float>(static_cast<int>(m.codes[i]) - z) *
             (bf16_scales ? bf16_to_float(float_to_bf16(s)) : s);
    }
  }
  return w;
}

/// m packed by qmoe::pack; an error is a test failure.
inline PackedMatrix packed(const LogicalMatrix& m) {
  PackedMatrix p;
  const Status st = pack(m, &p);
  EXPECT_TRUE(st.is_ok()) << m.format.to_string() << ": " << st.to_string();
  return p;
}

/// f [n, k] laid out by packed_layout, random bytes in its sections (gaps and tail 0): pack's
/// size, not pack's scales or padding.
inline PackedMatrix random_packed(const FormatSpec& f, int64_t n, int64_t k, std::mt19937& rng) {
  PackedMatrix m;
  m.format = f;
  const Status st = packed_layout(f, n, k, &m.layout);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  m.blob.assign(static_cast<size_t>(m.layout.total_bytes), 0);
  // Random bytes in each section; the gaps between them and the tail stay 0 (§2).
  const PackedLayout& L = m.layout;
  for (const auto& [offset, bytes] :
       {std::pair{L.codes_offset, L.codes_bytes}, std::pair{L.scales_offset, L.scales_bytes},
        std::pair{L.zeros_offset, L.zeros_bytes}})
    for (int64_t i = offset; i < offset + bytes; ++i)
      m.blob[static_cast<size_t>(i)] = static_cast<uint8_t>(rng());
  return m;
}

/// random_packed drawn from a fresh std::mt19937(seed).
inline PackedMatrix random_packed(const FormatSpec& f, int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  return random_packed(f, n, k, rng);
}

/// Writes the fp16 pattern h little-endian at byte `byte` of m's blob.
inline void put_fp16(PackedMatrix* m, int64_t byte, uint16_t h) {
  m->blob[static_cast<size_t>(byte)] = static_cast<uint8_t>(h & 0xffu);
  m->blob[static_cast<size_t>(byte + 1)] = static_cast<uint8_t>(h >> 8);
}

/// Blob bytes of the scale (fp16) and zero (uint8) of (row, group) of an int matrix (§2.5).
inline int64_t scale_byte(const PackedMatrix& m, int64_t row, int64_t group) {
  return m.layout.scales_offset + 2 * group_param_index(m.format, m.layout, row, group);
}
inline int64_t zero_byte(const PackedMatrix& m, int64_t row, int64_t group) {
  return m.layout.zeros_offset + group_param_index(m.format, m.layout, row, group);
}

/// w [n, k] quantized into format f with options opt, packed; an error is a test failure.
inline PackedMatrix quantized(const std::vector<float>& w, int64_t n, int64_t k,
                              const FormatSpec& f, const QuantizeOptions& opt = {}) {
  PackedMatrix p;
  const Status st = quantize(w.data(), n, k, f, opt, &p);
  EXPECT_TRUE(st.is_ok()) << f.to_string() << ": " << st.to_string();
  return p;
}

/// ExpertBank::create of `experts`; an error is a test failure (and gives an empty bank).
inline ExpertBank make_bank(std::vector<PackedMatrix> experts) {
  ExpertBank bank;
  const Status st = ExpertBank::create(std::move(experts), &bank);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return bank;
}

/// A bank of one expert per format string, in order: make_expert(FormatSpec) -> PackedMatrix.
template <typename MakeExpert>
ExpertBank bank_of(const std::vector<std::string>& formats, MakeExpert make_expert) {
  std::vector<PackedMatrix> experts;
  for (const std::string& text : formats) experts.push_back(make_expert(parse_format(text)));
  return make_bank(std::move(experts));
}

}  // namespace qmoe::test
