// qmoe/quantize.hpp — quantizers that produce every format from float weights.
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/packed.hpp"

namespace qmoe {

/// What each method does per kind of format:
///  - int: as named below.
///  - LUT (nuq<b>): both RTN methods fit each row's table by Lloyd (k-means, which already
///    minimises squared error) and take the nearest entry; kGptq fits it weighted by diag(H)
///    and feeds the rounding errors back as for int formats (gptq_mse_scales is unused).
///  - trellis (tcq<b>): kRtnMinMax finds each rotated block's Viterbi path at a scale matched to
///    the block's RMS, kRtnMse also tries the least-squares scale of that path and keeps the
///    better; kGptq quantizes 128 columns at a time that way (gptq_mse_scales: with the refit)
///    and feeds each block's error forward (BlockLDLQ); act_order and block_size do not apply
///    (act_order gives kUnsupported).
///  - vector (vq<r>): kRtnMinMax scales each 128-input block by its RMS and takes each vector's
///    nearest code, kRtnMse also searches 37 multiples of that scale and refits it by least
///    squares; kGptq quantizes 128 columns at a time that way (gptq_mse_scales: with the search)
///    and feeds each block's error forward as for trellis formats (act_order gives kUnsupported).
///  - dense: every method rounds each weight to nearest even.
/// int codes round w / s to nearest, ties to even, whatever floating-point rounding mode the
/// calling thread and the OpenMP workers run in (a mode other than to-nearest moves only the
/// last bit of the arithmetic before the rounding).
enum class QuantMethod : uint8_t {
  kRtnMinMax = 0,  ///< round to nearest, range = group min/max (or absmax if symmetric)
  kRtnMse = 1,     ///< round to nearest, range shrunk per group to minimise squared error
  kGptq = 2,       ///< GPTQ: error feedback through the inverse-Hessian Cholesky factor
};

struct QuantizeOptions {
  QuantMethod method = QuantMethod::kRtnMinMax;
  // kRtnMse: shrink factors tried are 1, 1-1/grid, ..., down to mse_min_shrink.
  int mse_grid = 64;
  float mse_min_shrink = 0.5f;
  // kGptq: exactly one of hessian ([k,k] row-major, X^T X) or calib ([calib_rows, k]). Inputs
  // never active in it (H_ii = 0) cannot move the calibrated output: their weights become 0, as
  // in reference GPTQ; where no input is active at all the call is kInvalidArgument.
  const float* hessian = nullptr;
  const float* calib = nullptr;
  int64_t calib_rows = 0;
  float damp = 0.01f;            ///< added to the diagonal: damp * mean(diag(H))
  bool act_order = false;        ///< quantize columns in order of decreasing H_ii
  int block_size = 128;          ///< lazy-batch width (columns updated together)
  bool gptq_mse_scales = false;  ///< group scales by MSE search instead of min/max
};

/// Quantize w[n, k] (row-major float, output rows x input dims) into format f.
/// Dense formats round each weight to bf16/fp16. Errors (nothing written): null pointers,
/// n or k <= 0, k not divisible by the group size, NaN/Inf weights, weights whose scale
/// would overflow fp16, missing/invalid GPTQ inputs (a calibration that activates no input
/// among them); kUnsupported for GPTQ with act_order into a
/// trellis or vector format.
Status quantize_logical(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                        const QuantizeOptions& opt, LogicalMatrix* out);

/// quantize_logical followed by pack.
Status quantize(const float* w, int64_t n, int64_t k, const FormatSpec& f,
                const QuantizeOptions& opt, PackedMatrix* out);

/// The row order of a gate/up bank that grouped_gemm's Epilogue::kSiluMulInterleaved takes
/// (qmoe/gpu.hpp): from w13 [rows = 2I, cols] with the gate projection in rows [0, I) and the up
/// projection in rows [I, 2I) (the fused w1/w3 of vLLM and HF checkpoints) to *out [2I, cols]
/// with row 16 s + j = gate row 8 s + j and row 16 s + 8 + j = up row 8 s + j (j < 8). Quantize
/// the result: every quantizer here treats rows independently (RTN per row and group; GPTQ's
/// Hessian is over the input dims), so each row gets the codes and scales it gets in the
/// original order. Errors (kInvalidArgument, *out untouched): null pointers, rows not a positive
/// multiple of 16, cols < 1.
Status interleave_gate_up(const float* w13, int64_t rows, int64_t cols, std::vector<float>* out);

}  // namespace qmoe
