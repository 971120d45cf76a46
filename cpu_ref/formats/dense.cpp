// cpu_ref/formats/dense.cpp — dense bf16/fp16 weights (docs/formats.md §1): the code is the
// 16-bit float itself; widening it to float32 is exact.
#include "decode.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref::detail {

void decode_dense(const PackedMatrix& m, const std::vector<uint16_t>& codes,
                  std::vector<float>* w) {
  w->resize(codes.size());
  const bool bf16 = m.format.dense_dtype == DType::kBF16;
  float* out = w->data();
  const int64_t count = static_cast<int64_t>(codes.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i)
    out[i] = bf16 ? bf16_to_float(codes[static_cast<size_t>(i)])
                  : fp16_to_float(codes[static_cast<size_t>(i)]);
}

}  // namespace qmoe::ref::detail
