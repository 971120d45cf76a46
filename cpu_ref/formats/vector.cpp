// cpu_ref/formats/vector.cpp — vector formats (docs/formats.md §1, §2.2, §2.5): the four weights
// of row n at columns 16u + 2t + {0, 1, 8, 9} (dimensions d = 0..3) share one 8-bit code q;
// w = (-1)^(bit 4 + d of q) * M[q mod 16][d] * s, with M the fixed table of
// docs/formats/vq2_codebook.inc and s the fp16 scale of the row's 128-input block.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {
namespace {

// The spec's table, entry m's dimension d at 4m + d (fp16 bits).
constexpr uint16_t kMagnitude[16 * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};
constexpr int kDims = 4;
constexpr int kColumn[kDims] = {0, 1, 8, 9};  // column of dimension d after 16u + 2t

// Byte, in the codes section, of the code of the vector whose first column is `col` (§2.2):
// tile (row / 16, col / 128); in it lane 4 (r mod 8) + t holds slot 2j + r / 8, r = row mod 16,
// j the k16 sub-tile, at byte 16 lane + slot.
int64_t code_byte(const Layout& L, int64_t row, int64_t col) {
  const int64_t tile = row / kTileRows * (L.k_pad / kTileCols) + col / kTileCols;
  const int64_t r = row % kTileRows, j = col % kTileCols / 16, t = col % 16 / 2;
  const int64_t lane = 4 * (r % 8) + t, slot = 2 * j + r / 8;
  return L.codes_offset + tile * L.tile_bytes + 16 * lane + slot;
}

uint16_t scale_bits_of(const PackedMatrix& m, const Layout& L, int64_t row, int64_t block) {
  const uint8_t* p = m.blob.data() + L.scales_offset + 2 * param_index(L, row, block);
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}

// x rounded to bf16 (nearest even) and widened back: the bf16-activation factor of §1.
float to_bf16(float x) {
  return bf16_to_float(float_to_bf16(x));
}

}  // namespace

Status check_vector(const PackedMatrix& m, const Layout& L) {
  QMOE_RETURN_IF_ERROR(check_block_scales(m, L));
  for (int64_t row = L.n; row < L.n_pad; ++row)
    for (int64_t col = 0; col < L.k_pad; col += 2) {
      if (col % 16 >= 8) continue;  // first columns only: 16u + 2t
      const uint8_t q = m.blob[static_cast<size_t>(code_byte(L, row, col))];
      if (q != 0)
        return invalid_argument("ref: code of padded row " + std::to_string(row) + ", column " +
                                std::to_string(col) + " is " + std::to_string(q) + ", must be 0");
    }
  return Status::ok();
}

void read_vector_codes(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* codes) {
  codes->assign(static_cast<size_t>(L.n * L.k), 0);  // a vector's other columns: 0
  uint16_t* out = codes->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row)
    for (int64_t col = 0; col < L.k; col += 2)
      if (col % 16 < 8) out[row * L.k + col] = m.blob[static_cast<size_t>(code_byte(L, row, col))];
}

void decode_vector(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                   bool bf16_factors, std::vector<float>* w) {
  w->resize(static_cast<size_t>(L.n * L.k));
  float* out = w->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row) {
    for (int64_t col = 0; col < L.k; col += 2) {
      if (col % 16 >= 8) continue;
      const uint32_t q = codes[static_cast<size_t>(row * L.k + col)];
      float s = fp16_to_float(scale_bits_of(m, L, row, col / kTileCols));
      if (bf16_factors) s = to_bf16(s);
      for (int d = 0; d < kDims; ++d) {
        float mag = fp16_to_float(kMagnitude[(q % 16) * kDims + d]);
        if (bf16_factors) mag = to_bf16(mag);
        // Two significands of at most 11 bits: the product is exact in float32.
        out[row * L.k + col + kColumn[d]] = ((q >> (4 + d)) & 1u ? -mag : mag) * s;
      }
    }
  }
}

}  // namespace qmoe::ref::detail
