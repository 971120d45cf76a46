// qmoe/packed.hpp — packed matrices and expert banks (host-side owners).
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/format.hpp"
#include "qmoe/status.hpp"

namespace qmoe {

/// Logical (unpacked) form of one quantized matrix W[n, k], as quantizers produce it and as
/// docs/formats.md §1 defines it. Row-major; G = number of groups per row (k/group, or 1).
///  - kInt:   codes[n*k] in [0, 2^bits); scales[n*G] fp16 bits; zeros[n*G] (asymmetric only,
///            each in [0, 2^bits)). Weight = (code - zero) * scale, zero = 2^(bits-1) if sym.
///  - kLut:   codes[n*k] in [0, 2^bits); scales[n * 2^bits] the rows' tables (fp16 bits, row r's
///            entry q at r * 2^bits + q); zeros empty. Weight = scales[row * 2^bits + code].
///  - kTrellis: codes[n*k] in [0, 2^bits), each position's chunk of its block's code bits;
///            scales[n*G] fp16 bits (G = k / 128); zeros empty. Weight = sigma_t (H v)_t * scale,
///            v_t = c(state_t), state_t formed from the chunks of 12 / bits consecutive positions
///            (docs/formats.md §1).
///  - kVector: codes[n*k] in [0, 2^bits), a vector's code at its first column 16u + 2t and 0 at
///            its other three (16u + 2t + {1, 8, 9}); scales[n*G] fp16 bits (G = k / 128); zeros
///            empty. Weight = +-M[code mod 2^(bits-4)][d] * scale (docs/formats.md §1).
///  - kDense: codes[n*k] hold the bf16/fp16 bit patterns; scales/zeros empty.
struct LogicalMatrix {
  /// A zero-filled matrix of format f with every array sized for [n, k] (G = k / group for
  /// int, trellis and vector formats; n * 2^bits table entries for LUT formats; zeros only for
  /// asymmetric int; no scales/zeros for dense). No validation.
  static LogicalMatrix sized(const FormatSpec& f, int64_t n, int64_t k);

  FormatSpec format;
  int64_t n = 0, k = 0;
  std::vector<uint16_t> codes;
  std::vector<uint16_t> scales;
  std::vector<uint8_t> zeros;
};

/// One matrix in the kernel-native tiled layout (docs/formats.md §2): a single byte blob
/// holding the code tiles, the fp16 scales and the zeros, each section 256-byte aligned.
struct PackedMatrix {
  FormatSpec format;
  PackedLayout layout;
  std::vector<uint8_t> blob;

  int64_t n() const { return layout.n; }
  int64_t k() const { return layout.k; }
  /// Bytes that carry information (codes + scales + zeros incl. tile padding, no alignment gaps).
  int64_t payload_bytes() const {
    return layout.codes_bytes + layout.scales_bytes + layout.zeros_bytes;
  }
};

/// Repack the logical form into tiles. Errors: codes/zeros out of range, size mismatch,
/// non-finite scale or table value. On error *out is left untouched.
Status pack(const LogicalMatrix& logical, PackedMatrix* out);
/// Inverse of pack (exact). Errors (kInvalidArgument, *out untouched): blob size or layout
/// not those of the format, zeros >= 2^bits, non-finite scales or table values, padding that
/// is not what pack writes (docs/formats.md §2.1), non-zero gap/tail bytes.
Status unpack(const PackedMatrix& packed, LogicalMatrix* out);

/// Per-expert descriptor the kernels read on device. Plain data, identical on host and device.
/// Offsets are bytes from the start of the bank blob.
struct ExpertDesc {
  uint64_t codes_offset;
  uint64_t scales_offset;  ///< unused for dense; a LUT format's tables
  uint64_t zeros_offset;   ///< used only by asymmetric int formats
  uint8_t kind;            ///< FormatKind
  uint8_t dense_dtype;     ///< DType, for kDense
  uint8_t bits;            ///< code bits (16 for dense)
  uint8_t symmetric;       ///< 1: zero point is 2^(bits-1), no zeros section
  int32_t group_size;      ///< effective group length along K (K for per-channel), >= 1
  int32_t groups_pad;      ///< scale columns per row; a strip's parameter blocks hold 16 * this
                           ///< entries (docs/formats.md §2.5)
  int32_t tile_bytes;      ///< bytes of one 16x128 code tile
};

/// Descriptor of a matrix of format f and layout L whose blob starts at byte `base` of an
/// image. The one place descriptors are made (banks, benchmarks).
ExpertDesc make_expert_desc(const FormatSpec& f, const PackedLayout& L, int64_t base);

/// E experts of one projection, all [n, k], each in its own format.
class ExpertBank {
 public:
  /// Takes ownership; errors if the list is empty or dims differ.
  static Status create(std::vector<PackedMatrix> experts, ExpertBank* out);

  int64_t num_experts() const { return static_cast<int64_t>(experts_.size()); }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  const PackedMatrix& expert(int64_t e) const { return experts_[static_cast<size_t>(e)]; }

  /// One contiguous image of all experts (each 256-byte aligned) and its descriptor table:
  /// what a device bank uploads verbatim. Errors: null outputs (kInvalidArgument), out of
  /// memory (kOutOfRange); outputs untouched on error.
  Status build_image(std::vector<uint8_t>* blob, std::vector<ExpertDesc>* descs) const;
  /// Bytes of the image (sum of aligned experts).
  int64_t image_bytes() const;

 private:
  std::vector<PackedMatrix> experts_;
  int64_t n_ = 0, k_ = 0;
};

}  // namespace qmoe
