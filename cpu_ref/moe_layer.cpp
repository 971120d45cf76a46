// cpu_ref/moe_layer.cpp — the expert FFN stops and the whole MoE layer, written from
// docs/moe.md §3: route -> plan -> gather -> grouped_gemm(w13) -> silu_and_mul ->
// grouped_gemm(w2) -> combine, plus the shared expert, everything accumulated in float64.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "moe_detail.hpp"
#include "no_throw.hpp"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/numeric.hpp"

namespace qmoe::ref {
namespace {

constexpr const char* kForward = "ref::moe_layer_forward";

std::string dims(const ExpertBank& b) {
  return "[" + std::to_string(b.n()) + ", " + std::to_string(b.k()) + "]";
}

// The gate/up bank and the down bank of one FFN must chain: w13 [2I, H], w2 [H, I].
Status check_ffn_banks(const ExpertBank& w13, const ExpertBank& w2, int64_t experts, int64_t hidden,
                       const std::string& name) {
  const std::string at = std::string(kForward) + ": " + name;
  if (w13.num_experts() != experts || w2.num_experts() != experts)
    return invalid_argument(at + " banks need " + std::to_string(experts) + " experts, have " +
                            std::to_string(w13.num_experts()) + " and " +
                            std::to_string(w2.num_experts()));
  if (w13.n() % 2 != 0 || w13.k() != hidden)
    return invalid_argument(at + " w13 is " + dims(w13) +
                            ", needs [2I, H = " + std::to_string(hidden) + "]");
  if (w2.n() != hidden || w2.k() != w13.n() / 2)
    return invalid_argument(at + " w2 is " + dims(w2) + ", needs [H, I] = [" +
                            std::to_string(hidden) + ", " + std::to_string(w13.n() / 2) + "]");
  return Status::ok();
}

// Exactly the pointers the router kind reads are set; with no tokens they may be null
// (docs/moe.md §3).
Status check_routing_source(const MoeLayerInputs& in) {
  const std::string at = std::string(kForward) + ": ";
  const bool tokens = in.num_tokens > 0;
  if (in.router.kind == RouterKind::kGiven) {
    if (in.logits != nullptr || in.router_weight != nullptr || in.correction_bias != nullptr)
      return invalid_argument(at + "kGiven routing takes topk_ids/topk_weights only");
    if (tokens && (in.topk_ids == nullptr || in.topk_weights == nullptr))
      return invalid_argument(at + "kGiven routing needs topk_ids and topk_weights");
    return Status::ok();
  }
  if (in.topk_ids != nullptr || in.topk_weights != nullptr)
    return invalid_argument(at + "topk_ids/topk_weights are only for kGiven routing");
  if (in.logits != nullptr && in.router_weight != nullptr)
    return invalid_argument(at + "give a logit router logits or router_weight, not both");
  if (tokens && in.logits == nullptr && in.router_weight == nullptr)
    return invalid_argument(at + "a logit router needs logits or router_weight");
  return Status::ok();
}

// One FFN over rows sorted by expert: y[m, H] = (SiLU(x W_g^T) * (x W_u^T)) W_d^T per expert,
// the intermediate rounded to act (silu_and_mul).
Status expert_ffn(const ExpertBank& w13, const ExpertBank& w2, DType act, const uint16_t* x,
                  int64_t rows, const int32_t* offsets, std::vector<double>* y) {
  std::vector<double> gate_up;
  QMOE_RETURN_IF_ERROR(grouped_gemm(w13, act, x, rows, offsets, &gate_up));
  std::vector<uint16_t> h;
  QMOE_RETURN_IF_ERROR(silu_and_mul(act, gate_up.data(), rows, w13.n() / 2, &h));
  return grouped_gemm(w2, act, h.data(), rows, offsets, y);
}

}  // namespace

Status silu_and_mul(DType act, const double* gate_up, int64_t rows, int64_t intermediate,
                    std::vector<uint16_t>* h) {
  return detail::no_throw("ref::silu_and_mul", [&]() -> Status {
    if (h == nullptr) return invalid_argument("ref::silu_and_mul: h is null");
    if (act != DType::kBF16 && act != DType::kFP16)
      return invalid_argument("ref::silu_and_mul: activation type must be bf16 or fp16");
    if (rows < 0 || intermediate < 1 || rows >= detail::kMaxDim || intermediate >= detail::kMaxDim)
      return invalid_argument(
          "ref::silu_and_mul: needs rows in [0, 2^31), intermediate in "
          "[1, 2^31)");
    if (gate_up == nullptr && rows > 0)
      return invalid_argument("ref::silu_and_mul: gate_up is null");
    const bool bf16 = act == DType::kBF16;
    std::vector<uint16_t> out(static_cast<size_t>(rows * intermediate));
    const bool parallel = rows * intermediate >= detail::kParallelMinElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < intermediate; ++i) {
        const double g = gate_up[r * 2 * intermediate + i];
        const double u = gate_up[r * 2 * intermediate + intermediate + i];
        // float32 first: a kernel's epilogue holds SiLU(g)*u in an fp32 register.
        const auto v = static_cast<float>(g / (1.0 + std::exp(-g)) * u);
        out[static_cast<size_t>(r * intermediate + i)] = bf16 ? float_to_bf16(v) : float_to_fp16(v);
      }
    }
    *h = std::move(out);
    return Status::ok();
  });
}

Status silu_and_mul_interleaved(DType act, const double* gate_up, int64_t rows,
                                int64_t intermediate, std::vector<uint16_t>* h) {
  return detail::no_throw("ref::silu_and_mul_interleaved", [&]() -> Status {
    if (intermediate < 8 || intermediate % 8 != 0 || intermediate >= detail::kMaxDim)
      return invalid_argument(
          "ref::silu_and_mul_interleaved: intermediate must be a positive multiple of 8 below "
          "2^31");
    if (rows < 0 || rows >= detail::kMaxDim)
      return invalid_argument("ref::silu_and_mul_interleaved: rows must be in [0, 2^31)");
    if (gate_up == nullptr && rows > 0)
      return invalid_argument("ref::silu_and_mul_interleaved: gate_up is null");
    // Back to gate-first columns, then the one definition of the activation.
    const int64_t width = 2 * intermediate;
    std::vector<double> gate_first(static_cast<size_t>(rows * width));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c) {
        const int64_t dst = (c / 16) * 8 + c % 8 + ((c / 8) % 2 == 1 ? intermediate : 0);
        gate_first[static_cast<size_t>(r * width + dst)] = gate_up[r * width + c];
      }
    return silu_and_mul(act, gate_first.data(), rows, intermediate, h);
  });
}

Status moe_layer_forward(const MoeLayerInputs& in, std::vector<double>* y) {
  return detail::no_throw(kForward, [&]() -> Status {
    const std::string at = std::string(kForward) + ": ";
    if (y == nullptr) return invalid_argument(at + "y is null");
    if (in.act != DType::kBF16 && in.act != DType::kFP16)
      return invalid_argument(at + "activation type must be bf16 or fp16");
    if (in.num_tokens < 0) return invalid_argument(at + "num_tokens is negative");
    if (in.x == nullptr && in.num_tokens > 0) return invalid_argument(at + "x is null");
    if (in.w13 == nullptr || in.w2 == nullptr) return invalid_argument(at + "w13 or w2 is null");
    if ((in.shared_w13 == nullptr) != (in.shared_w2 == nullptr))
      return invalid_argument(at + "a shared expert needs both shared_w13 and shared_w2");
    QMOE_RETURN_IF_ERROR(detail::check_router_config(in.router, kForward));
    const int64_t T = in.num_tokens, H = in.w13->k();
    QMOE_RETURN_IF_ERROR(check_ffn_banks(*in.w13, *in.w2, in.router.num_experts, H, "routed"));
    if (in.shared_w13 != nullptr)
      QMOE_RETURN_IF_ERROR(check_ffn_banks(*in.shared_w13, *in.shared_w2, 1, H, "shared"));
    QMOE_RETURN_IF_ERROR(check_routing_source(in));

    // route
    std::vector<float> logits_from_x;
    const float* logits = in.logits;
    if (in.router_weight != nullptr) {
      QMOE_RETURN_IF_ERROR(router_logits(in.act, in.x, T, H, in.router_weight,
                                         in.router.num_experts, &logits_from_x));
      logits = logits_from_x.data();
    }
    std::vector<int32_t> ids;
    std::vector<float> weights;
    const int32_t* topk_ids = in.topk_ids;
    const float* topk_weights = in.topk_weights;
    if (in.router.kind != RouterKind::kGiven) {
      QMOE_RETURN_IF_ERROR(route(in.router, logits, T, in.correction_bias, &ids, &weights));
      topk_ids = ids.data();
      topk_weights = weights.data();
    }
    // plan, gather, FFN over sorted rows, combine
    RoutingPlan plan;
    QMOE_RETURN_IF_ERROR(
        build_plan(topk_ids, topk_weights, T, in.router.top_k, in.router.num_experts, &plan));
    std::vector<uint16_t> x_sorted;
    QMOE_RETURN_IF_ERROR(gather(plan, in.x, H, &x_sorted));
    std::vector<double> y_sorted;
    QMOE_RETURN_IF_ERROR(expert_ffn(*in.w13, *in.w2, in.act, x_sorted.data(), T * in.router.top_k,
                                    plan.offsets.data(), &y_sorted));
    std::vector<double> out;
    QMOE_RETURN_IF_ERROR(combine(plan, y_sorted.data(), H, &out));
    // shared expert: every token, in token order, weight 1
    if (in.shared_w13 != nullptr) {
      const int32_t all_tokens[2] = {0, static_cast<int32_t>(T)};
      std::vector<double> shared;
      QMOE_RETURN_IF_ERROR(
          expert_ffn(*in.shared_w13, *in.shared_w2, in.act, in.x, T, all_tokens, &shared));
      for (size_t i = 0; i < out.size(); ++i) out[i] += shared[i];
    }
    *y = std::move(out);
    return Status::ok();
  });
}

}  // namespace qmoe::ref
