// qmoe/format.hpp — weight formats: what they are, how they are named, what they cost.
// The bit-exact layout of every format is specified in docs/formats.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "qmoe/status.hpp"

namespace qmoe {

/// Activation / dense weight element type.
enum class DType : uint8_t { kBF16 = 0, kFP16 = 1 };

enum class FormatKind : uint8_t {
  kDense = 0,    ///< 16-bit weights stored as-is (dense_dtype says bf16 or fp16)
  kInt = 1,      ///< group-wise uniform integer codes: w = (q - z) * s
  kLut = 2,      ///< non-uniform: w = lut[row][q], a learned table of 2^bits fp16 values a row
  kTrellis = 3,  ///< bitshift trellis: w = sigma_t (H c(states))_t * s, a state a window of the
                 ///< row's code bits, H a 128-point Hadamard transform
  kVector = 4,   ///< vector codebook: 4 weights share one code, w = +-M[m][d] * s, M a fixed
                 ///< table of 4 to 256 magnitude vectors, 4 sign bits a code
};

/// A weight format: kind + parameters. Parsed from / printed to short strings:
///   "bf16", "fp16", "int4:g128", "int3:g64:sym", "int8:pc", "int2:g32:asym", "nuq3", "tcq2.5",
///   "vq2".
/// Integer formats: bits in {2,3,4,8}; group_size in {32,64,128} along K (input dim),
/// or 0 = per-channel (one group spans the whole row). Default is asymmetric.
/// Non-uniform (LUT) formats "nuq<b>": bits in {2,3,4}; each row has its own table of 2^b
/// fp16 values and a code indexes it (no groups, no zero points).
/// Trellis formats "tcq<r>": a tail-biting bitshift trellis (L = 12 state bits) over each row's
/// 128-input blocks, a computed Gaussian code, a Hadamard rotation and one fp16 scale per block
/// (group_size 128). bits = code bits a trellis step shifts in; values_per_state = weights a
/// state codes: "tcq2", "tcq3", "tcq4" (1 value, bits 2, 3, 4) and the fractional rates
/// "tcq1.5", "tcq2.5", "tcq3.5" (2 values, bits 3, 5, 7). On the device they run on the decode
/// kernel and the tile kernels, which multiply the codes' values (the tile kernels: times the
/// scale, in fp16) by the rotated activations (cuda/decode/trellis.cuh).
/// Vector formats "vq<r>": 4 weights of a row (a lane's A-fragment row in one k16 sub-tile)
/// share one 4r-bit code into a fixed codebook (2^(4r - 4) magnitude vectors x 16 sign
/// patterns), one fp16 scale per 128 inputs (group_size 128); bits = code bits a vector,
/// values_per_state = 4: "vq1.5", "vq2", "vq2.5", "vq3" (bits 6, 8, 10, 12).
struct FormatSpec {
  FormatKind kind = FormatKind::kDense;
  DType dense_dtype = DType::kBF16;  ///< only for kDense
  int bits = 16;             ///< code bits per weight (16 for dense; per trellis step for kTrellis,
                             ///< per 4-weight vector for kVector)
  int group_size = 0;        ///< kInt: 32, 64, 128 or 0 = per-channel; kTrellis, kVector: 128;
                             ///< else 0
  bool symmetric = false;    ///< only for kInt: z = 2^(bits-1) fixed, no zeros stored
  int values_per_state = 1;  ///< kTrellis: 1, or 2 for the fractional rates; kVector: 4 (weights
                             ///< a code covers); else 1

  static FormatSpec dense(DType t);
  static FormatSpec integer(int bits, int group_size, bool symmetric);
  static FormatSpec lut(int bits);
  static FormatSpec trellis(int step_bits, int values_per_state = 1);
  static FormatSpec vector(int code_bits);

  /// Parse a short string. Errors: kInvalidArgument with the offending text.
  static Status parse(const std::string& text, FormatSpec* out);
  /// Canonical short string (parse(to_string()) round-trips).
  std::string to_string() const;
  /// Checks the parameters are a supported combination and that the fields the kind does
  /// not use keep their defaults (so two valid specs are == iff they print the same string).
  /// Errors: kInvalidArgument naming the bad field.
  Status validate() const;

  /// Exact storage bits per weight of an unpadded [N, K] matrix, scales and zeros included:
  /// bits + (16 [+ 8 if asymmetric]) / group, where group = K for per-channel; for a LUT
  /// format bits + 16 * 2^bits / K (the row's table); for trellis and vector formats
  /// bits / values_per_state + 16 / 128 (a vector format's codebook is part of the format, not
  /// stored).
  double bits_per_weight(int64_t k_in) const;
  /// Effective group length for a row of k_in inputs (k_in for per-channel and LUT formats:
  /// a LUT format's one table serves the whole row).
  int64_t group_len(int64_t k_in) const { return group_size == 0 ? k_in : group_size; }
  /// Entries of a LUT format's per-row table, 2^bits; 0 for other kinds.
  int lut_entries() const { return kind == FormatKind::kLut ? 1 << bits : 0; }
  /// Largest code + 1: 2^bits.
  uint32_t code_limit() const { return 1u << bits; }

  bool operator==(const FormatSpec& o) const {
    return kind == o.kind && dense_dtype == o.dense_dtype && bits == o.bits &&
           group_size == o.group_size && symmetric == o.symmetric &&
           values_per_state == o.values_per_state;
  }
  bool operator!=(const FormatSpec& o) const { return !(*this == o); }
};

/// Every format the library supports, in a stable order (the registry tests iterate it).
const std::vector<FormatSpec>& all_formats();

/// "bf16" or "fp16".
const char* dtype_name(DType t);

// ---- Tiled layout constants (docs/formats.md §2). -------------------------------------
/// Output rows per tile: the M of one mma.sync m16n8k16 A fragment.
constexpr int kTileRows = 16;
/// Inputs per tile: 8 k16 sub-tiles, so every group size (32/64/128) divides a tile.
constexpr int kTileCols = 128;
/// Lanes of a warp; each owns 64 weights of a tile (its A fragments for 8 sub-tiles).
constexpr int kTileLanes = 32;
/// State bits of the trellis formats' bitshift trellis (docs/formats.md §1): a step's state is
/// the 12 code bits of its block's circular chunk string starting at the step's own chunk.
constexpr int kTrellisStateBits = 12;
/// Weights a code of a vector format covers: columns 16u + 2t + {0, 1, 8, 9} of one row, a
/// lane's elements of one A-fragment row in one k16 sub-tile (docs/formats.md §1).
constexpr int kVectorDim = 4;
/// Byte alignment of every section (codes, scales, zeros) and of every expert in a bank.
constexpr int64_t kSectionAlign = 256;

/// Bit planes of a format, most-significant last: int3 = {2, 1} (low 2 bits, then bit 2);
/// a LUT format's codes are stored exactly as the int format's of the same bits. Trellis and
/// vector formats have none here (empty: their tiles hold row streams, and a vector format's
/// codes per vector in its own planes of docs/formats.md §2.2, not §2.4's).
std::vector<int> plane_bits(const FormatSpec& f);

/// Byte sizes of the sections of a packed [N, K] matrix (docs/formats.md §2).
struct PackedLayout {
  int64_t n = 0, k = 0;          ///< logical dims
  int64_t n_pad = 0, k_pad = 0;  ///< padded to kTileRows / kTileCols
  int64_t groups_pad = 0;        ///< scale columns per row (k_pad/group, or 1 per-channel;
                                 ///< 0 for dense and LUT formats)
  int64_t tile_bytes = 0;        ///< bytes of one 16x128 tile of codes
  /// scales_bytes: a LUT format's tables (n_pad rows x 2^bits fp16) live in the scales section.
  int64_t codes_bytes = 0, scales_bytes = 0, zeros_bytes = 0;
  int64_t codes_offset = 0, scales_offset = 0, zeros_offset = 0;  ///< in the blob
  int64_t total_bytes = 0;  ///< blob size, sections 256-byte aligned
};

/// Layout of an [n_out, k_in] matrix in format f. Errors on bad dims / format.
Status packed_layout(const FormatSpec& f, int64_t n_out, int64_t k_in, PackedLayout* out);

/// Entry index of (row, group) in the scales (fp16, byte 2 * index) and zeros (uint8, byte
/// index) sections of an int, trellis or vector format: parameter blocks per (strip, tile column),
/// rows in lane order (docs/formats.md §2.5). row < n_pad, group < groups_pad; -1 for other kinds.
int64_t group_param_index(const FormatSpec& f, const PackedLayout& layout, int64_t row,
                          int64_t group);

/// Entry index of table value `code` of `row` in the scales section of a LUT format (fp16 at
/// byte 2 * index): row-major, row * 2^bits + code (docs/formats.md §2.5). -1 for other kinds.
int64_t lut_index(const FormatSpec& f, int64_t row, int code);

}  // namespace qmoe
