// pack / unpack: the logical codes of a matrix <-> its kernel-native tiled layout
// (docs/formats.md §2). Every byte position is computed directly from the spec's formulas,
// one lane of one tile at a time, so packing a 100M-weight bank is a single pass.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "qmoe/packed.hpp"
#include "src/formats/status_guard.hpp"

namespace qmoe {

namespace {

/// Formats with one fp16 scale per (row, group) in parameter blocks (§2.5): int, trellis and
/// vector.
bool has_group_scales(const FormatSpec& f) {
  return f.kind == FormatKind::kInt || f.kind == FormatKind::kTrellis ||
         f.kind == FormatKind::kVector;
}

/// Formats with a uint8 zero per (row, group): asymmetric int.
bool has_zeros(const FormatSpec& f) {
  return f.kind == FormatKind::kInt && !f.symmetric;
}

}  // namespace

LogicalMatrix LogicalMatrix::sized(const FormatSpec& f, int64_t n, int64_t k) {
  const int64_t groups = has_group_scales(f) ? k / f.group_len(k) : 0;
  LogicalMatrix m;
  m.format = f;
  m.n = n;
  m.k = k;
  m.codes.resize(static_cast<size_t>(n * k));
  m.scales.resize(static_cast<size_t>(n * (groups + f.lut_entries())));
  m.zeros.resize(static_cast<size_t>(has_zeros(f) ? n * groups : 0));
  return m;
}

namespace {

/// Pairs of elements a lane owns in one tile: 8 sub-tiles x 4 registers (§2.3).
constexpr int kPairsPerLane = 32;

/// The two codes of each of a lane's pairs, in pair order.
using LanePairs = uint16_t[kPairsPerLane][2];

/// Row and column, within the tile, of the first element of pair p of lane `lane`; the
/// second element is the next column. Register r of sub-tile j: r & 1 picks row gid or
/// gid + 8, r >> 1 picks columns 2tig.. or 2tig+8.. (the mma.m16n8k16 A fragment).
struct PairPosition {
  int row, col;
};
PairPosition pair_position(int lane, int p) {
  const int gid = lane / 4, tig = lane % 4;
  const int subtile = p / 4, reg = p % 4;
  return {gid + 8 * (reg & 1), 16 * subtile + 2 * tig + 8 * (reg >> 1)};
}

/// Byte, within the tile, of word `w` of `lane` in a plane of `c` bits that starts at
/// `plane_offset`: chunk-major, then lane (§2.4).
int64_t word_byte(int64_t plane_offset, int c, int lane, int w) {
  const int chunk = std::min(16, 8 * c);
  return plane_offset + (4 * w / chunk) * (kTileLanes * chunk) + lane * chunk + (4 * w) % chunk;
}

void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void store_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
uint16_t load_le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

/// Calls fn(plane_offset, c, shift) for every plane of the format, in storage order; `shift`
/// is the position of the plane's lowest bit within a code.
template <typename Fn>
void for_each_plane(const std::vector<int>& planes, Fn fn) {
  int64_t offset = 0;
  int shift = 0;
  for (int c : planes) {
    fn(offset, c, shift);
    offset += int64_t{kTileLanes} * 8 * c;
    shift += c;
  }
}

void store_lane(const LanePairs& q, const std::vector<int>& planes, int lane, uint8_t* tile) {
  for_each_plane(planes, [&](int64_t offset, int c, int shift) {
    const int per_word = 16 / c;
    const uint32_t mask = (1u << c) - 1u;
    for (int w = 0; w < 2 * c; ++w) {
      uint32_t word = 0;
      for (int i = 0; i < per_word; ++i) {
        const int p = w * per_word + i;
        word |= ((uint32_t{q[p][0]} >> shift) & mask) << (c * i);
        word |= ((uint32_t{q[p][1]} >> shift) & mask) << (16 + c * i);
      }
      store_le32(tile + word_byte(offset, c, lane, w), word);
    }
  });
}

void load_lane(const uint8_t* tile, const std::vector<int>& planes, int lane, LanePairs& q) {
  std::memset(q, 0, sizeof(LanePairs));
  for_each_plane(planes, [&](int64_t offset, int c, int shift) {
    const int per_word = 16 / c;
    const uint32_t mask = (1u << c) - 1u;
    for (int w = 0; w < 2 * c; ++w) {
      const uint32_t word = load_le32(tile + word_byte(offset, c, lane, w));
      for (int i = 0; i < per_word; ++i) {
        const int p = w * per_word + i;
        q[p][0] = static_cast<uint16_t>(q[p][0] | ((word >> (c * i)) & mask) << shift);
        q[p][1] = static_cast<uint16_t>(q[p][1] | ((word >> (16 + c * i)) & mask) << shift);
      }
    }
  });
}

/// Scale columns a logical row holds: K / g, or 1 per-channel; 0 without group scales.
int64_t logical_groups(const FormatSpec& f, int64_t k) {
  return has_group_scales(f) ? k / f.group_len(k) : 0;
}

/// Trellis formats (§2.2): in a tile, row r's 128 / V chunks of c bits (one a step; V values a
/// state) form one little-endian bit stream of 16c / V bytes at tile byte 16c / V * r, chunk j
/// at stream bit c * j. Logically chunk j is the code of position V j; with V = 2 the code of
/// position 2j + 1 is 0.
void store_chunk(uint8_t* stream, int64_t bit, int width, uint32_t v) {
  for (int i = 0; i < width; ++i, ++bit) {
    const uint8_t m = static_cast<uint8_t>(1u << (bit % 8));
    stream[bit / 8] =
        static_cast<uint8_t>(((v >> i) & 1u) ? stream[bit / 8] | m : stream[bit / 8] & ~m);
  }
}
uint32_t load_chunk(const uint8_t* stream, int64_t bit, int width) {
  uint32_t v = 0;
  for (int i = 0; i < width; ++i, ++bit) v |= uint32_t{(stream[bit / 8] >> (bit % 8)) & 1u} << i;
  return v;
}

/// Vector formats (§2.2): lane l's code slot i = 2j + h is the vector of row gid + 8h in sub-tile
/// j, columns 16j + 2 tig + {0, 1, 8, 9}; logically its code sits at the first of them. A code's
/// bits are split into planes, least significant first (6 = 4 + 2, 8, 10 = 8 + 2, 12 = 8 + 4); in
/// a plane of c bits lane l's 16 slots are one little-endian string of 2c bytes at the plane's
/// offset (64 bytes per bit of the earlier planes) + 2c l, slot i at bit c i.
struct VectorSlot {
  int row, col;
};
VectorSlot vector_slot(int lane, int slot) {
  return {lane / 4 + 8 * (slot % 2), 16 * (slot / 2) + 2 * (lane % 4)};
}
constexpr int kVectorSlots = kTileRows * kTileCols / kVectorDim / kTileLanes;  // 16 a lane
/// Calls fn(stream, bit, width, shift) for each plane of the code in `slot` of `lane`: the code's
/// bits shift .. shift + width - 1 sit at bit `bit` of the little-endian string at `stream`.
template <typename Tile, typename Fn>
void for_each_vector_field(Tile* tile, int bits, int lane, int slot, Fn fn) {
  const int first = bits >= 8 ? 8 : 4;  // the low plane; the second holds the rest (or nothing)
  const int planes[2] = {first, bits - first};
  int64_t offset = 0;
  int shift = 0;
  for (int c : planes) {
    if (c == 0) break;
    fn(tile + offset + 2 * c * lane, int64_t{c} * slot, c, shift);
    offset += int64_t{kTileLanes} * 2 * c;
    shift += c;
  }
}

/// Writes one tile's codes, code_at(row, col) for its 16 x 128 positions (tile coordinates):
/// trellis formats as row streams, vector formats code by code in their planes (§2.2), every other
/// format lane by lane in its planes (§2.4).
template <typename CodeAt>
void store_tile(const FormatSpec& f, const std::vector<int>& planes, uint8_t* tile,
                CodeAt code_at) {
  if (f.kind == FormatKind::kVector) {
    for (int lane = 0; lane < kTileLanes; ++lane)
      for (int slot = 0; slot < kVectorSlots; ++slot) {
        const VectorSlot v = vector_slot(lane, slot);
        const uint32_t code = code_at(v.row, v.col);
        for_each_vector_field(tile, f.bits, lane, slot,
                              [&](uint8_t* stream, int64_t bit, int width, int shift) {
                                store_chunk(stream, bit, width, code >> shift);
                              });
      }
    return;
  }
  if (f.kind == FormatKind::kTrellis) {
    const int v = f.values_per_state, row_bytes = 16 * f.bits / v;
    for (int r = 0; r < kTileRows; ++r)
      for (int j = 0; j < kTileCols / v; ++j)
        store_chunk(tile + r * row_bytes, int64_t{j} * f.bits, f.bits, code_at(r, v * j));
    return;
  }
  LanePairs q;
  for (int lane = 0; lane < kTileLanes; ++lane) {
    for (int p = 0; p < kPairsPerLane; ++p) {
      const PairPosition pos = pair_position(lane, p);
      q[p][0] = static_cast<uint16_t>(code_at(pos.row, pos.col));
      q[p][1] = static_cast<uint16_t>(code_at(pos.row, pos.col + 1));
    }
    store_lane(q, planes, lane, tile);
  }
}

/// Calls visit(row, col, code) for the 16 x 128 codes of one tile (tile coordinates).
template <typename Visit>
void load_tile(const FormatSpec& f, const std::vector<int>& planes, const uint8_t* tile,
               Visit visit) {
  if (f.kind == FormatKind::kVector) {
    for (int lane = 0; lane < kTileLanes; ++lane)
      for (int slot = 0; slot < kVectorSlots; ++slot) {
        const VectorSlot v = vector_slot(lane, slot);
        uint32_t code = 0;
        for_each_vector_field(tile, f.bits, lane, slot,
                              [&](const uint8_t* stream, int64_t bit, int width, int shift) {
                                code |= load_chunk(stream, bit, width) << shift;
                              });
        visit(v.row, v.col, static_cast<uint16_t>(code));
        for (int c : {1, 8, 9}) visit(v.row, v.col + c, uint16_t{0});
      }
    return;
  }
  if (f.kind == FormatKind::kTrellis) {
    const int v = f.values_per_state, row_bytes = 16 * f.bits / v;
    for (int r = 0; r < kTileRows; ++r) {
      for (int j = 0; j < kTileCols / v; ++j) {
        const uint32_t chunk = load_chunk(tile + r * row_bytes, int64_t{j} * f.bits, f.bits);
        visit(r, v * j, static_cast<uint16_t>(chunk));
        if (v == 2) visit(r, 2 * j + 1, uint16_t{0});
      }
    }
    return;
  }
  LanePairs q;
  for (int lane = 0; lane < kTileLanes; ++lane) {
    load_lane(tile, planes, lane, q);
    for (int p = 0; p < kPairsPerLane; ++p) {
      const PairPosition pos = pair_position(lane, p);
      visit(pos.row, pos.col, q[p][0]);
      visit(pos.row, pos.col + 1, q[p][1]);
    }
  }
}

/// Code stored at (row, col) of the padded matrix. Padding holds the zero point of its
/// group (§2.1): 0 for dense and LUT formats; 2^(b-1) for symmetric; for asymmetric the stored
/// zero, which is 0 for padded rows and padded groups. Per-channel has one group a row, so a
/// real row's padded columns take that row's zero.
uint16_t padded_code(const LogicalMatrix& m, int64_t groups, int64_t row, int64_t col) {
  if (row < m.n && col < m.k) return m.codes[static_cast<size_t>(row * m.k + col)];
  if (m.format.kind != FormatKind::kInt) return 0;
  if (m.format.symmetric) return static_cast<uint16_t>(1u << (m.format.bits - 1));
  if (row < m.n && m.format.group_size == 0) return m.zeros[static_cast<size_t>(row * groups)];
  return 0;
}

bool same_layout(const PackedLayout& a, const PackedLayout& b) {
  return a.n == b.n && a.k == b.k && a.n_pad == b.n_pad && a.k_pad == b.k_pad &&
         a.groups_pad == b.groups_pad && a.tile_bytes == b.tile_bytes &&
         a.codes_bytes == b.codes_bytes && a.scales_bytes == b.scales_bytes &&
         a.zeros_bytes == b.zeros_bytes && a.codes_offset == b.codes_offset &&
         a.scales_offset == b.scales_offset && a.zeros_offset == b.zeros_offset &&
         a.total_bytes == b.total_bytes;
}

Status check_size(const char* what, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) == want) return Status::ok();
  return invalid_argument(std::string("pack: ") + what + " has " + std::to_string(got) +
                          " entries, expected " + std::to_string(want));
}

/// Value ranges of a logical matrix (codes below code_limit, zeros in b bits, scales and table
/// values finite; the codes of trellis and vector formats only at the positions that hold one),
/// the checks of docs/formats.md §1 that both pack and unpack make. `who` names the caller.
Status check_values(const LogicalMatrix& m, const std::string& who) {
  const FormatSpec& f = m.format;
  if (f.kind == FormatKind::kDense) return Status::ok();  // any 16-bit pattern is a dense code
  const bool with_zeros = has_zeros(f);
  const uint32_t limit = f.code_limit();
  uint32_t max_code = 0, max_zero = 0;
  int64_t non_finite = 0;
  const int64_t codes = static_cast<int64_t>(m.codes.size());
  const int64_t params = static_cast<int64_t>(m.scales.size());
#pragma omp parallel for reduction(max : max_code) schedule(static)
  for (int64_t i = 0; i < codes; ++i) max_code = std::max<uint32_t>(max_code, m.codes[i]);
  for (int64_t i = 0; i < params; ++i) {
    non_finite += (m.scales[i] & 0x7c00u) == 0x7c00u;  // fp16 exponent all ones: inf or NaN
    if (with_zeros) max_zero = std::max<uint32_t>(max_zero, m.zeros[i]);
  }
  if (max_code >= limit)
    return invalid_argument(who + ": code " + std::to_string(max_code) + " does not fit in " +
                            std::to_string(f.bits) + " bits");
  if (f.kind == FormatKind::kVector) {
    int64_t off_vector = 0;  // a vector's code sits at column 16u + 2t, its other columns hold 0
#pragma omp parallel for reduction(+ : off_vector) schedule(static)
    for (int64_t i = 0; i < codes; ++i) {
      const int64_t c = i % m.k % 16;
      off_vector += (c >= 8 || c % 2 == 1) && m.codes[i] != 0;
    }
    if (off_vector > 0)
      return invalid_argument(who + ": " + std::to_string(off_vector) +
                              " code(s) off the first column of their vector are not 0 (" +
                              f.to_string() + " keeps one code per 4 weights, at column 16u + 2t)");
  }
  if (f.kind == FormatKind::kTrellis && f.values_per_state == 2) {
    int64_t odd_nonzero = 0;  // a step's chunk is the code of its first position only
#pragma omp parallel for reduction(+ : odd_nonzero) schedule(static)
    for (int64_t i = 1; i < codes; i += 2) odd_nonzero += m.codes[i] != 0;
    if (odd_nonzero > 0)
      return invalid_argument(who + ": " + std::to_string(odd_nonzero) +
                              " code(s) at odd positions are not 0 (" + f.to_string() +
                              " keeps one chunk per two weights, at the even position)");
  }
  if (max_zero >= limit)
    return invalid_argument(who + ": zero point " + std::to_string(max_zero) + " does not fit in " +
                            std::to_string(f.bits) + " bits");
  if (non_finite > 0)
    return invalid_argument(who + ": " + std::to_string(non_finite) +
                            (f.kind == FormatKind::kLut ? " table value(s)" : " scale(s)") +
                            " are inf or NaN");
  return Status::ok();
}

/// Sizes and value ranges of a logical matrix whose format and dims are already valid.
Status validate_logical(const LogicalMatrix& m) {
  const FormatSpec& f = m.format;
  const int64_t groups = logical_groups(f, m.k);
  QMOE_RETURN_IF_ERROR(check_size("codes", m.codes.size(), m.n * m.k));
  QMOE_RETURN_IF_ERROR(check_size("scales", m.scales.size(), m.n * (groups + f.lut_entries())));
  QMOE_RETURN_IF_ERROR(check_size("zeros", m.zeros.size(), has_zeros(f) ? m.n * groups : 0));
  return check_values(m, "pack");
}

/// Bytes outside the sections (the gaps before scales and zeros, and the tail) are 0 (§2).
Status check_gaps(const PackedMatrix& p) {
  const PackedLayout& L = p.layout;
  const int64_t gaps[][2] = {{L.codes_offset + L.codes_bytes, L.scales_offset},
                             {L.scales_offset + L.scales_bytes, L.zeros_offset},
                             {L.zeros_offset + L.zeros_bytes, L.total_bytes}};
  for (const auto& gap : gaps)
    for (int64_t b = gap[0]; b < gap[1]; ++b)
      if (p.blob[static_cast<size_t>(b)] != 0)
        return invalid_argument("unpack: byte " + std::to_string(b) +
                                ", outside every section, is " +
                                std::to_string(p.blob[static_cast<size_t>(b)]) + " instead of 0");
  return Status::ok();
}

/// LUT formats: copies the tables of the real rows into m (sized already) and checks that
/// those of padded rows are 0 (§2.1, §2.5).
Status read_tables(const PackedMatrix& p, LogicalMatrix* m) {
  const PackedLayout& L = p.layout;
  const int entries = p.format.lut_entries();
  const uint8_t* tables = p.blob.data() + L.scales_offset;
  for (int64_t row = 0; row < L.n_pad; ++row) {
    for (int q = 0; q < entries; ++q) {
      const int64_t at = lut_index(p.format, row, q);
      const uint16_t v = load_le16(tables + 2 * at);
      if (row < L.n)
        m->scales[static_cast<size_t>(at)] = v;
      else if (v != 0)
        return invalid_argument("unpack: table entry " + std::to_string(q) + " of padded row " +
                                std::to_string(row) + " has bits " + std::to_string(v) +
                                "; it must be 0");
    }
  }
  return Status::ok();
}

/// Copies the scales and zeros of the real groups into m (sized already) and checks that those
/// of padded rows and padded groups are 0 (§2.1, §2.5).
Status read_group_params(const PackedMatrix& p, int64_t groups, LogicalMatrix* m) {
  if (p.format.kind == FormatKind::kLut) return read_tables(p, m);
  const PackedLayout& L = p.layout;
  const uint8_t* blob = p.blob.data();
  const bool with_zeros = has_zeros(p.format);
  for (int64_t row = 0; row < L.n_pad; ++row) {
    for (int64_t j = 0; j < L.groups_pad; ++j) {
      const int64_t at = group_param_index(p.format, L, row, j);
      const uint16_t s = load_le16(blob + L.scales_offset + 2 * at);
      const uint8_t z = with_zeros ? blob[L.zeros_offset + at] : 0;
      if (row < L.n && j < groups) {
        m->scales[static_cast<size_t>(row * groups + j)] = s;
        if (with_zeros) m->zeros[static_cast<size_t>(row * groups + j)] = z;
      } else if (s != 0 || z != 0) {
        return invalid_argument("unpack: padded group (row " + std::to_string(row) + ", group " +
                                std::to_string(j) + ") has scale bits " + std::to_string(s) +
                                " and zero " + std::to_string(z) + "; both must be 0");
      }
    }
  }
  return Status::ok();
}

Status pack_checked(const LogicalMatrix& logical, PackedMatrix* out) {
  if (out == nullptr) return invalid_argument("pack: null output");
  PackedLayout layout;
  QMOE_RETURN_IF_ERROR(packed_layout(logical.format, logical.n, logical.k, &layout));
  QMOE_RETURN_IF_ERROR(validate_logical(logical));

  const FormatSpec& f = logical.format;
  const std::vector<int> planes = plane_bits(f);
  const int64_t groups = logical_groups(f, logical.k);
  PackedMatrix packed;
  packed.format = f;
  packed.layout = layout;
  packed.blob.assign(static_cast<size_t>(layout.total_bytes), 0);
  uint8_t* blob = packed.blob.data();

  const int64_t tiles_k = layout.k_pad / kTileCols;
  const int64_t tiles = layout.n_pad / kTileRows * tiles_k;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t row0 = t / tiles_k * kTileRows, col0 = t % tiles_k * kTileCols;
    store_tile(f, planes, blob + layout.codes_offset + t * layout.tile_bytes,
               [&](int r, int c) { return padded_code(logical, groups, row0 + r, col0 + c); });
  }

  // LUT tables: row-major (§2.5), padded rows stay 0.
  if (f.kind == FormatKind::kLut) {
    for (size_t i = 0; i < logical.scales.size(); ++i) {
      store_le16(blob + layout.scales_offset + 2 * i, logical.scales[i]);
    }
  }
  // Scales and zeros: real (row, group) entries; padded rows and groups stay 0.
  for (int64_t row = 0; row < logical.n; ++row) {
    for (int64_t j = 0; j < groups; ++j) {
      const size_t src = static_cast<size_t>(row * groups + j);
      const int64_t dst = group_param_index(f, layout, row, j);
      store_le16(blob + layout.scales_offset + 2 * dst, logical.scales[src]);
      if (has_zeros(f)) blob[layout.zeros_offset + dst] = logical.zeros[src];
    }
  }
  *out = std::move(packed);
  return Status::ok();
}

Status unpack_checked(const PackedMatrix& packed, LogicalMatrix* out) {
  if (out == nullptr) return invalid_argument("unpack: null output");
  const FormatSpec& f = packed.format;
  PackedLayout layout;
  QMOE_RETURN_IF_ERROR(packed_layout(f, packed.layout.n, packed.layout.k, &layout));
  if (!same_layout(layout, packed.layout))
    return invalid_argument("unpack: layout does not match format " + f.to_string() + " and dims");
  if (static_cast<int64_t>(packed.blob.size()) != layout.total_bytes)
    return invalid_argument("unpack: blob has " + std::to_string(packed.blob.size()) +
                            " bytes, layout needs " + std::to_string(layout.total_bytes));
  QMOE_RETURN_IF_ERROR(check_gaps(packed));

  const int64_t n = layout.n, k = layout.k;
  const int64_t groups = logical_groups(f, k);
  LogicalMatrix m = LogicalMatrix::sized(f, n, k);
  QMOE_RETURN_IF_ERROR(read_group_params(packed, groups, &m));

  // Real codes are copied; padded ones must be what pack writes there (their group's zero
  // point, read from m.zeros), so that every blob unpack accepts is one pack produces.
  const std::vector<int> planes = plane_bits(f);
  const uint8_t* blob = packed.blob.data();
  const int64_t tiles_k = layout.k_pad / kTileCols;
  const int64_t tiles = layout.n_pad / kTileRows * tiles_k;
  int64_t first_bad_padding = std::numeric_limits<int64_t>::max();  // row * k_pad + col
#pragma omp parallel for reduction(min : first_bad_padding) schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t row0 = t / tiles_k * kTileRows, col0 = t % tiles_k * kTileCols;
    load_tile(f, planes, blob + layout.codes_offset + t * layout.tile_bytes,
              [&](int r, int c, uint16_t q) {
                const int64_t row = row0 + r, col = col0 + c;
                if (row < n && col < k)
                  m.codes[static_cast<size_t>(row * k + col)] = q;
                else if (q != padded_code(m, groups, row, col))
                  first_bad_padding = std::min(first_bad_padding, row * layout.k_pad + col);
              });
  }
  if (first_bad_padding != std::numeric_limits<int64_t>::max()) {
    const int64_t row = first_bad_padding / layout.k_pad, col = first_bad_padding % layout.k_pad;
    return invalid_argument("unpack: padded code at (" + std::to_string(row) + ", " +
                            std::to_string(col) + ") is not " +
                            std::to_string(padded_code(m, groups, row, col)) +
                            ", the value padding holds there (docs/formats.md §2.1)");
  }
  QMOE_RETURN_IF_ERROR(check_values(m, "unpack"));
  *out = std::move(m);
  return Status::ok();
}

}  // namespace

Status pack(const LogicalMatrix& logical, PackedMatrix* out) {
  return detail::run_catching("pack", [&] { return pack_checked(logical, out); });
}

Status unpack(const PackedMatrix& packed, LogicalMatrix* out) {
  return detail::run_catching("unpack", [&] { return unpack_checked(packed, out); });
}

}  // namespace qmoe
