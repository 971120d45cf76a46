// cpu_ref/formats/tiles.cpp — the packed layout of docs/formats.md §2, recomputed from the
// spec, and the walk over tiles, lanes, pairs and bit planes that recovers logical codes.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "decode.hpp"

namespace qmoe::ref::detail {
namespace {

// Elements e = 0..7 of a lane inside one 16x16 sub-tile (§2.3): row = gid + kElemRow[e],
// column = 2*tig + kElemCol[e] (the mma.m16n8k16 A fragment).
constexpr int kElemRow[8] = {0, 0, 8, 8, 0, 0, 8, 8};
constexpr int kElemCol[8] = {0, 1, 0, 1, 8, 9, 8, 9};
constexpr int kSubTiles = kTileCols / 16;  // k16 sub-tiles per tile
constexpr int kWordsChunkMaxBytes = 16;    // one 16-byte load per lane per chunk (§2.4)
// Caps that keep every size product below 2^63 (and every blob addressable).
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxWeights = int64_t{1} << 40;

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// Bits per plane, least significant first (§2.4).
std::vector<int> planes_of(const FormatSpec& f) {
  if (f.kind == FormatKind::kDense) return {16};
  // Row streams, and codes per vector in §2.2's own planes (vector.cpp).
  if (f.kind == FormatKind::kTrellis || f.kind == FormatKind::kVector) return {};
  if (f.bits == 3) return {2, 1};
  return {f.bits};
}

Status check_format(const FormatSpec& f) {
  // First: the layout divides by it, whatever the kind.
  if (f.kind == FormatKind::kVector
          ? f.values_per_state != 4
          : f.values_per_state != 1 && !(f.kind == FormatKind::kTrellis && f.values_per_state == 2))
    return invalid_argument(
        "ref: values_per_state must be 1, or 2 for a trellis format, or 4 for a vector format");
  if (f.kind == FormatKind::kDense) {
    if (f.bits != 16 || (f.dense_dtype != DType::kBF16 && f.dense_dtype != DType::kFP16))
      return invalid_argument("ref: dense format needs bits 16 and dtype bf16/fp16");
    // Fields a kind does not use keep their defaults (qmoe/format.hpp).
    if (f.group_size != 0 || f.symmetric)
      return invalid_argument("ref: dense formats need group size 0 and symmetric false");
    return Status::ok();
  }
  if (f.kind == FormatKind::kVector) {  // §1: 6, 8, 10 or 12 code bits, a scale per 128 inputs
    if ((f.bits != 6 && f.bits != 8 && f.bits != 10 && f.bits != 12) || f.group_size != kTileCols ||
        f.symmetric || f.dense_dtype != DType::kBF16)
      return invalid_argument(
          "ref: vector formats need 6, 8, 10 or 12 code bits, group size 128, symmetric false "
          "and the default dtype");
    return Status::ok();
  }
  if (f.kind == FormatKind::kTrellis && f.values_per_state == 2) {
    // §1: the half-integer rates, 3, 5 or 7 bits a step coding two positions.
    if (f.bits != 3 && f.bits != 5 && f.bits != 7)
      return invalid_argument("ref: two-value trellis formats take 3, 5 or 7 bits a step, got " +
                              std::to_string(f.bits));
  } else if ((f.kind == FormatKind::kLut || f.kind == FormatKind::kTrellis) && f.bits != 2 &&
             f.bits != 3 && f.bits != 4) {
    return invalid_argument("ref: LUT and trellis format bits must be 2, 3 or 4, got " +
                            std::to_string(f.bits));
  }
  if (f.kind == FormatKind::kLut || f.kind == FormatKind::kTrellis) {
    const int group = f.kind == FormatKind::kTrellis ? kTileCols : 0;
    if (f.group_size != group || f.symmetric || f.dense_dtype != DType::kBF16)
      return invalid_argument(
          "ref: LUT formats need group size 0, trellis formats 128; both "
          "need symmetric false and the default dtype");
    return Status::ok();
  }
  if (f.kind != FormatKind::kInt) return invalid_argument("ref: unknown format kind");
  if (f.bits != 2 && f.bits != 3 && f.bits != 4 && f.bits != 8)
    return invalid_argument("ref: int format bits must be 2, 3, 4 or 8, got " +
                            std::to_string(f.bits));
  if (f.group_size != 0 && f.group_size != 32 && f.group_size != 64 && f.group_size != 128)
    return invalid_argument("ref: int group size must be 32, 64, 128 or 0 (per-channel), got " +
                            std::to_string(f.group_size));
  if (f.dense_dtype != DType::kBF16)
    return invalid_argument("ref: int formats need the default dtype");
  return Status::ok();
}

Status compute_layout(const FormatSpec& f, int64_t n, int64_t k, Layout* L) {
  QMOE_RETURN_IF_ERROR(check_format(f));
  if (n < 1 || k < 1 || n >= kMaxDim || k >= kMaxDim || n * k > kMaxWeights)
    return invalid_argument("ref: bad matrix dims " + std::to_string(n) + "x" + std::to_string(k));
  const bool is_int = f.kind == FormatKind::kInt;
  // Trellis and vector formats: one scale per 128-input block, no zeros (§1).
  const bool blocks = f.kind == FormatKind::kTrellis || f.kind == FormatKind::kVector;
  L->n = n;
  L->k = k;
  L->n_pad = round_up(n, kTileRows);
  L->k_pad = round_up(k, kTileCols);
  L->planes = planes_of(f);
  // A trellis step codes values_per_state positions with `bits` bits; a vector's 4 weights
  // share 4 * bits (§2.2).
  L->tile_bytes = int64_t{kTileRows} * kTileCols * f.bits / 8 / f.values_per_state;
  L->codes_offset = 0;
  L->codes_bytes = (L->n_pad / kTileRows) * (L->k_pad / kTileCols) * L->tile_bytes;
  L->per_channel = false;
  L->group_len = L->groups = L->groups_pad = 0;
  L->scales_bytes = L->zeros_bytes = 0;
  if (is_int || blocks) {
    L->per_channel = f.group_size == 0;
    L->group_len = L->per_channel ? k : f.group_size;
    if (k % L->group_len != 0)
      return invalid_argument("ref: k = " + std::to_string(k) + " is not a multiple of group " +
                              std::to_string(L->group_len));
    L->groups = k / L->group_len;
    L->groups_pad = L->per_channel ? 1 : L->k_pad / L->group_len;
    L->scales_bytes = L->n_pad * L->groups_pad * 2;                         // fp16
    if (is_int && !f.symmetric) L->zeros_bytes = L->n_pad * L->groups_pad;  // uint8
  }
  if (f.kind == FormatKind::kLut)  // one table of 2^b fp16 values a row, padded rows too
    L->scales_bytes = L->n_pad * (int64_t{1} << f.bits) * 2;
  // Each section starts at the first multiple of 256 at or after the previous one's end, a
  // section the format lacks (size 0) too (§2: its offset follows the same rule).
  L->scales_offset = round_up(L->codes_offset + L->codes_bytes, kSectionAlign);
  L->zeros_offset = round_up(L->scales_offset + L->scales_bytes, kSectionAlign);
  const int64_t end = L->zeros_offset + L->zeros_bytes;
  L->total_bytes = round_up(end, kSectionAlign);
  return Status::ok();
}

Status field_mismatch(const char* name, int64_t given, int64_t expected) {
  return invalid_argument(std::string("ref: packed layout ") + name + " is " +
                          std::to_string(given) + ", the spec gives " + std::to_string(expected));
}

// The `bits`-wide plane value of one element (§2.4): its pair sits in word
// pair / (16/bits) at slot pair % (16/bits); the first element of the pair in the low
// 16-bit half, the second in the high half; words are stored chunk-major, then by lane.
uint32_t read_plane_bits(const uint8_t* plane, int bits, int lane, int pair, int half) {
  const int pairs_per_word = 16 / bits;
  const int word = pair / pairs_per_word;
  const int slot = pair % pairs_per_word;
  const int chunk_bytes = std::min(kWordsChunkMaxBytes, 8 * bits);
  const int byte = (4 * word / chunk_bytes) * (kTileLanes * chunk_bytes) + lane * chunk_bytes +
                   (4 * word) % chunk_bytes;
  const uint32_t v = uint32_t{plane[byte]} | uint32_t{plane[byte + 1]} << 8 |
                     uint32_t{plane[byte + 2]} << 16 | uint32_t{plane[byte + 3]} << 24;
  return (v >> (bits * slot + 16 * half)) & ((1u << bits) - 1u);
}

// Calls visit(row, col, q) for the codes of tile t whose position passes select(row, col).
// Tiles are numbered nt * (K_pad/128) + kt (§2.2); lane, sub-tile and element give the
// position (§2.3).
template <typename Select, typename Visit>
void for_each_code(const PackedMatrix& m, const Layout& L, int64_t t, Select&& select,
                   Visit&& visit) {
  const int64_t k_tiles = L.k_pad / kTileCols;
  const int64_t row0 = (t / k_tiles) * kTileRows;
  const int64_t col0 = (t % k_tiles) * kTileCols;
  const uint8_t* tile = m.blob.data() + L.codes_offset + t * L.tile_bytes;
  for (int lane = 0; lane < kTileLanes; ++lane) {
    const int gid = lane / 4, tig = lane % 4;
    for (int j = 0; j < kSubTiles; ++j) {
      for (int e = 0; e < 8; ++e) {
        const int64_t row = row0 + gid + kElemRow[e];
        const int64_t col = col0 + 16 * j + 2 * tig + kElemCol[e];
        if (!select(row, col)) continue;
        const int pair = 4 * j + e / 2;
        uint32_t q = 0;
        int shift = 0;
        const uint8_t* plane = tile;
        for (int bits : L.planes) {
          q |= read_plane_bits(plane, bits, lane, pair, e % 2) << shift;
          shift += bits;
          plane += kTileLanes * 8 * bits;  // a plane of c bits: 32 lanes x 8c bytes
        }
        visit(row, col, q);
      }
    }
  }
}

int64_t tile_count(const Layout& L) {
  return (L.n_pad / kTileRows) * (L.k_pad / kTileCols);
}

bool is_padding(const Layout& L, int64_t row, int64_t col) {
  return row >= L.n || col >= L.k;
}

// A padded code that is not the zero point of its group (int) or 0 (dense, LUT), §2.1.
struct PaddingFault {
  bool found = false;
  int64_t row = 0, col = 0;
  uint32_t code = 0, expected = 0;
};

// The first padding fault of tile t, in walk order. Allocates nothing: it runs inside an
// OpenMP region.
PaddingFault first_padding_fault(const PackedMatrix& m, const Layout& L, int64_t t) {
  const bool is_int = m.format.kind == FormatKind::kInt;
  PaddingFault fault;
  const auto padding = [&](int64_t row, int64_t col) {
    return !fault.found && is_padding(L, row, col);
  };
  for_each_code(m, L, t, padding, [&](int64_t row, int64_t col, uint32_t q) {
    const uint32_t z = is_int ? static_cast<uint32_t>(zero_point(m, L, row, group_of(L, col))) : 0;
    if (q != z) fault = {true, row, col, q, z};
  });
  return fault;
}

// Every padded code must be its group's zero point (int), or 0 (dense, LUT): §2.1. Only the
// tiles of the last row strip and of the last column hold padding; only those are read.
Status check_padded_codes(const PackedMatrix& m, const Layout& L) {
  const int64_t tiles = tile_count(L);
  const int64_t k_tiles = L.k_pad / kTileCols;
  int64_t first_bad = tiles;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t last_row = (t / k_tiles + 1) * kTileRows - 1;
    const int64_t last_col = (t % k_tiles + 1) * kTileCols - 1;
    if (is_padding(L, last_row, last_col) && first_padding_fault(m, L, t).found)
      first_bad = std::min(first_bad, t);
  }
  if (first_bad == tiles) return Status::ok();
  const PaddingFault f = first_padding_fault(m, L, first_bad);
  const std::string where =
      "ref: padded code at row " + std::to_string(f.row) + ", column " + std::to_string(f.col);
  if (m.format.kind == FormatKind::kDense)
    return invalid_argument(where + " is " + hex16(static_cast<uint16_t>(f.code)) + ", must be 0");
  if (m.format.kind == FormatKind::kLut)
    return invalid_argument(where + " is " + std::to_string(f.code) + ", must be 0");
  return invalid_argument(where + " (group " + std::to_string(group_of(L, f.col)) + ") is " +
                          std::to_string(f.code) + ", must be the group's zero point " +
                          std::to_string(f.expected));
}

// Bytes outside every section (the gaps before the 256-byte aligned sections and the tail) are
// 0 (§2).
Status check_gaps(const PackedMatrix& m, const Layout& L) {
  std::pair<int64_t, int64_t> sections[] = {{L.codes_offset, L.codes_bytes},
                                            {L.scales_offset, L.scales_bytes},
                                            {L.zeros_offset, L.zeros_bytes}};
  std::sort(std::begin(sections), std::end(sections));
  int64_t pos = 0;
  const auto zeros_until = [&](int64_t end) {
    for (; pos < end; ++pos)
      if (m.blob[static_cast<size_t>(pos)] != 0)
        return invalid_argument("ref: byte " + std::to_string(pos) +
                                " lies outside every section and is " +
                                std::to_string(m.blob[static_cast<size_t>(pos)]) + ", must be 0");
    return Status::ok();
  };
  for (const auto& [offset, bytes] : sections) {
    if (bytes == 0) continue;  // a section the format lacks
    QMOE_RETURN_IF_ERROR(zeros_until(offset));
    pos = std::max(pos, offset + bytes);
  }
  return zeros_until(L.total_bytes);
}

}  // namespace

std::string hex16(uint16_t bits) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%04X", static_cast<unsigned>(bits));
  return text;
}

Status check_packed(const PackedMatrix& m, Layout* out) {
  Layout L;
  QMOE_RETURN_IF_ERROR(compute_layout(m.format, m.layout.n, m.layout.k, &L));
  const PackedLayout& P = m.layout;
  const bool is_int = m.format.kind == FormatKind::kInt;
  const bool trellis = m.format.kind == FormatKind::kTrellis;
  const bool vector = m.format.kind == FormatKind::kVector;
  // Every field, those of sections the format lacks too (§2 fixes their offsets; groups_pad is
  // 0 for dense and LUT formats).
  struct Field {
    const char* name;
    int64_t given, expected;
  };
  const Field fields[] = {
      {"n_pad", P.n_pad, L.n_pad},
      {"k_pad", P.k_pad, L.k_pad},
      {"groups_pad", P.groups_pad, L.groups_pad},
      {"tile_bytes", P.tile_bytes, L.tile_bytes},
      {"codes_offset", P.codes_offset, L.codes_offset},
      {"codes_bytes", P.codes_bytes, L.codes_bytes},
      {"scales_offset", P.scales_offset, L.scales_offset},
      {"scales_bytes", P.scales_bytes, L.scales_bytes},
      {"zeros_offset", P.zeros_offset, L.zeros_offset},
      {"zeros_bytes", P.zeros_bytes, L.zeros_bytes},
      {"total_bytes", P.total_bytes, L.total_bytes},
  };
  for (const Field& f : fields)
    if (f.given != f.expected) return field_mismatch(f.name, f.given, f.expected);
  if (static_cast<int64_t>(m.blob.size()) != L.total_bytes)
    return invalid_argument("ref: blob holds " + std::to_string(m.blob.size()) +
                            " bytes, the layout needs " + std::to_string(L.total_bytes));
  QMOE_RETURN_IF_ERROR(check_gaps(m, L));
  // Sections first: the padded-code check reads the zero points.
  if (is_int) QMOE_RETURN_IF_ERROR(check_int_sections(m, L));
  if (m.format.kind == FormatKind::kLut) QMOE_RETURN_IF_ERROR(check_lut_tables(m, L));
  if (trellis)
    QMOE_RETURN_IF_ERROR(check_trellis(m, L));
  else if (vector)
    QMOE_RETURN_IF_ERROR(check_vector(m, L));
  else
    QMOE_RETURN_IF_ERROR(check_padded_codes(m, L));
  *out = std::move(L);
  return Status::ok();
}

void read_codes(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* codes) {
  if (m.format.kind == FormatKind::kTrellis) return read_trellis_chunks(m, L, codes);
  if (m.format.kind == FormatKind::kVector) return read_vector_codes(m, L, codes);
  codes->assign(static_cast<size_t>(L.n * L.k), 0);
  uint16_t* out = codes->data();
  const int64_t tiles = tile_count(L);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    for_each_code(
        m, L, t, [&](int64_t row, int64_t col) { return !is_padding(L, row, col); },
        [&](int64_t row, int64_t col, uint32_t q) {
          out[row * L.k + col] = static_cast<uint16_t>(q);
        });
  }
}

}  // namespace qmoe::ref::detail
