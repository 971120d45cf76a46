// cpu_ref/formats/decode.hpp — internal to the CPU reference: the packed layout recomputed
// from docs/formats.md §2 and the per-format decoders. Nothing here comes from src/: a bug
// shared by the encoder and this decoder must not be able to hide.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "qmoe/packed.hpp"
#include "qmoe/status.hpp"

namespace qmoe::ref::detail {

/// Section geometry of one packed [n, k] matrix, derived from the format alone (§2).
struct Layout {
  int64_t n = 0, k = 0;
  int64_t n_pad = 0, k_pad = 0;
  bool per_channel = false;  ///< int format with one group a row
  int64_t group_len = 0;     ///< inputs per scale group (k for per-channel; 0 for dense)
  int64_t groups = 0;        ///< logical groups per row, k / group_len (0 for dense)
  int64_t groups_pad = 0;    ///< stored scale/zero columns per row (0 for dense and LUT)
  int64_t tile_bytes = 0;
  int64_t codes_offset = 0, codes_bytes = 0;
  int64_t scales_offset = 0, scales_bytes = 0;  ///< bytes 0 where the section is absent (its
                                                ///< offset still §2's rule); LUT
                                                ///< formats keep their tables here
  int64_t zeros_offset = 0, zeros_bytes = 0;
  int64_t total_bytes = 0;  ///< blob size: end of the last section rounded up to 256
  std::vector<int> planes;  ///< bits per plane, least significant plane first
};

/// Checks that m's format is supported, that m.layout matches the layout recomputed from
/// the spec, that the blob has exactly total_bytes, that every logical scale or table entry is
/// finite and every zero < 2^bits, and that the padding is that of §2.1 (padded scales, zeros
/// and tables 0, padded codes the zero point of their group, or 0). Fills *out. Errors:
/// kInvalidArgument naming the row / group / column at fault.
Status check_packed(const PackedMatrix& m, Layout* out);

/// "0x3C00": how messages print 16-bit patterns (scales, dense codes).
std::string hex16(uint16_t bits);

/// The logical codes [n, k] (row-major) of a checked matrix, read from its tiles.
void read_codes(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* codes);

/// int and trellis formats: entry of (row, group) in the scales and zeros sections (§2.5).
int64_t param_index(const Layout& L, int64_t row, int64_t group);

/// int formats: the group of input column `col`, padded columns included (§2.1): col / g, or
/// 0 per-channel, where the row's only group also owns its padded columns k >= K.
int64_t group_of(const Layout& L, int64_t col);
/// int formats: the zero point z of (row, group): the stored zero, or 2^(bits-1) if symmetric.
int zero_point(const PackedMatrix& m, const Layout& L, int64_t row, int64_t group);
/// int formats: logical scales finite and zeros in range; padded rows' and padded groups'
/// scales and zeros 0 (§2.1, §2.5).
Status check_int_sections(const PackedMatrix& m, const Layout& L);
/// int formats: w[n, k] = (q - z) * s, exact in float32; with bf16_scales, s is first
/// rounded to bf16 (the bf16-activation value of §1, still exact in float32).
void decode_int(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                bool bf16_scales, std::vector<float>* w);

/// LUT formats: every real row's table entries finite, every padded row's table all 0 (§2.1).
Status check_lut_tables(const PackedMatrix& m, const Layout& L);
/// LUT formats: w[n, k] = T[n][q], the fp16 table entry widened exactly to float32.
void decode_lut(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                std::vector<float>* w);

/// trellis formats: real scales finite, padded rows' scales and code bits 0 (§2.1). (K is a
/// multiple of 128: there are no padded columns.)
Status check_trellis(const PackedMatrix& m, const Layout& L);
/// trellis formats: the logical chunks [n, k] (the code bits of each position) of a checked
/// matrix, read from the row streams of its tiles (§2.2).
void read_trellis_chunks(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* chunks);
/// trellis formats: w[n, k] = sigma_t (H v)_t * s with v_t = c(state_t), rounded once to
/// float32 (§1).
void decode_trellis(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& chunks,
                    std::vector<float>* w);

/// trellis and vector formats: every real row's block scales finite, every padded row's 0 (§2.1).
Status check_block_scales(const PackedMatrix& m, const Layout& L);

/// vector formats: block scales as check_block_scales, padded rows' codes 0 (§2.1). (K is a
/// multiple of 128: there are no padded columns.)
Status check_vector(const PackedMatrix& m, const Layout& L);
/// vector formats: the logical codes [n, k] of a checked matrix: each vector's code at its first
/// column 16u + 2t, 0 at its other three (§1, §2.2).
void read_vector_codes(const PackedMatrix& m, const Layout& L, std::vector<uint16_t>* codes);
/// vector formats: w[n, k] = +-M[q mod 2^(b - 4)][d] * s, exact in float32; with bf16_factors, M
/// and s are each rounded to bf16 first (the bf16-activation value of §1, still exact).
void decode_vector(const PackedMatrix& m, const Layout& L, const std::vector<uint16_t>& codes,
                   bool bf16_factors, std::vector<float>* w);

/// dense formats: w[n, k] = the stored 16-bit float, widened exactly to float32.
void decode_dense(const PackedMatrix& m, const std::vector<uint16_t>& codes, std::vector<float>* w);

}  // namespace qmoe::ref::detail
