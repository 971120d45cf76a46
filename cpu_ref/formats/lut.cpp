// cpu_ref/formats/lut.cpp — LUT (non-uniform) formats (docs/formats.md §1, §2.5): w = T[n][q],
// entry q of row n's table of 2^b fp16 values, tables row-major in the scales section.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {
namespace {

uint16_t table_bits_at(const PackedMatrix& m, const Layout& L, int64_t row, uint32_t q) {
  const int64_t index = row * (int64_t{1} << m.format.bits) + q;
  const uint8_t* p = m.blob.data() + L.scales_offset + 2 * index;
  return static_cast<uint16_t>(p[0] | p[1] << 8);  // little-endian
}

}  // namespace

Status check_lut_tables(const PackedMatrix& m, const Layout& L) {
  const uint32_t entries = 1u << m.format.bits;
  for (int64_t row = 0; row < L.n_pad; ++row) {
    for (uint32_t q = 0; q < entries; ++q) {
      const uint16_t v = table_bits_at(m, L, row, q);
      const bool bad = row < L.n ? !std::isfinite(fp16_to_float(v)) : v != 0;
      if (!bad) continue;
      const std::string what =
          "ref: table entry " + std::to_string(q) + " of row " + std::to_string(row);
      return invalid_argument(row < L.n ? what + " is not finite (" + hex16(v) + ")"
                                        : what + " (a padded row) is " + hex16(v) + ", must be 0");
    }
  }
  return Status::ok();
}

void decode_lut(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                std::vector<float>* w) {
  w->resize(static_cast<size_t>(L.n * L.k));
  float* out = w->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row)
    for (int64_t col = 0; col < L.k; ++col)
      out[row * L.k + col] =
          fp16_to_float(table_bits_at(m, L, row, codes[static_cast<size_t>(row * L.k + col)]));
}

}  // namespace qmoe::ref::detail
