// qmoe/cpu_ref.hpp — the CPU reference. Written from docs/formats.md alone (never from src/
// or cuda/), deliberately simple, float32/float64 with OpenMP. Every kernel is tested
// against it.
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/packed.hpp"

namespace qmoe::ref {

/// Exact dequantized weights of a packed matrix, [n, k] row-major float32
/// ((q - z) * s is exact in float32 for every format).
Status dequantize(const PackedMatrix& m, std::vector<float>* w);

/// Dequantized weights rounded once (RNE) to the activation type `act`, as bit patterns:
/// the values every GPU kernel must reproduce bit for bit.
Status dequantize_to(const PackedMatrix& m, DType act, std::vector<uint16_t>* w);

/// Grouped GEMM over tokens sorted by expert: for expert e, rows
/// [offsets[e], offsets[e+1]) of x ([m, k] act bits) times W_e^T (rounded to act) ->
/// y[m, n] in float64 (float64 accumulation). offsets has E+1 non-decreasing entries,
/// offsets[0] = 0, offsets[E] = m.
Status grouped_gemm(const ExpertBank& bank, DType act, const uint16_t* x, int64_t m,
                    const int32_t* offsets, std::vector<double>* y);

}  // namespace qmoe::ref
