// bench/grouped_gemm_runs.hpp — the same work (every launch of a LaunchPlan: w13 GEMM of x
// into h, then w2 GEMM of h_in into y, per expert over its sorted rows) run by qmoe and by
// the two cuBLAS bf16 baselines, each timed as a CUDA graph (timing.hpp).
#pragma once
#include "bench/device_memory.hpp"
#include "bench/gpu_context.hpp"
#include "bench/launch_plan.hpp"
#include "bench/options.hpp"
#include "bench/weight_pool.hpp"
#include "qmoe/gpu.hpp"

namespace qmoe::bench {

/// qmoe::grouped_gemm on the pool's packed banks (opt's kernel choice, kAuto threshold, integer
/// decode and tile kernel as in GroupedGemmArgs, opt.reps replays), with opt's layer epilogue
/// between the two GEMMs (LayerEpilogue: the gate/up rows of the random banks are read as
/// interleaved by 8). `workspace` grows as needed and may be kept across calls. Errors: qmoe's
/// status (kUnsupported: no kernel for this format/arch), kCudaError.
Status time_qmoe_grouped_gemm(const GpuContext& ctx, const WeightPool& pool, const LaunchPlan& plan,
                              const BenchOptions& opt, DeviceBuffer* workspace,
                              double* us_per_launch);

/// cublasGemmEx per active expert and projection (host-known counts), bf16 in/out, fp32
/// compute. `pool` must be a dense bf16 pool: a slot's codes are its [n, k] row-major
/// weights (for random bf16 the tiled order does not matter).
Status time_cublas_expert_loop(const GpuContext& ctx, const WeightPool& pool,
                               const LaunchPlan& plan, int reps, double* us_per_launch);

/// cublasGemmGroupedBatchedEx, experts with equal token counts in one group, one call per
/// projection. Sets *available = false (and no time) where this cuBLAS rejects the call as
/// not supported.
Status time_cublas_grouped_batched(const GpuContext& ctx, const WeightPool& pool,
                                   const LaunchPlan& plan, int reps, bool* available,
                                   double* us_per_launch);

}  // namespace qmoe::bench
