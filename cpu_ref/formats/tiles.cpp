// cpu_ref/formats/tiles.cpp — the packed layout of docs/formats.md §2, recomputed from the
// spec, and the walk over tiles, lanes, pairs and bit planes that recovers logical codes.
#include <algorithm>
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
  if (f.bits == 3) return {2, 1};
  return {f.bits};
}

Status check_format(const FormatSpec& f) {
  if (f.kind == FormatKind::kDense) {
    if (f.bits != 16 || (f.dense_dtype != DType::kBF16 && f.dense_dtype != DType::kFP16))
      return invalid_argument("ref: dense format needs bits 16 and dtype bf16/fp16");
    return Status::ok();
  }
  if (f.kind != FormatKind::kInt) return invalid_argument("ref: unknown format kind");
  if (f.bits != 2 && f.bits != 3 && f.bits != 4 && f.bits != 8)
    return invalid_argument("ref: int format bits must be 2, 3, 4 or 8, got " +
                            std::to_string(f.bits));
  if (f.group_size != 0 && f.group_size != 32 && f.group_size != 64 && f.group_size != 128)
    return invalid_argument("ref: int group size must be 32, 64, 128 or 0 (per-channel), got " +
                            std::to_string(f.group_size));
  return Status::ok();
}

Status compute_layout(const FormatSpec& f, int64_t n, int64_t k, Layout* L) {
  QMOE_RETURN_IF_ERROR(check_format(f));
  if (n < 1 || k < 1 || n >= kMaxDim || k >= kMaxDim || n * k > kMaxWeights)
    return invalid_argument("ref: bad matrix dims " + std::to_string(n) + "x" + std::to_string(k));
  const bool is_int = f.kind == FormatKind::kInt;
  L->n = n;
  L->k = k;
  L->n_pad = round_up(n, kTileRows);
  L->k_pad = round_up(k, kTileCols);
  L->planes = planes_of(f);
  L->tile_bytes = int64_t{kTileRows} * kTileCols * f.bits / 8;
  L->codes_offset = 0;
  L->codes_bytes = (L->n_pad / kTileRows) * (L->k_pad / kTileCols) * L->tile_bytes;
  L->group_len = L->groups = L->groups_pad = 0;
  L->scales_offset = L->scales_bytes = L->zeros_offset = L->zeros_bytes = 0;
  int64_t end = L->codes_offset + L->codes_bytes;
  if (is_int) {
    const bool per_channel = f.group_size == 0;
    L->group_len = per_channel ? k : f.group_size;
    if (k % L->group_len != 0)
      return invalid_argument("ref: k = " + std::to_string(k) + " is not a multiple of group " +
                              std::to_string(L->group_len));
    L->groups = k / L->group_len;
    L->groups_pad = per_channel ? 1 : L->k_pad / L->group_len;
    L->scales_offset = round_up(end, kSectionAlign);
    L->scales_bytes = L->n_pad * L->groups_pad * 2;  // fp16
    end = L->scales_offset + L->scales_bytes;
    if (!f.symmetric) {
      L->zeros_offset = round_up(end, kSectionAlign);
      L->zeros_bytes = L->n_pad * L->groups_pad;  // uint8
      end = L->zeros_offset + L->zeros_bytes;
    }
  }
  // The blob is padded to whole 256-byte units (PackedLayout::total_bytes: "blob size,
  // sections 256-byte aligned"); §3's "total 1296 B" is where the zeros end.
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

}  // namespace

Status check_packed(const PackedMatrix& m, Layout* out) {
  Layout L;
  QMOE_RETURN_IF_ERROR(compute_layout(m.format, m.layout.n, m.layout.k, &L));
  const PackedLayout& P = m.layout;
  const bool is_int = m.format.kind == FormatKind::kInt;
  const bool has_zeros = is_int && !m.format.symmetric;
  struct Field {
    const char* name;
    int64_t given, expected;
    bool defined;  // offsets / columns of absent sections are not fixed by the spec
  };
  const Field fields[] = {
      {"n_pad", P.n_pad, L.n_pad, true},
      {"k_pad", P.k_pad, L.k_pad, true},
      {"groups_pad", P.groups_pad, L.groups_pad, is_int},
      {"tile_bytes", P.tile_bytes, L.tile_bytes, true},
      {"codes_offset", P.codes_offset, L.codes_offset, true},
      {"codes_bytes", P.codes_bytes, L.codes_bytes, true},
      {"scales_offset", P.scales_offset, L.scales_offset, is_int},
      {"scales_bytes", P.scales_bytes, L.scales_bytes, true},
      {"zeros_offset", P.zeros_offset, L.zeros_offset, has_zeros},
      {"zeros_bytes", P.zeros_bytes, L.zeros_bytes, true},
      {"total_bytes", P.total_bytes, L.total_bytes, true},
  };
  for (const Field& f : fields)
    if (f.defined && f.given != f.expected) return field_mismatch(f.name, f.given, f.expected);
  if (static_cast<int64_t>(m.blob.size()) != L.total_bytes)
    return invalid_argument("ref: blob holds " + std::to_string(m.blob.size()) +
                            " bytes, the layout needs " + std::to_string(L.total_bytes));
  if (is_int) QMOE_RETURN_IF_ERROR(check_int_sections(m, L));
  *out = std::move(L);
  return Status::ok();
}

void read_codes(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* codes) {
  codes->assign(static_cast<size_t>(L.n * L.k), 0);
  uint16_t* out = codes->data();
  const uint8_t* section = m.blob.data() + L.codes_offset;
  const int64_t k_tiles = L.k_pad / kTileCols;
  const int64_t tiles = (L.n_pad / kTileRows) * k_tiles;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    // Tiles are numbered nt * (K_pad/128) + kt (§2.2).
    const int64_t row0 = (t / k_tiles) * kTileRows;
    const int64_t col0 = (t % k_tiles) * kTileCols;
    const uint8_t* tile = section + t * L.tile_bytes;
    for (int lane = 0; lane < kTileLanes; ++lane) {
      const int gid = lane / 4, tig = lane % 4;
      for (int j = 0; j < kSubTiles; ++j) {
        for (int e = 0; e < 8; ++e) {
          const int64_t row = row0 + gid + kElemRow[e];
          const int64_t col = col0 + 16 * j + 2 * tig + kElemCol[e];
          if (row >= L.n || col >= L.k) continue;  // padding
          const int pair = 4 * j + e / 2;
          uint32_t q = 0;
          int shift = 0;
          const uint8_t* plane = tile;
          for (int bits : L.planes) {
            q |= read_plane_bits(plane, bits, lane, pair, e % 2) << shift;
            shift += bits;
            plane += kTileLanes * 8 * bits;  // a plane of c bits: 32 lanes x 8c bytes
          }
          out[row * L.k + col] = static_cast<uint16_t>(q);
        }
      }
    }
  }
}

}  // namespace qmoe::ref::detail
