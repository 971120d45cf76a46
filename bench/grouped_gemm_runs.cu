// qmoe and cuBLAS runs of a LaunchPlan.
#include <algorithm>
#include <vector>

#include "bench/check.hpp"
#include "bench/grouped_gemm_runs.hpp"
#include "bench/timing.hpp"

namespace qmoe::bench {

namespace {

constexpr int kProjections = 2;  // 0: w13 (x -> h), 1: w2 (h_in -> y)

const ProjectionPool& projection_pool(const WeightPool& pool, int p) {
  return p == 0 ? pool.w13 : pool.w2;
}

// One expert's GEMM in cuBLAS's column-major terms: y^T[n, m] = W[n, k] * x^T[k, m].
struct ExpertGemm {
  const void* w;
  const void* x;
  void* y;
  int n, m, k;
};

// The GEMMs of projection p in launch r, active experts only, in expert order.
std::vector<ExpertGemm> expert_gemms(const WeightPool& pool, const LaunchPlan& plan, int r, int p) {
  const ProjectionPool& proj = projection_pool(pool, p);
  const LaunchRouting& route = plan.routing(r);
  const auto* x = static_cast<const uint16_t*>(p == 0 ? plan.x(r) : plan.h_in(r));
  auto* y = static_cast<uint16_t*>(p == 0 ? plan.h(r) : plan.y(r));
  std::vector<ExpertGemm> gemms;
  for (int32_t e = 0; e < plan.experts(); ++e) {
    const int32_t row = route.offsets[static_cast<size_t>(e)];
    const int32_t rows = route.offsets[static_cast<size_t>(e) + 1] - row;
    if (rows == 0) continue;
    const ExpertDesc& d = proj.slot_descs[static_cast<size_t>(route.slot[static_cast<size_t>(e)])];
    gemms.push_back({proj.blob.data() + d.codes_offset, x + int64_t{row} * proj.k,
                     y + int64_t{row} * proj.n, static_cast<int>(proj.n), rows,
                     static_cast<int>(proj.k)});
  }
  return gemms;
}

Status require_dense_bf16(const WeightPool& pool) {
  if (pool.format.palette.size() != 1 || pool.format.palette[0] != FormatSpec::dense(DType::kBF16))
    return invalid_argument("cuBLAS baselines need a dense bf16 pool, got " + pool.format.name);
  return Status::ok();
}

// Arguments of one cublasGemmGroupedBatchedEx call. The host arrays must outlive the graph:
// cuBLAS may read them when the call is captured or stage them through its workspace.
struct GroupedCall {
  std::vector<cublasOperation_t> trans_a, trans_b;
  std::vector<int> m, n, k, lda, ldb, ldc, group_size;
  std::vector<float> alpha, beta;
  size_t first_pointer = 0;  // index of this call's first A/B/C pointer in the device arrays
  int problems = 0;
};

}  // namespace

Status time_qmoe_grouped_gemm(const GpuContext& ctx, const WeightPool& pool, const LaunchPlan& plan,
                              const BenchOptions& opt, DeviceBuffer* workspace,
                              double* us_per_launch) {
  const LayerEpilogue epilogue = opt.epilogue;
  std::vector<GroupedGemmArgs> calls;
  // Per call: where the activation kernel after it writes (silu-kernel's gate/up calls: h_in,
  // from the call's y = h), or null for none.
  std::vector<void*> activation_to;
  for (int r = 0; r < plan.launches(); ++r) {
    for (int p = 0; p < kProjections; ++p) {
      const ProjectionPool& proj = projection_pool(pool, p);
      GroupedGemmArgs a;
      a.bank.blob = proj.blob.data();
      a.bank.descs = p == 0 ? plan.w13_descs(r) : plan.w2_descs(r);
      a.bank.num_experts = plan.experts();
      a.bank.n = proj.n;
      a.bank.k = proj.k;
      a.bank.format_mask = pool.format_mask;
      // gate/up: x [M, H] -> h [M, 2I]; down: h_in [M, I] -> y [M, H].
      a.x = matrix_view(static_cast<const void*>(p == 0 ? plan.x(r) : plan.h_in(r)), plan.rows(),
                        proj.k, DType::kBF16);
      a.y = matrix_view(p == 0 ? plan.h(r) : plan.y(r), plan.rows(), proj.n, DType::kBF16);
      a.expert_offsets = plan.offsets(r);
      a.kernel = opt.kernel;
      a.decode_max_tokens = opt.decode_max_tokens;
      a.integer_decode = opt.integer_decode;
      a.tile_kernel = opt.tile_kernel;
      // The down projection's offsets are the gate/up call's, final before that call's kernels
      // ran: as in a model's layer, the w2 call may build its schedule early.
      a.offsets_precede_previous_kernel = p == 1;
      // With an activation the gate/up call's output is the down call's input (h_in).
      if (p == 0 && epilogue == LayerEpilogue::kSiluFused) {
        a.y = matrix_view(plan.h_in(r), plan.rows(), proj.n / 2, DType::kBF16);
        a.epilogue = Epilogue::kSiluMulInterleaved;
      }
      calls.push_back(a);
      activation_to.push_back(p == 0 && epilogue == LayerEpilogue::kSiluKernel ? plan.h_in(r)
                                                                               : nullptr);
    }
  }
  size_t workspace_bytes = 0;
  for (const GroupedGemmArgs& a : calls) {
    size_t bytes = 0;
    QMOE_RETURN_IF_ERROR(grouped_gemm(a, nullptr, &bytes, ctx.stream()));
    workspace_bytes = std::max(workspace_bytes, bytes);
  }
  // Launches run one after another on one stream, so they can share one workspace, prepared
  // (the decode kernel's work counter lives there, docs/dispatch.md §6).
  QMOE_RETURN_IF_ERROR(
      workspace->reserve(std::max<int64_t>(static_cast<int64_t>(workspace_bytes), kSectionAlign)));
  QMOE_RETURN_IF_ERROR(
      prepare_workspace(workspace->data(), static_cast<size_t>(workspace->bytes()), ctx.stream()));
  auto body = [&](cudaStream_t s) {
    for (size_t i = 0; i < calls.size(); ++i) {
      const GroupedGemmArgs& a = calls[i];
      size_t bytes = static_cast<size_t>(workspace->bytes());
      QMOE_RETURN_IF_ERROR(grouped_gemm(a, workspace->data(), &bytes, s));
      if (activation_to[i] != nullptr)
        QMOE_RETURN_IF_ERROR(silu_mul_interleaved(
            a.y, matrix_view(activation_to[i], a.y.rows, a.y.cols / 2, DType::kBF16), s));
    }
    return Status::ok();
  };
  // Eagerly once: reports a bad status or a faulting kernel here, outside any capture.
  QMOE_RETURN_IF_ERROR(body(ctx.stream()));
  QMOE_CUDA_TRY(cudaStreamSynchronize(ctx.stream()));
  return time_graph(ctx.stream(), plan.launches(), opt.reps, body, us_per_launch);
}

Status time_cublas_expert_loop(const GpuContext& ctx, const WeightPool& pool,
                               const LaunchPlan& plan, int reps, double* us_per_launch) {
  QMOE_RETURN_IF_ERROR(require_dense_bf16(pool));
  std::vector<ExpertGemm> gemms;
  for (int r = 0; r < plan.launches(); ++r)
    for (int p = 0; p < kProjections; ++p) {
      const std::vector<ExpertGemm> part = expert_gemms(pool, plan, r, p);
      gemms.insert(gemms.end(), part.begin(), part.end());
    }
  const float alpha = 1.0f, beta = 0.0f;
  auto body = [&](cudaStream_t) {
    for (const ExpertGemm& g : gemms)
      QMOE_CUBLAS_TRY(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, g.n, g.m, g.k, &alpha,
                                   g.w, CUDA_R_16BF, g.k, g.x, CUDA_R_16BF, g.k, &beta, g.y,
                                   CUDA_R_16BF, g.n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return Status::ok();
  };
  QMOE_RETURN_IF_ERROR(body(ctx.stream()));
  QMOE_CUDA_TRY(cudaStreamSynchronize(ctx.stream()));
  return time_graph(ctx.stream(), plan.launches(), reps, body, us_per_launch);
}

Status time_cublas_grouped_batched(const GpuContext& ctx, const WeightPool& pool,
                                   const LaunchPlan& plan, int reps, bool* available,
                                   double* us_per_launch) {
  QMOE_RETURN_IF_ERROR(require_dense_bf16(pool));
  std::vector<GroupedCall> calls;
  std::vector<const void*> a_ptrs, b_ptrs;
  std::vector<void*> c_ptrs;
  for (int r = 0; r < plan.launches(); ++r) {
    for (int p = 0; p < kProjections; ++p) {
      std::vector<ExpertGemm> gemms = expert_gemms(pool, plan, r, p);
      // Equal token counts share a group: at small T most experts have one or two tokens.
      std::stable_sort(gemms.begin(), gemms.end(),
                       [](const ExpertGemm& u, const ExpertGemm& v) { return u.m < v.m; });
      GroupedCall call;
      call.first_pointer = a_ptrs.size();
      call.problems = static_cast<int>(gemms.size());
      for (size_t i = 0; i < gemms.size(); ++i) {
        const ExpertGemm& g = gemms[i];
        if (i == 0 || g.m != gemms[i - 1].m) {
          call.trans_a.push_back(CUBLAS_OP_T);
          call.trans_b.push_back(CUBLAS_OP_N);
          call.m.push_back(g.n);
          call.n.push_back(g.m);
          call.k.push_back(g.k);
          call.lda.push_back(g.k);
          call.ldb.push_back(g.k);
          call.ldc.push_back(g.n);
          call.alpha.push_back(1.0f);
          call.beta.push_back(0.0f);
          call.group_size.push_back(0);
        }
        ++call.group_size.back();
        a_ptrs.push_back(g.w);
        b_ptrs.push_back(g.x);
        c_ptrs.push_back(g.y);
      }
      calls.push_back(std::move(call));
    }
  }
  // cuBLAS takes the per-problem pointer arrays in device memory.
  const size_t problems = a_ptrs.size();
  DeviceBuffer pointers;
  QMOE_RETURN_IF_ERROR(pointers.allocate(static_cast<int64_t>(3 * problems * sizeof(void*))));
  auto** a_dev = reinterpret_cast<const void**>(pointers.data());
  auto** b_dev = a_dev + problems;
  auto** c_dev = reinterpret_cast<void**>(pointers.data()) + 2 * problems;
  QMOE_CUDA_TRY(cudaMemcpy(a_dev, a_ptrs.data(), problems * sizeof(void*), cudaMemcpyHostToDevice));
  QMOE_CUDA_TRY(cudaMemcpy(b_dev, b_ptrs.data(), problems * sizeof(void*), cudaMemcpyHostToDevice));
  QMOE_CUDA_TRY(cudaMemcpy(c_dev, c_ptrs.data(), problems * sizeof(void*), cudaMemcpyHostToDevice));

  auto call_status = [&](const GroupedCall& c) {
    return cublasGemmGroupedBatchedEx(
        ctx.cublas(), c.trans_a.data(), c.trans_b.data(), c.m.data(), c.n.data(), c.k.data(),
        c.alpha.data(), a_dev + c.first_pointer, CUDA_R_16BF, c.lda.data(), b_dev + c.first_pointer,
        CUDA_R_16BF, c.ldb.data(), c.beta.data(), c_dev + c.first_pointer, CUDA_R_16BF,
        c.ldc.data(), static_cast<int>(c.group_size.size()), c.group_size.data(),
        CUBLAS_COMPUTE_32F);
  };
  // Probe outside capture: a cuBLAS without bf16 grouped GEMM says so here.
  const cublasStatus_t probe = call_status(calls.front());
  if (probe == CUBLAS_STATUS_NOT_SUPPORTED) {
    *available = false;
    return Status::ok();
  }
  QMOE_CUBLAS_TRY(probe);
  auto body = [&](cudaStream_t) {
    for (const GroupedCall& c : calls) QMOE_CUBLAS_TRY(call_status(c));
    return Status::ok();
  };
  QMOE_RETURN_IF_ERROR(body(ctx.stream()));
  QMOE_CUDA_TRY(cudaStreamSynchronize(ctx.stream()));
  *available = true;
  return time_graph(ctx.stream(), plan.launches(), reps, body, us_per_launch);
}

}  // namespace qmoe::bench
