// cpu_ref/formats/int.cpp — integer formats (docs/formats.md §1, §2.5): w = (q - z) * s with
// s an fp16 scale and z a uint8 zero (or 2^(bits-1) when symmetric), one pair per
// (row, group) of `group_len` inputs.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {

/// Blocks of the 16 rows of a strip x the groups of one tile column (128 / group_len of them,
/// or the single group of a per-channel row), rows gid and gid + 8 side by side inside a block.
int64_t param_index(const Layout& L, int64_t row, int64_t group) {
  const int64_t per_tile = L.per_channel ? 1 : kTileCols / L.group_len;
  const int64_t strip = row / kTileRows, r = row % kTileRows;
  const int64_t block = strip * L.groups_pad + group / per_tile * per_tile;
  return block * kTileRows + (r % 8) * 2 * per_tile + (r / 8) * per_tile + group % per_tile;
}

namespace {

uint16_t scale_bits_at(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group) {
  const uint8_t* p = m.blob.data() + L.scales_offset + 2 * param_index(L, row, group);
  return static_cast<uint16_t>(p[0] | p[1] << 8);  // little-endian
}

float scale_at(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group) {
  return fp16_to_float(scale_bits_at(m, L, row, group));
}

std::string row_group(int64_t row, int64_t group) {
  return "row " + std::to_string(row) + ", group " + std::to_string(group);
}

}  // namespace

int64_t group_of(const Layout& L, int64_t col) {
  return L.per_channel ? 0 : col / L.group_len;
}

int zero_point(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group) {
  if (m.format.symmetric) return 1 << (m.format.bits - 1);
  return m.blob[static_cast<size_t>(L.zeros_offset + param_index(L, row, group))];
}

Status check_int_sections(const PackedMatrix& m, const Layout& L) {
  for (int64_t row = 0; row < L.n_pad; ++row) {
    for (int64_t g = 0; g < L.groups_pad; ++g) {
      const uint16_t s = scale_bits_at(m, L, row, g);
      const int z = zero_point(m, L, row, g);
      if (row < L.n && g < L.groups) {
        if (!std::isfinite(fp16_to_float(s)))
          return invalid_argument("ref: scale of " + row_group(row, g) + " is not finite (" +
                                  hex16(s) + ")");
        if (z >= (1 << m.format.bits))
          return invalid_argument("ref: zero of " + row_group(row, g) + " is " + std::to_string(z) +
                                  ", out of range for " + std::to_string(m.format.bits) + " bits");
        continue;
      }
      // Padding must decode to exactly +0 (§2.1): kernels multiply whole tiles, and a
      // non-finite padded scale would turn 0 * s into NaN in real outputs.
      if (s != 0)
        return invalid_argument("ref: scale of padded " + row_group(row, g) + " is " + hex16(s) +
                                ", must be 0");
      if (!m.format.symmetric && z != 0)
        return invalid_argument("ref: zero of padded " + row_group(row, g) + " is " +
                                std::to_string(z) + ", must be 0");
    }
  }
  return Status::ok();
}

void decode_int(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                bool bf16_scales, std::vector<float>* w) {
  w->resize(static_cast<size_t>(L.n * L.k));
  float* out = w->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row) {
    for (int64_t col = 0; col < L.k; ++col) {
      const int64_t g = group_of(L, col);
      const int q = codes[static_cast<size_t>(row * L.k + col)];
      // |q - z| < 2^8 and s has 11 significant bits: the float32 product is exact.
      // For bf16 activations the scale is first rounded to bf16 (§1): 8 x 8 significant
      // bits, still exact in float32.
      const float s = scale_at(m, L, row, g);
      out[row * L.k + col] = static_cast<float>(q - zero_point(m, L, row, g)) *
                             (bf16_scales ? bf16_to_float(float_to_bf16(s)) : s);
    }
  }
}

}  // namespace qmoe::ref::detail
