// bench/timing.hpp — CUDA-graph timing and the machine's measured floor rates.
#pragma once
#include <cuda_runtime.h>

#include <functional>

#include "bench/gpu_context.hpp"
#include "qmoe/status.hpp"

namespace qmoe::bench {

/// Enqueues the work of one graph on the given stream (while it is being captured).
using GraphBody = std::function<Status(cudaStream_t)>;

/// Captures `body` (which enqueues `launches` equal units of work) into a CUDA graph,
/// replays it a few times to warm up, then up to `reps` times each between two events
/// (fewer, but at least 5, where replays are so long that `reps` would take over ~0.4 s),
/// and returns the median replay time divided by `launches`, in microseconds.
/// Errors: the body's own status (capture is ended first), kCudaError.
Status time_graph(cudaStream_t stream, int launches, int reps, const GraphBody& body,
                  double* us_per_launch);

/// Copy of 1 GiB, device to device: bytes read + written per second, in GB/s, the faster of
/// cudaMemcpyAsync and a 16-byte-vector copy kernel (on the H200 the graph's memcpy node
/// moved 2765 GB/s, the copy kernel ~3920 GB/s).
Status measure_copy_bandwidth(const GpuContext& ctx, int reps, double* gb_per_s);

/// Read-only stream of 1 GiB by a 16-byte-vector kernel: bytes read per second, in GB/s (what
/// a weight-streaming kernel can reach at best), on each of 4 buffers held at once: the best
/// and the worst buffer's rate.
Status measure_read_bandwidth(const GpuContext& ctx, int reps, double* best_gb_per_s,
                              double* worst_gb_per_s);

/// cublasGemmEx 8192^3, bf16 in/out, fp32 compute, random data, in TFLOP/s.
Status measure_bf16_tensor_rate(const GpuContext& ctx, int reps, double* tflop_per_s);

}  // namespace qmoe::bench
