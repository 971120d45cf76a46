// bench/gpu_context.hpp — the device, stream and cuBLAS handle one benchmark run uses.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "bench/device_memory.hpp"

namespace qmoe::bench {

class GpuContext {
 public:
  GpuContext() = default;
  ~GpuContext();
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;

  /// Selects the current device, creates a non-blocking stream (the legacy default stream
  /// cannot be captured) and a cuBLAS handle bound to it with its own workspace, so that
  /// cuBLAS never allocates while a graph is captured.
  Status init();

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  const std::string& device_name() const { return device_name_; }
  int64_t l2_bytes() const { return l2_bytes_; }
  /// Currently free device memory.
  Status free_bytes(int64_t* bytes) const;

 private:
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer cublas_workspace_;
  std::string device_name_;
  int64_t l2_bytes_ = 0;
};

}  // namespace qmoe::bench
