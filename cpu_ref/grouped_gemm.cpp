// cpu_ref/grouped_gemm.cpp — grouped expert GEMM over tokens sorted by expert, in float64:
// y[i, :] = x[i, :] * W_e^T for the rows i of expert e, with W_e in the activation type by
// docs/formats.md §1 (what the GPU kernels multiply) and every product and sum in double.
#include <algorithm>
#include <string>
#include <utility>

#include "formats/decode.hpp"
#include "no_throw.hpp"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref {
namespace {

// Cache blocking of the float64 product: a kInnerBlock x kColBlock slice of W^T (128 KiB)
// stays in L2 while the kRowBlock token rows of one task stream over it.
constexpr int64_t kRowBlock = 16;
constexpr int64_t kColBlock = 256;
constexpr int64_t kInnerBlock = 64;

Status check_offsets(const int32_t* offsets, int64_t num_experts, int64_t m) {
  if (offsets[0] != 0)
    return invalid_argument("ref::grouped_gemm: offsets[0] is " + std::to_string(offsets[0]) +
                            ", must be 0");
  for (int64_t e = 0; e < num_experts; ++e)
    if (offsets[e + 1] < offsets[e])
      return invalid_argument("ref::grouped_gemm: offsets decrease at expert " + std::to_string(e));
  if (offsets[num_experts] != m)
    return invalid_argument("ref::grouped_gemm: offsets[E] is " +
                            std::to_string(offsets[num_experts]) + ", m is " + std::to_string(m));
  return Status::ok();
}

// y[rows, n] += x[rows, k] * W^T with wt = W^T as [k, n] doubles. Each output accumulates
// its k products in increasing k, like a plain dot-product loop. Runs inside an OpenMP
// region, so it must not allocate: an exception there could not reach no_throw.
void multiply_rows(DType act, const uint16_t* x, int64_t rows, int64_t n, int64_t k,
                   const std::vector<double>& wt, double* y) {
  for (int64_t c0 = 0; c0 < n; c0 += kColBlock) {
    const int64_t c1 = std::min(n, c0 + kColBlock);
    for (int64_t k0 = 0; k0 < k; k0 += kInnerBlock) {
      const int64_t k1 = std::min(k, k0 + kInnerBlock);
      for (int64_t i = 0; i < rows; ++i) {
        double* yrow = y + i * n;
        for (int64_t kk = k0; kk < k1; ++kk) {
          const double xv = act_bits_to_float(act, x[i * k + kk]);
          const double* wrow = wt.data() + kk * n;
          for (int64_t c = c0; c < c1; ++c) yrow[c] += xv * wrow[c];
        }
      }
    }
  }
}

}  // namespace

Status grouped_gemm(const ExpertBank& bank, DType act, const uint16_t* x, int64_t m,
                    const int32_t* offsets, std::vector<double>* y) {
  return detail::no_throw("ref::grouped_gemm", [&]() -> Status {
    if (y == nullptr) return invalid_argument("ref::grouped_gemm: y is null");
    if (offsets == nullptr) return invalid_argument("ref::grouped_gemm: offsets is null");
    if (m < 0) return invalid_argument("ref::grouped_gemm: m is negative");
    if (x == nullptr && m > 0) return invalid_argument("ref::grouped_gemm: x is null");
    if (act != DType::kBF16 && act != DType::kFP16)
      return invalid_argument("ref::grouped_gemm: activation type must be bf16 or fp16");
    const int64_t num_experts = bank.num_experts();
    if (num_experts < 1) return invalid_argument("ref::grouped_gemm: bank has no experts");
    QMOE_RETURN_IF_ERROR(check_offsets(offsets, num_experts, m));
    const int64_t n = bank.n(), k = bank.k();
    // Every expert is checked, also those without tokens: a corrupt bank is an error.
    for (int64_t e = 0; e < num_experts; ++e) {
      const PackedMatrix& w = bank.expert(e);
      const std::string expert = "ref::grouped_gemm: expert " + std::to_string(e);
      if (w.n() != n || w.k() != k)
        return invalid_argument(expert + " is not [" + std::to_string(n) + ", " +
                                std::to_string(k) + "]");
      detail::Layout L;
      const Status st = detail::check_packed(w, &L);
      if (!st.is_ok()) return Status(st.code(), expert + ": " + st.message());
    }

    std::vector<double> out(static_cast<size_t>(m * n), 0.0);
    std::vector<uint16_t> w_act;
    std::vector<double> wt;  // W_e^T [k, n]
    for (int64_t e = 0; e < num_experts; ++e) {
      const int64_t row0 = offsets[e], rows = offsets[e + 1] - offsets[e];
      if (rows == 0) continue;
      QMOE_RETURN_IF_ERROR(dequantize_to(bank.expert(e), act, &w_act));
      wt.resize(static_cast<size_t>(k * n));
#pragma omp parallel for schedule(static)
      for (int64_t kk = 0; kk < k; ++kk)
        for (int64_t c = 0; c < n; ++c)
          wt[static_cast<size_t>(kk * n + c)] =
              act_bits_to_float(act, w_act[static_cast<size_t>(c * k + kk)]);
      const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(dynamic)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t r = row0 + b * kRowBlock;
        const int64_t r_count = std::min(kRowBlock, row0 + rows - r);
        multiply_rows(act, x + r * k, r_count, n, k, wt, out.data() + r * n);
      }
    }
    *y = std::move(out);
    return Status::ok();
  });
}

}  // namespace qmoe::ref
