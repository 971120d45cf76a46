// cpu_ref/formats/trellis.cpp — trellis formats (docs/formats.md §1, §2.2, §2.5): in each
// 128-input block of a row the chunks of `bits` code bits form a circular bit string; position t
// reads the 12 bits starting at its own chunk as its state S_t, v_t = c(S_t) with
// c(S) = (byte sum of 34038481 S + 76625530 mod 2^32) - 510; u = H v (Sylvester Hadamard,
// entries (-1)^popcount(t & j)); w_t = sigma_t u_t s rounded once to float32, with the fixed
// sign sigma_t and the block's fp16 scale s.
#include <cmath>
#include <string>

#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {
namespace {

constexpr int kStateBits = 12;  // §1: a state is 12 code bits

float scale_of(const PackedMatrix& m, const Layout& L, int64_t row, int64_t block) {
  const uint8_t* p = m.blob.data() + L.scales_offset + 2 * param_index(L, row, block);
  return fp16_to_float(static_cast<uint16_t>(p[0] | p[1] << 8));
}

// Bit `bit` of row `row_in_tile`'s stream in tile `tile` (§2.2: a tile's 16 rows in order,
// tile_bytes / 16 bytes each, little-endian bit order).
uint32_t stream_bit(const Layout& L, const PackedMatrix& m, int64_t tile, int64_t row_in_tile,
                    int64_t bit) {
  const int64_t byte =
      L.codes_offset + tile * L.tile_bytes + row_in_tile * (L.tile_bytes / kTileRows) + bit / 8;
  return (m.blob[static_cast<size_t>(byte)] >> (bit % 8)) & 1u;
}

// c_i(S): the four bytes of the low 32 bits of a S + b summed, minus 510 (computed in 64 bits
// here), with (a, b) = (34038481, 76625530) for value 0 and (2654435761, 2135587861) for value 1.
int code_value(uint32_t state, int value) {
  const uint64_t a = value == 0 ? 34038481ull : 2654435761ull;
  const uint64_t b = value == 0 ? 76625530ull : 2135587861ull;
  const uint64_t x = (uint64_t{state} * a + b) % (uint64_t{1} << 32);
  int sum = 0;
  for (int i = 0; i < 4; ++i) sum += static_cast<int>((x >> (8 * i)) % 256);
  return sum - 510;
}

}  // namespace

Status check_block_scales(const PackedMatrix& m, const Layout& L) {
  for (int64_t row = 0; row < L.n_pad; ++row) {
    for (int64_t g = 0; g < L.groups_pad; ++g) {
      const uint8_t* p = m.blob.data() + L.scales_offset + 2 * param_index(L, row, g);
      const uint16_t s = static_cast<uint16_t>(p[0] | p[1] << 8);
      const bool bad = row < L.n ? !std::isfinite(fp16_to_float(s)) : s != 0;
      if (!bad) continue;
      const std::string where =
          "ref: scale of row " + std::to_string(row) + ", block " + std::to_string(g);
      return invalid_argument(row < L.n ? where + " is not finite (" + hex16(s) + ")"
                                        : where + " (padding) is " + hex16(s) + ", must be 0");
    }
  }
  return Status::ok();
}

Status check_trellis(const PackedMatrix& m, const Layout& L) {
  QMOE_RETURN_IF_ERROR(check_block_scales(m, L));
  const int64_t k_tiles = L.k_pad / kTileCols;
  for (int64_t row = L.n; row < L.n_pad; ++row)
    for (int64_t g = 0; g < L.groups_pad; ++g)
      for (int64_t bit = 0; bit < 8 * L.tile_bytes / kTileRows; ++bit)
        if (stream_bit(L, m, row / kTileRows * k_tiles + g, row % kTileRows, bit) != 0)
          return invalid_argument("ref: code bit " + std::to_string(bit) + " of padded row " +
                                  std::to_string(row) + ", block " + std::to_string(g) +
                                  " is 1, must be 0");
  return Status::ok();
}

void read_trellis_chunks(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* chunks) {
  const int bits = m.format.bits, values = m.format.values_per_state;
  const int64_t k_tiles = L.k_pad / kTileCols;
  chunks->assign(static_cast<size_t>(L.n * L.k), 0);  // two-value formats: odd positions 0
  uint16_t* out = chunks->data();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < L.n; ++row) {
    for (int64_t col = 0; col < L.k; col += values) {  // step (col mod 128) / values
      const int64_t tile = row / kTileRows * k_tiles + col / kTileCols;
      const int64_t step = col % kTileCols / values;
      uint32_t q = 0;
      for (int b = 0; b < bits; ++b)
        q |= stream_bit(L, m, tile, row % kTileRows, step * bits + b) << b;
      out[row * L.k + col] = static_cast<uint16_t>(q);
    }
  }
}

void decode_trellis(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& chunks,
                    std::vector<float>* w) {
  const int bits = m.format.bits, values = m.format.values_per_state;
  const int steps = kTileCols / values;
  const int64_t blocks = L.k / kTileCols;
  w->resize(static_cast<size_t>(L.n * L.k));
  float* out = w->data();
#pragma omp parallel for schedule(static)
  for (int64_t rb = 0; rb < L.n * blocks; ++rb) {
    const int64_t row = rb / blocks, block = rb % blocks, base = row * L.k + block * kTileCols;
    int64_t v[kTileCols];
    for (int t = 0; t < kTileCols; ++t) {
      // Position t is value t mod V of step t / V, whose state is the 12 bits of the block's
      // circular string of chunks (step q's chunk at position V q) from its own chunk on.
      const int p = t / values;
      uint64_t window = 0;
      for (int i = 0; i * bits < kStateBits; ++i)
        window |= uint64_t{chunks[static_cast<size_t>(base + values * ((p + i) % steps))]}
                  << (i * bits);
      const uint32_t state = static_cast<uint32_t>(window % (1u << kStateBits));
      v[t] = code_value(state, t % values);
    }
    const float s = scale_of(m, L, row, block);
    for (int t = 0; t < kTileCols; ++t) {
      int64_t u = 0;  // row t of the Sylvester Hadamard matrix times v, summed directly
      for (int j = 0; j < kTileCols; ++j) u += __builtin_parity(t & j) ? -v[j] : v[j];
      // sigma_t: -1 where 2654435761 t mod 2^32 >= 2^31.
      const int64_t sigma =
          (uint64_t{2654435761u} * t) % (uint64_t{1} << 32) >= (uint64_t{1} << 31) ? -1 : 1;
      // sigma u is an integer below 2^16, exact in float32; the product rounds once.
      out[base + t] = static_cast<float>(sigma * u) * s;
    }
  }
}

}  // namespace qmoe::ref::detail
