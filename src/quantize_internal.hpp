// Internal to the quantizers (quantize.cpp, quantize_rtn.cpp, quantize_lut.cpp,
// quantize_gptq.cpp): the per-group scale/zero search every integer method shares, the LUT
// formats' table fit, and the GPTQ linear algebra.
#pragma once
#include <omp.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "qmoe/numeric.hpp"
#include "qmoe/quantize.hpp"

namespace qmoe::quant {

/// Records `index` in `first` (-1: none yet) unless a smaller one is there: the quantizers'
/// parallel loops report the first row or block that failed, whichever thread finds it.
inline void keep_first(std::atomic<int64_t>* first, int64_t index) {
  int64_t seen = first->load();
  while ((seen < 0 || index < seen) && !first->compare_exchange_weak(seen, index)) {
  }
}

/// s rounded to an fp16 scale in *bits; false when it overflows (inf) or is NaN.
inline bool fp16_scale(double s, uint16_t* bits) {
  *bits = float_to_fp16(static_cast<float>(s));
  return (*bits & 0x7c00u) != 0x7c00u;
}

/// Scale and zero point of one group. `scale` is the fp16 value actually stored, so codes
/// are computed against exactly the grid the decoder sees.
struct GroupParams {
  uint16_t scale_bits = 0;  ///< fp16
  float scale = 0.0f;       ///< fp16_to_float(scale_bits), > 0
  int zero = 0;             ///< in [0, 2^bits); 2^(bits-1) when symmetric
};

/// How a group's parameters are chosen: min-max, or min-max plus the MSE shrink search.
struct GroupSearch {
  int bits = 4;
  bool symmetric = false;
  bool mse = false;
  int mse_grid = 64;
  float mse_min_shrink = 0.5f;
};

/// Parameters for the `len` values x of one group. Min-max: the smallest fp16 scale whose
/// grid covers [min(x, 0), max(x, 0)] (the grid always holds 0 since z is a code), so every
/// value is within s/2 of a grid point. MSE: also tries that range shrunk by the factors
/// 1 - i/mse_grid down to mse_min_shrink and keeps the least squared decode error (ties keep
/// the wider range, so the result is never worse than min-max).
/// Returns false when the scale overflows fp16.
bool find_group_params(const double* x, int64_t len, const GroupSearch& search, GroupParams* p);

/// Code of w on the group's grid: clamp(round(w / s) + z, 0, 2^bits - 1), ties to even.
int quantize_value(double w, const GroupParams& p, int max_code);
/// The decoded value (q - z) * s, computed in float32 exactly as docs/formats.md §1.
float dequantize_value(int q, const GroupParams& p);

/// Round-to-nearest quantization of an int format (min-max or MSE group parameters).
/// Inputs are already validated; returns kOutOfRange when a scale overflows fp16.
Status quantize_rtn(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                    const GroupSearch& search, LogicalMatrix* out);

/// A LUT format's table for one row (docs/formats.md §1): ascending fp16 values.
struct RowTable {
  static constexpr int kMaxEntries = 16;  ///< nuq4
  int entries = 0;                        ///< 2^bits
  uint16_t bits[kMaxEntries] = {};        ///< fp16, what the format stores
  float value[kMaxEntries] = {};          ///< fp16_to_float(bits[e])
  double mid[kMaxEntries - 1] = {};       ///< (value[e] + value[e + 1]) / 2
};

/// Buffers fit_row_table needs for rows of up to `len` values; reserve before a parallel region.
struct TableScratch {
  void reserve(int64_t len);
  std::vector<std::pair<double, double>> sorted;
  std::vector<double> cum_w, cum_wx;
};

/// The 2^bits-entry table minimising sum weight[i] (x[i] - table[code_i])^2 over codes by
/// weighted Lloyd from the weighted quantiles (a local optimum), rounded to fp16, ascending.
/// weight may be null (all 1); all-zero weights count as all 1. Allocates nothing (scratch
/// reserved for len). Returns false when a value overflows fp16.
bool fit_row_table(const double* x, const double* weight, int64_t len, int bits,
                   TableScratch* scratch, RowTable* table);

/// Index of the table value nearest w; a tie goes to the lower entry.
int nearest_entry(double w, const RowTable& table);

/// Round-to-nearest quantization of a LUT format: each row's table by fit_row_table (unweighted),
/// codes by nearest_entry. Returns kOutOfRange when a table overflows fp16.
Status quantize_lut_rtn(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                        LogicalMatrix* out);

/// The trellis formats' computed codes (docs/formats.md §1, "1MAD"): value 0 of a state is the
/// byte sum of 34038481 * state + 76625530 (mod 2^32), minus 510 (-448 to 454 over the 4096
/// states, standard deviation 148.4); value 1 (two-value formats) the same of
/// 2654435761 * state + 2135587861, nearly uncorrelated with value 0.
int trellis_code(uint32_t state, int value = 0);

/// The trellis formats' input signs (docs/formats.md §1): sigma_t = -1 where the low 32 bits of
/// 2654435761 t reach 2^31, else +1; t is the position in the block.
int trellis_sign(int t);

/// z = H (sigma . w) / 128 for one block w[0, 128), H the Sylvester Hadamard matrix (H H = 128 I):
/// the rotated block. A Viterbi path for z at scale s decodes, through the format's inverse
/// rotation, to weights whose squared error is 128 times the path's (H / sqrt(128) is
/// orthogonal).
void trellis_rotate(const double* w, double* z);

/// The exact weights of row `row` of a logical trellis matrix (docs/formats.md §1), out[0, k).
void trellis_decode_row(const LogicalMatrix& m, int64_t row, float* out);

/// One thread's Viterbi search over trellis blocks (128 positions) of `bits`-bit chunks, one a
/// step, each state coding `values` positions (docs/formats.md §1), its buffers sized once.
class TrellisSearch {
 public:
  TrellisSearch(int bits, int values);
  /// The least-squares tail-biting path for x[0, 128) at scale s: its 128 / values states (the
  /// lowest chunk of state p is step p's chunk) and its squared error. The overlap the first and
  /// last windows share is taken from a free path over the 64 steps around the block's wrap (the
  /// whole block when it has 64 steps), so the path is optimal among those with that overlap,
  /// not always overall. Allocates nothing.
  double path(const double* x, double s, uint32_t* states);
  /// One block w[0, 128) of a row: rotated (trellis_rotate), a scale matched to its RMS (with
  /// mse, also the least-squares scale of that path, whichever path errs less), the path's chunks
  /// as the logical codes chunks[0, 128) (step p's at position values * p, 0 elsewhere) and the
  /// fp16 scale into *scale_bits. False when the scale overflows.
  bool quantize_block(const double* w, bool mse, uint16_t* chunks, uint16_t* scale_bits);
  /// trellis_decode_block with this search's format.
  void decode_block(const uint16_t* chunks, uint16_t scale_bits, float* out) const;

 private:
  /// Viterbi over the first `steps` steps of x; overlap >= 0 pins the start state's low and the
  /// end state's high 12 - bits bits to it, overlap < 0 leaves both free.
  double viterbi(const double* x, double s, int overlap, int steps, uint32_t* states);
  int bits_, values_, steps_, runs_;  ///< runs_ = 2^(12 - bits): predecessor groups
  const std::vector<double>& code_;   ///< [values][4096]: value i of state S
  const std::vector<float>& code_f_;  ///< the same in float, for the Viterbi steps
  // Path costs in float: twice the SIMD width of double; the error path() returns is
  // recomputed in double from the path's states.
  std::vector<float> cost_, next_, run_min_;
  std::vector<uint8_t> back_;  ///< [steps - 1][runs_]: each run's best lowest chunk
  std::vector<double> rotated_;
};

/// Decodes one block's logical codes (chunks at positions values * p) at an fp16 scale
/// (docs/formats.md §1): out[0, 128).
void trellis_decode_block(const uint16_t* chunks, int bits, int values, uint16_t scale_bits,
                          float* out);

/// Viterbi quantization of a trellis format, block by block (128 inputs of a row): a tail-biting
/// path of states minimising the squared error at the block's fp16 scale. mse: the scale is
/// refitted by least squares on the first path and the better of the two paths kept. Returns
/// kOutOfRange when a scale overflows fp16.
Status quantize_trellis(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                        LogicalMatrix* out);

/// Vector formats (docs/formats.md §1): the fixed codebook of a format with `bits` code bits a
/// vector (6, 8, 10, 12): 2^(bits - 4) magnitude vectors of 4 fp16 values
/// (docs/formats/vq*_codebook.inc); a code = magnitude index | sign bits << (bits - 4).
class VectorSearch {
 public:
  explicit VectorSearch(int bits);
  /// One block w[0, 128) of a row (natural column order): the code of each vector at its first
  /// column (16u + 2t), 0 at the others, and the fp16 scale. The scale is the block's RMS (the
  /// table is fitted to unit Gaussians); with mse, the best of it and 37 multiples of it (0.4 to
  /// 1.3: ranked by float32 expansions of their errors, the ones those cannot separate compared
  /// exactly), then least-squares refits of the scale to the chosen codes while they lower the
  /// error. Each vector takes the code
  /// nearest w / s (signs from w, ties to the lower magnitude index). False when the scale
  /// overflows fp16. Allocates nothing.
  bool quantize_block(const double* w, bool mse, uint16_t* codes, uint16_t* scale_bits);
  /// The exact weights of one block: +-M[m][d] * s in float32 (docs/formats.md §1), out[0, 128).
  void decode_block(const uint16_t* codes, uint16_t scale_bits, float* out) const;

  struct Table;  ///< the codebook of one width, widened to float, by dimension
                 ///< (quantize_vector.cpp)

 private:
  /// The projections |x_v| . M[m] of a block's 32 vectors into projection_, and |x_v|^2 into
  /// norms[0, 32).
  void project(const double* w, double* norms);
  /// The code nearest vector v of the projected block, x[0, 4), at scale s > 0: the one a search
  /// of every entry by the double distance picks.
  int nearest_code(int v, const double* x, double s) const;
  /// Exact weight of dimension d of a vector with `code` at scale s (float32: two fp16
  /// significands).
  float code_value(int code, int d, float s) const;
  /// Codes of the projected block's 32 vectors at fp16 scale s (> 0) into codes[0, 32); the
  /// squared error.
  double assign(const double* w, float s, int* codes) const;
  /// The squared errors of the projected block's 32 vectors at their nearest codes at each of
  /// scales[0, count) (count <= 38), in float32 (to rank them) into errors[0, count), and a bound
  /// on each one's distance from the exact error into slack[0, count).
  void rank_scales(const double* norms, const double* scales, int count, double* errors,
                   double* slack) const;
  int entries_, sign_shift_;
  const Table* table_;             ///< shared, built once per width
  std::vector<float> projection_;  ///< |x_v| . M[m] of the block's vectors, [32][padded entries]
};

/// The exact weights of row `row` of a logical vector-format matrix, out[0, k).
void vector_decode_row(const LogicalMatrix& m, int64_t row, float* out);

/// Block-by-block quantization of a trellis or vector format: each 128-input block of a row
/// through searches[thread].quantize_block (one Search per OpenMP thread, made by the caller: a
/// throw inside the region would terminate). Returns kOutOfRange, naming the first block, when a
/// scale overflows fp16.
template <typename Search>
Status quantize_blocks(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                       std::vector<Search>& searches, LogicalMatrix* out) {
  LogicalMatrix m = LogicalMatrix::sized(f, n, k);
  const int64_t blocks = k / kTileCols;
  std::atomic<int64_t> overflow_block{-1};
#pragma omp parallel
  {
    Search& search = searches[static_cast<size_t>(omp_get_thread_num())];
    double block[kTileCols];
#pragma omp for schedule(dynamic, 4)
    for (int64_t rb = 0; rb < n * blocks; ++rb) {
      const int64_t row = rb / blocks, col0 = rb % blocks * kTileCols;
      for (int t = 0; t < kTileCols; ++t) block[t] = w[row * k + col0 + t];
      if (!search.quantize_block(block, mse, m.codes.data() + row * k + col0, &m.scales[rb]))
        keep_first(&overflow_block, rb);
    }
  }
  if (overflow_block.load() >= 0)
    return out_of_range("quantize: the scale of row " +
                        std::to_string(overflow_block.load() / blocks) + ", block " +
                        std::to_string(overflow_block.load() % blocks) +
                        " overflows fp16 (weights too large for " + f.to_string() + ")");
  *out = std::move(m);
  return Status::ok();
}

/// quantize_blocks with VectorSearch.
Status quantize_vector(const float* w, int64_t n, int64_t k, const FormatSpec& f, bool mse,
                       LogicalMatrix* out);

/// GPTQ quantization of an int, LUT, trellis or vector format (a LUT row's table fitted with the
/// weights diag(H), when its first column is reached; trellis and vector formats quantize 128
/// columns at a time, BlockLDLQ-style: a block's joint error E is fed back as E U_BB^-1 U_B,rest,
/// no act_order). Weights and options are already validated except the Hessian / calibration values
/// themselves.
Status quantize_gptq(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                     const GroupSearch& search, const QuantizeOptions& opt, LogicalMatrix* out);

/// Upper-triangular U with U^T U = H^-1 for a symmetric positive-definite H [k, k]
/// (row-major, double), the factor GPTQ's error feedback uses. Errors (kInvalidArgument)
/// when H is not positive definite.
Status inverse_cholesky_upper(const std::vector<double>& h, int64_t k, std::vector<double>* u);

}  // namespace qmoe::quant
