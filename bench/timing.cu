// Graph-replay timing and the copy-bandwidth / tensor-rate measurements behind the floor.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench/check.hpp"
#include "bench/device_memory.hpp"
#include "bench/timing.hpp"

namespace qmoe::bench {

namespace {

// Replays before timing, after the first (which uploads the graph): they settle clocks and
// estimate the replay time for the budget below.
constexpr int kWarmupReplays = 3;
// Long replays get fewer timed reps (never fewer than kMinReps), so that no measurement
// takes much more than this: it bounds a full sweep's device time when a kernel is slow.
constexpr double kMeasureBudgetMs = 400;
constexpr int kMinReps = 5;
// 1 GiB per copy: far beyond any L2, long enough (~0.7 ms) that launch overhead is noise.
constexpr int64_t kCopyBytes = int64_t{1} << 30;
// Square GEMM size for the tensor rate: large enough to reach cuBLAS's steady-state rate.
constexpr int kRateGemmDim = 8192;

class GraphGuard {
 public:
  ~GraphGuard() {
    // Teardown errors cannot be acted on; earlier failures are already reported.
    if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
};

class EventPair {
 public:
  ~EventPair() {
    if (start != nullptr) (void)cudaEventDestroy(start);
    if (stop != nullptr) (void)cudaEventDestroy(stop);
  }
  cudaEvent_t start = nullptr, stop = nullptr;
};

}  // namespace

Status time_graph(cudaStream_t stream, int launches, int reps, const GraphBody& body,
                  double* us_per_launch) {
  if (launches < 1 || reps < 1)
    return invalid_argument("time_graph: launches and reps must be >= 1");
  GraphGuard g;
  QMOE_CUDA_TRY(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status body_status = body(stream);
  const cudaError_t end = cudaStreamEndCapture(stream, &g.graph);
  QMOE_RETURN_IF_ERROR(body_status);
  QMOE_CUDA_TRY(end);
  QMOE_CUDA_TRY(cudaGraphInstantiate(&g.exec, g.graph, 0));

  EventPair warmup;
  QMOE_CUDA_TRY(cudaEventCreate(&warmup.start));
  QMOE_CUDA_TRY(cudaEventCreate(&warmup.stop));
  QMOE_CUDA_TRY(cudaGraphLaunch(g.exec, stream));  // uploads the graph; not timed
  QMOE_CUDA_TRY(cudaEventRecord(warmup.start, stream));
  for (int i = 0; i < kWarmupReplays; ++i) QMOE_CUDA_TRY(cudaGraphLaunch(g.exec, stream));
  QMOE_CUDA_TRY(cudaEventRecord(warmup.stop, stream));
  QMOE_CUDA_TRY(cudaEventSynchronize(warmup.stop));
  float warmup_ms = 0;
  QMOE_CUDA_TRY(cudaEventElapsedTime(&warmup_ms, warmup.start, warmup.stop));
  const double replay_ms = std::max(1e-3, static_cast<double>(warmup_ms) / kWarmupReplays);
  reps = std::min(reps, std::max(kMinReps, static_cast<int>(kMeasureBudgetMs / replay_ms)));

  std::vector<EventPair> events(static_cast<size_t>(reps));
  for (EventPair& e : events) {
    QMOE_CUDA_TRY(cudaEventCreate(&e.start));
    QMOE_CUDA_TRY(cudaEventCreate(&e.stop));
  }
  for (EventPair& e : events) {
    QMOE_CUDA_TRY(cudaEventRecord(e.start, stream));
    QMOE_CUDA_TRY(cudaGraphLaunch(g.exec, stream));
    QMOE_CUDA_TRY(cudaEventRecord(e.stop, stream));
  }
  QMOE_CUDA_TRY(cudaStreamSynchronize(stream));
  std::vector<float> ms(static_cast<size_t>(reps));
  for (size_t i = 0; i < ms.size(); ++i)
    QMOE_CUDA_TRY(cudaEventElapsedTime(&ms[i], events[i].start, events[i].stop));
  std::nth_element(ms.begin(), ms.begin() + reps / 2, ms.end());
  double median = ms[static_cast<size_t>(reps / 2)];
  if (reps % 2 == 0) {
    const float lower = *std::max_element(ms.begin(), ms.begin() + reps / 2);
    median = (median + lower) / 2;
  }
  *us_per_launch = median * 1000.0 / launches;
  return Status::ok();
}

namespace {

// The streaming kernels below: 16-byte accesses, kUnroll independent loads in flight per
// thread per step, a grid of as many 256-thread blocks as are resident (the whole GPU busy).
constexpr int kStreamThreads = 256;
constexpr int kUnroll = 4;
// Buffers of kCopyBytes the read rate is measured on.
constexpr int kReadBuffers = 4;

/// Grid-stride pass over n 16-byte words: kUnroll loads issued before any is used, then
/// visit(i, word) for each.
template <class Visit>
__device__ __forceinline__ void stream_words(const uint4* __restrict__ src, int64_t n,
                                             Visit visit) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kStreamThreads;
  int64_t i = static_cast<int64_t>(blockIdx.x) * kStreamThreads + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < n; i += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = __ldcs(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) visit(i + u * stride, v[u]);
  }
  for (; i < n; i += stride) visit(i, __ldcs(src + i));
}

__global__ void __launch_bounds__(kStreamThreads)
    copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, int64_t n) {
  stream_words(src, n, [&](int64_t i, const uint4& v) { __stcs(dst + i, v); });
}

// Reads every word and folds them by XOR; each block writes its fold, so no load is dead.
__global__ void __launch_bounds__(kStreamThreads)
    read_kernel(const uint4* __restrict__ src, int64_t n, uint32_t* folds) {
  uint32_t fold = 0;
  stream_words(src, n, [&](int64_t, const uint4& v) { fold ^= v.x ^ v.y ^ v.z ^ v.w; });
  fold ^= __shfl_xor_sync(0xffffffffu, fold, 16);
  fold ^= __shfl_xor_sync(0xffffffffu, fold, 8);
  fold ^= __shfl_xor_sync(0xffffffffu, fold, 4);
  fold ^= __shfl_xor_sync(0xffffffffu, fold, 2);
  fold ^= __shfl_xor_sync(0xffffffffu, fold, 1);
  if ((threadIdx.x & 31) == 0) atomicXor(folds + blockIdx.x, fold);
}

/// Resident blocks of a streaming kernel on the current device.
Status resident_blocks(const void* kernel, int* blocks) {
  int device = 0, sms = 0, per_sm = 0;
  QMOE_CUDA_TRY(cudaGetDevice(&device));
  QMOE_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  QMOE_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStreamThreads, 0));
  *blocks = sms * std::max(per_sm, 1);
  return Status::ok();
}

}  // namespace

Status measure_copy_bandwidth(const GpuContext& ctx, int reps, double* gb_per_s) {
  DeviceBuffer src, dst;
  QMOE_RETURN_IF_ERROR(src.allocate(kCopyBytes));
  QMOE_RETURN_IF_ERROR(dst.allocate(kCopyBytes));
  QMOE_RETURN_IF_ERROR(fill_random(src.data(), kCopyBytes, FillKind::kCodes, 0, 1, ctx.stream()));
  auto memcpy_copy = [&](cudaStream_t s) {
    QMOE_CUDA_TRY(cudaMemcpyAsync(dst.data(), src.data(), static_cast<size_t>(kCopyBytes),
                                  cudaMemcpyDeviceToDevice, s));
    return Status::ok();
  };
  int blocks = 0;
  QMOE_RETURN_IF_ERROR(resident_blocks(reinterpret_cast<const void*>(copy_kernel), &blocks));
  auto kernel_copy = [&](cudaStream_t s) {
    copy_kernel<<<blocks, kStreamThreads, 0, s>>>(reinterpret_cast<const uint4*>(src.data()),
                                                  reinterpret_cast<uint4*>(dst.data()),
                                                  kCopyBytes / static_cast<int64_t>(sizeof(uint4)));
    QMOE_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  };
  double memcpy_us = 0, kernel_us = 0;
  QMOE_RETURN_IF_ERROR(time_graph(ctx.stream(), 1, reps, memcpy_copy, &memcpy_us));
  QMOE_RETURN_IF_ERROR(time_graph(ctx.stream(), 1, reps, kernel_copy, &kernel_us));
  *gb_per_s = 2.0 * static_cast<double>(kCopyBytes) / (std::min(memcpy_us, kernel_us) * 1e3);
  return Status::ok();
}

Status measure_read_bandwidth(const GpuContext& ctx, int reps, double* best_gb_per_s,
                              double* worst_gb_per_s) {
  int blocks = 0;
  QMOE_RETURN_IF_ERROR(resident_blocks(reinterpret_cast<const void*>(read_kernel), &blocks));
  DeviceBuffer folds;
  QMOE_RETURN_IF_ERROR(folds.allocate(static_cast<int64_t>(blocks) * 4));
  QMOE_CUDA_TRY(cudaMemsetAsync(folds.data(), 0, static_cast<size_t>(blocks) * 4, ctx.stream()));
  // Several buffers, all held at once (each its own physical pages): the read rate of one
  // 1 GiB buffer differed by ~10 % between processes on the H200.
  DeviceBuffer src[kReadBuffers];
  for (int b = 0; b < kReadBuffers; ++b) {
    QMOE_RETURN_IF_ERROR(src[b].allocate(kCopyBytes));
    QMOE_RETURN_IF_ERROR(
        fill_random(src[b].data(), kCopyBytes, FillKind::kCodes, 0, 4 + b, ctx.stream()));
  }
  *best_gb_per_s = 0;
  *worst_gb_per_s = 0;
  for (int b = 0; b < kReadBuffers; ++b) {
    auto read = [&](cudaStream_t s) {
      read_kernel<<<blocks, kStreamThreads, 0, s>>>(
          reinterpret_cast<const uint4*>(src[b].data()),
          kCopyBytes / static_cast<int64_t>(sizeof(uint4)),
          reinterpret_cast<uint32_t*>(folds.data()));
      QMOE_CUDA_TRY(cudaGetLastError());
      return Status::ok();
    };
    double us = 0;
    QMOE_RETURN_IF_ERROR(time_graph(ctx.stream(), 1, reps, read, &us));
    const double rate = static_cast<double>(kCopyBytes) / (us * 1e3);
    *best_gb_per_s = std::max(*best_gb_per_s, rate);
    *worst_gb_per_s = b == 0 ? rate : std::min(*worst_gb_per_s, rate);
  }
  return Status::ok();
}

Status measure_bf16_tensor_rate(const GpuContext& ctx, int reps, double* tflop_per_s) {
  const int64_t n = kRateGemmDim;
  const int64_t matrix_bytes = n * n * 2;
  DeviceBuffer a, b, c;
  QMOE_RETURN_IF_ERROR(a.allocate(matrix_bytes));
  QMOE_RETURN_IF_ERROR(b.allocate(matrix_bytes));
  QMOE_RETURN_IF_ERROR(c.allocate(matrix_bytes));
  QMOE_RETURN_IF_ERROR(fill_random(a.data(), matrix_bytes, FillKind::kBf16, 0, 2, ctx.stream()));
  QMOE_RETURN_IF_ERROR(fill_random(b.data(), matrix_bytes, FillKind::kBf16, 0, 3, ctx.stream()));
  const float alpha = 1.0f, beta = 0.0f;
  const int dim = kRateGemmDim;
  auto gemm = [&](cudaStream_t) {
    QMOE_CUBLAS_TRY(cublasGemmEx(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, dim, dim, dim, &alpha,
                                 a.data(), CUDA_R_16BF, dim, b.data(), CUDA_R_16BF, dim, &beta,
                                 c.data(), CUDA_R_16BF, dim, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    return Status::ok();
  };
  // One eager call first: cuBLAS picks and caches its kernel outside the capture.
  QMOE_RETURN_IF_ERROR(gemm(ctx.stream()));
  double us = 0;
  QMOE_RETURN_IF_ERROR(time_graph(ctx.stream(), 1, reps, gemm, &us));
  *tflop_per_s = 2.0 * static_cast<double>(n * n * n) / (us * 1e6);
  return Status::ok();
}

}  // namespace qmoe::bench
