// qmoe/tensor.hpp — non-owning views of activation matrices (host or device memory).
// Views, not owners, on the hot path: a pointer, the dims, a row stride and the element type.
#pragma once
#include <cstdint>

#include "qmoe/format.hpp"

namespace qmoe {

/// A row-major [rows, cols] matrix of 16-bit activations (bf16 or fp16) that the callee may
/// write. row_stride counts elements between the starts of consecutive rows (>= cols).
struct MatrixView {
  void* data = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t row_stride = 0;
  DType dtype = DType::kBF16;
};

/// Read-only counterpart of MatrixView.
struct ConstMatrixView {
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t row_stride = 0;
  DType dtype = DType::kBF16;
  ConstMatrixView() = default;
  ConstMatrixView(const void* d, int64_t r, int64_t c, int64_t stride, DType t)
      : data(d), rows(r), cols(c), row_stride(stride), dtype(t) {}
  /// A writable view is readable.
  ConstMatrixView(const MatrixView& v)  // NOLINT(google-explicit-constructor)
      : data(v.data), rows(v.rows), cols(v.cols), row_stride(v.row_stride), dtype(v.dtype) {}
};

/// A contiguous row-major [rows, cols] view (row_stride = cols).
inline MatrixView matrix_view(void* data, int64_t rows, int64_t cols, DType t) {
  return MatrixView{data, rows, cols, cols, t};
}
inline ConstMatrixView matrix_view(const void* data, int64_t rows, int64_t cols, DType t) {
  return ConstMatrixView(data, rows, cols, cols, t);
}

}  // namespace qmoe
