// cpu_ref/formats/vector.cpp — vector formats (docs/formats.md §1, §2.2, §2.5): the four weights
// of row n at columns 16u + 2t + {0, 1, 8, 9} (dimensions d = 0..3) share one b-bit code q
// (b = 6, 8, 10, 12); w = (-1)^(bit b - 4 + d of q) * M[q mod 2^(b-4)][d] * s, with M the fixed
// table of docs/formats/vq*_codebook.inc and s the fp16 scale of the row's 128-input block.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {
namespace {

// The spec's tables, entry m's dimension d at 4m + d (fp16 bits), one per code width.
constexpr uint16_t kMagnitude6[4 * 4] = {
#include "../../docs/formats/vq1.5_codebook.inc"
};
constexpr uint16_t kMagnitude8[16 * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};
constexpr uint16_t kMagnitude10[64 * 4] = {
#include "../../docs/formats/vq2.5_codebook.inc"
};
constexpr uint16_t kMagnitude12[256 * 4] = {
#include "../../docs/formats/vq3_codebook.inc"
};
constexpr int kDims = 4;
constexpr int kColumn[kDims] = {0, 1, 8, 9};  // column of dimension d after 16u + 2t

const uint16_t* magnitude_table(int bits) {
  switch (bits) {
    case 6:
      return kMagnitude6;
    case 8:
      return kMagnitude8;
    case 10:
      return kMagnitude10;
    default:
      return kMagnitude12;  // 12: check_format allows no other width
  }
}

// The code of the vector whose first column is `col` (§2.2): tile (row / 16, col / 128); in it
// lane 4 (r mod 8) + t holds slot i = 2j + r / 8 (r = row mod 16, j the k16 sub-tile, t = (col
// mod 16) / 2). Planes, least significant first: 6 = 4 + 2, 8, 10 = 8 + 2, 12 = 8 + 4 bits; a
// plane of c bits holds lane l's slots as the 2c bytes at (its offset) + 2c l, slot i at bit
// c i, the planes one after another (64 c bytes each).
uint32_t read_code(const PackedMatrix& m, const Layout& L, int64_t row, int64_t col) {
  const int64_t tile = row / kTileRows * (L.k_pad / kTileCols) + col / kTileCols;
  const int64_t r = row % kTileRows, j = col % kTileCols / 16, t = col % 16 / 2;
  const int64_t lane = 4 * (r % 8) + t, slot = 2 * j + r / 8;
  const int bits = m.format.bits;
  const int planes[2] = {bits >= 8 ? 8 : 4, bits - (bits >= 8 ? 8 : 4)};
  const uint8_t* p = m.blob.data() + L.codes_offset + tile * L.tile_bytes;
  uint32_t code = 0;
  int shift = 0;
  for (int c : planes) {
    for (int b = 0; b < c; ++b) {
      const int64_t bit = c * slot + b;
      code |= uint32_t{(p[2 * c * lane + bit / 8] >> (bit % 8)) & 1u} << (shift + b);
    }
    p += 64 * c;
    shift += c;
  }
  return code;
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
      const uint32_t q = read_code(m, L, row, col);
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
      if (col % 16 < 8) out[row * L.k + col] = static_cast<uint16_t>(read_code(m, L, row, col));
}

void decode_vector(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                   bool bf16_factors, std::vector<float>* w) {
  const int bits = m.format.bits;
  const uint16_t* table = magnitude_table(bits);
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
        // The magnitude index is the code's low bits - 4 bits, the signs its top 4.
        float mag = fp16_to_float(table[(q % (1u << (bits - 4))) * kDims + d]);
        if (bf16_factors) mag = to_bf16(mag);
        // Two significands of at most 11 bits: the product is exact in float32.
        out[row * L.k + col + kColumn[d]] = ((q >> (bits - 4 + d)) & 1u ? -mag : mag) * s;
      }
    }
  }
}

}  // namespace qmoe::ref::detail
