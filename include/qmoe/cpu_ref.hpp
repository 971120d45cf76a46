// qmoe/cpu_ref.hpp — the CPU reference. Written from docs/formats.md and docs/moe.md alone
// (never from src/ or cuda/), deliberately simple, float32/float64 with OpenMP. Every kernel
// is tested against it.
#pragma once
#include <cstdint>
#include <vector>

#include "qmoe/moe.hpp"
#include "qmoe/packed.hpp"

namespace qmoe::ref {

/// Exact dequantized weights of a packed matrix, [n, k] row-major float32
/// ((q - z) * s is exact in float32 for every format).
Status dequantize(const PackedMatrix& m, std::vector<float>* w);

/// Dequantized weights in the activation type `act` by docs/formats.md §1 (fp16: (q - z) * s
/// rounded once, RNE; bf16: the scale rounded to bf16 first, then the product rounded once),
/// as bit patterns: the values the dequantize kernel and the tile GEMM kernels reproduce bit for
/// bit (the decode GEMM kernel does not form weights: docs/formats.md §1).
Status dequantize_to(const PackedMatrix& m, DType act, std::vector<uint16_t>* w);

/// Grouped GEMM over tokens sorted by expert: for expert e, rows
/// [offsets[e], offsets[e+1]) of x ([m, k] act bits) times W_e^T (rounded to act) ->
/// y[m, n] in float64 (float64 accumulation). offsets has E+1 non-decreasing entries,
/// offsets[0] = 0, offsets[E] = m.
Status grouped_gemm(const ExpertBank& bank, DType act, const uint16_t* x, int64_t m,
                    const int32_t* offsets, std::vector<double>* y);

// ==== The MoE data path (docs/moe.md) ========================================================
//   x[T, H] -> route (top-k) -> build_plan -> gather -> w13 GEMM -> silu_and_mul -> w2 GEMM
//   -> combine -> y[T, H] (+ shared experts). Each stop is one function, so a device kernel
//   can be tested against the stop it replaces.

/// Router GEMM: logits[T, E] = x[T, H] * Wr^T with x activation bits of type act and
/// router_weight Wr [E, H] float32; each logit summed in float64 in increasing h, then rounded
/// to float32. Errors (kInvalidArgument, *logits untouched): null pointers, bad act, dims
/// outside T >= 0, H >= 1, E >= 1, all < 2^31.
Status router_logits(DType act, const uint16_t* x, int64_t num_tokens, int64_t hidden,
                     const float* router_weight, int64_t num_experts, std::vector<float>* logits);

/// Top-k routing (docs/moe.md §1) of finite float32 logits [T, E] for the kSoftmaxTopK and
/// kSigmoidGroupedTopK routers: ids [T, k] best first, weights [T, k] (float64 math, rounded
/// to float32). correction_bias [E] (sigmoid router only) moves the selection, never the
/// weights; without it (nullptr) groups are scored by their best expert, not the top-2 sum.
/// Errors (kInvalidArgument, outputs untouched): bad config (k <= 0, k > E, groups not
/// dividing E, unused fields not default, kGiven), NaN/Inf logit or bias, T < 0,
/// T*k > INT32_MAX, null pointers.
Status route(const RouterConfig& cfg, const float* logits, int64_t num_tokens,
             const float* correction_bias, std::vector<int32_t>* topk_ids,
             std::vector<float>* topk_weights);

/// Stable counting sort of the T*k (token, slot) pairs of ids/weights [T, k] by expert
/// (docs/moe.md §2). ids in [0, E); an expert repeated within a token gets two rows. Errors
/// (kInvalidArgument, *plan untouched): bad dims, T*k > INT32_MAX, id out of range, NaN/Inf
/// weight, null pointers.
Status build_plan(const int32_t* topk_ids, const float* topk_weights, int64_t num_tokens,
                  int32_t top_k, int32_t num_experts, RoutingPlan* plan);

/// x_sorted[r, :] = x[t, :] for every row r of pair t*k + j: [T*k, H] from x [T, H], 16-bit
/// patterns copied verbatim. Errors (kInvalidArgument, *x_sorted untouched): a plan that breaks
/// the invariants of docs/moe.md §2, hidden outside [1, 2^31), null pointers.
Status gather(const RoutingPlan& plan, const uint16_t* x, int64_t hidden,
              std::vector<uint16_t>* x_sorted);

/// y[t, :] = sum over slots j = 0..k-1 (in that order) of sorted_weight[r] * y_sorted[r, :],
/// r = row_of_pair[t*k + j]: [T, H] float64 from y_sorted [T*k, H]. Errors as gather
/// (*y untouched).
Status combine(const RoutingPlan& plan, const double* y_sorted, int64_t hidden,
               std::vector<double>* y);

/// The gate/up epilogue: h[r, i] = RNE_act(float32(SiLU(g) * u)) with g = gate_up[r, i],
/// u = gate_up[r, I + i] (gate_up [rows, 2I] float64, as ref::grouped_gemm gives it), h
/// [rows, I] act bits — what a kernel writes between the two GEMMs. Errors (kInvalidArgument,
/// *h untouched): null pointers, rows or intermediate outside [0 or 1, 2^31), bad act.
Status silu_and_mul(DType act, const double* gate_up, int64_t rows, int64_t intermediate,
                    std::vector<uint16_t>* h);

/// grouped_gemm's Epilogue::kSiluMulInterleaved (qmoe/gpu.hpp): silu_and_mul of a product whose
/// columns interleave gate and up by 8 (a bank in interleave_gate_up's row order): gate_up
/// [rows, 2I] float64 with column 16 s + j the gate and 16 s + 8 + j the up of h's column
/// 8 s + j (j < 8); h [rows, I]. Errors as silu_and_mul, and intermediate not a multiple of 8.
Status silu_and_mul_interleaved(DType act, const double* gate_up, int64_t rows,
                                int64_t intermediate, std::vector<uint16_t>* h);

/// Inputs of one MoE layer. Routing comes from exactly one source, chosen by router.kind:
/// logit routers take `logits` or `router_weight` (then logits = router_logits(x, Wr)), kGiven
/// takes topk_ids + topk_weights (with T = 0 they may be null). All pointers are host memory;
/// nothing is owned.
struct MoeLayerInputs {
  DType act = DType::kBF16;                ///< activation type of x (bf16 or fp16)
  const uint16_t* x = nullptr;             ///< [T, H] act bits, H = w13->k()
  int64_t num_tokens = 0;                  ///< T >= 0
  RouterConfig router;                     ///< router.num_experts must equal the banks' E
  const float* logits = nullptr;           ///< [T, E] float32
  const float* router_weight = nullptr;    ///< [E, H] float32
  const float* correction_bias = nullptr;  ///< [E], kSigmoidGroupedTopK only; docs/moe.md §1.2
  const int32_t* topk_ids = nullptr;       ///< [T, k], kGiven only
  const float* topk_weights = nullptr;     ///< [T, k], kGiven only
  /// E experts [2I, H]: rows [0, I) are the gate projection, rows [I, 2I) the up projection
  /// (the fused w1/w3 layout of vLLM and HF checkpoints).
  const ExpertBank* w13 = nullptr;
  const ExpertBank* w2 = nullptr;  ///< E experts [H, I] (down projection)
  /// Optional shared expert (both or neither): one expert each, [2Is, H] and [H, Is], applied
  /// to every token with weight 1.
  const ExpertBank* shared_w13 = nullptr;
  const ExpertBank* shared_w2 = nullptr;
};

/// One MoE layer, y[T, H] float64: route, build_plan, gather, grouped_gemm(w13), silu_and_mul,
/// grouped_gemm(w2), combine, plus the shared expert (docs/moe.md §3). Errors
/// (kInvalidArgument, *y untouched): bank shapes that do not chain, E or routing source not
/// matching router, everything route / build_plan reject; kOutOfRange when out of memory.
Status moe_layer_forward(const MoeLayerInputs& in, std::vector<double>* y);

}  // namespace qmoe::ref
