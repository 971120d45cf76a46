// cpu_ref/formats/int.cpp — integer formats (docs/formats.md §1, §2.5): w = (q - z) * s with
// s an fp16 scale and z a uint8 zero (or 2^(bits-1) when symmetric), one pair per
// (row, group) of `group_len` inputs.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {
namespace {

float scale_at(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group) {
  const uint8_t* p = m.blob.data() + L.scales_offset + 2 * (row * L.groups_pad + group);
  return fp16_to_float(static_cast<uint16_t>(p[0] | p[1] << 8));  // little-endian
}

int zero_at(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group) {
  if (m.format.symmetric) return 1 << (m.format.bits - 1);
  return m.blob[static_cast<size_t>(L.zeros_offset + row * L.groups_pad + group)];
}

}  // namespace

Status check_int_sections(const PackedMatrix& m, const Layout& L) {
  for (int64_t row = 0; row < L.n; ++row) {
    for (int64_t g = 0; g < L.groups; ++g) {
      if (!std::isfinite(scale_at(m, L, row, g)))
        return invalid_argument("ref: scale of row " + std::to_string(row) + ", group " +
                                std::to_string(g) + " is not finite");
      if (zero_at(m, L, row, g) >= (1 << m.format.bits))
        return invalid_argument("ref: zero of row " + std::to_string(row) + ", group " +
                                std::to_string(g) + " is out of range for " +
                                std::to_string(m.format.bits) + " bits");
    }
  }
  return Status::ok();
}

void decode_int(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                std::vector<float>* w) {
  w->resize(static_cast<size_t>(L.n * L.k));
  float* out = w->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row) {
    for (int64_t col = 0; col < L.k; ++col) {
      const int64_t g = col / L.group_len;
      const int q = codes[static_cast<size_t>(row * L.k + col)];
      // |q - z| < 2^8 and s has 11 significant bits: the float32 product is exact.
      out[row * L.k + col] = static_cast<float>(q - zero_at(m, L, row, g)) * scale_at(m, L, row, g);
    }
  }
}

}  // namespace qmoe::ref::detail
