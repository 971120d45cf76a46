// cpu_ref/dequantize.cpp — exact dequantization of one packed matrix, and its form in the
// activation type (docs/formats.md §1: RNE once; bf16 rounds the scale to bf16 first): the
// values every GPU decoder must reproduce bit for bit.
#include <string>
#include <utility>

#include "formats/decode.hpp"
#include "no_throw.hpp"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref {
namespace {

bool is_act_type(DType t) {
  return t == DType::kBF16 || t == DType::kFP16;
}

// Validates m against the spec and reads its logical codes [n, k].
Status read_checked(const PackedMatrix& m, detail::Layout* L, std::vector<uint16_t>* codes) {
  QMOE_RETURN_IF_ERROR(detail::check_packed(m, L));
  detail::read_codes(m, *L, codes);
  return Status::ok();
}

void widen(const PackedMatrix& m, const detail::Layout& L, const std::vector<uint16_t>& codes,
           bool bf16_scales, std::vector<float>* w) {
  if (m.format.kind == FormatKind::kInt)
    detail::decode_int(m, L, codes, bf16_scales, w);
  else if (m.format.kind == FormatKind::kLut)
    detail::decode_lut(m, L, codes, w);  // fp16 entries: RNE to the activation type below
  else if (m.format.kind == FormatKind::kTrellis)
    detail::decode_trellis(m, L, codes, w);  // exact c * s: RNE to the activation type below
  else if (m.format.kind == FormatKind::kVector)
    detail::decode_vector(m, L, codes, bf16_scales, w);  // exact +-M * s (bf16: both factors)
  else
    detail::decode_dense(m, codes, w);
}

}  // namespace

Status dequantize(const PackedMatrix& m, std::vector<float>* w) {
  return detail::no_throw("ref::dequantize", [&]() -> Status {
    if (w == nullptr) return invalid_argument("ref::dequantize: w is null");
    detail::Layout L;
    std::vector<uint16_t> codes;
    QMOE_RETURN_IF_ERROR(read_checked(m, &L, &codes));
    std::vector<float> out;
    widen(m, L, codes, /*bf16_scales=*/false, &out);
    *w = std::move(out);
    return Status::ok();
  });
}

Status dequantize_to(const PackedMatrix& m, DType act, std::vector<uint16_t>* w) {
  return detail::no_throw("ref::dequantize_to", [&]() -> Status {
    if (w == nullptr) return invalid_argument("ref::dequantize_to: w is null");
    if (!is_act_type(act))
      return invalid_argument("ref::dequantize_to: activation type must be bf16 or fp16");
    detail::Layout L;
    std::vector<uint16_t> codes;
    QMOE_RETURN_IF_ERROR(read_checked(m, &L, &codes));
    // Dense weights already in the activation type are used as stored (NaN payloads kept).
    if (m.format.kind == FormatKind::kDense && m.format.dense_dtype == act) {
      *w = std::move(codes);
      return Status::ok();
    }
    const bool bf16 = act == DType::kBF16;
    std::vector<float> exact;
    widen(m, L, codes, /*bf16_scales=*/bf16, &exact);
    const int64_t count = static_cast<int64_t>(exact.size());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const float v = exact[static_cast<size_t>(i)];
      codes[static_cast<size_t>(i)] = bf16 ? float_to_bf16(v) : float_to_fp16(v);
    }
    *w = std::move(codes);
    return Status::ok();
  });
}

}  // namespace qmoe::ref
