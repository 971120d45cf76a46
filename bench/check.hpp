// bench/check.hpp — CUDA/cuBLAS results as qmoe::Status, naming the failed call and where.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "qmoe/status.hpp"

namespace qmoe::bench {

inline Status cuda_status(cudaError_t err, const char* call, const char* file, int line) {
  if (err == cudaSuccess) return Status::ok();
  return {StatusCode::kCudaError, std::string(call) + " failed at " + file + ":" +
                                      std::to_string(line) + ": " + cudaGetErrorString(err)};
}

inline Status cublas_status(cublasStatus_t err, const char* call, const char* file, int line) {
  if (err == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return {StatusCode::kCudaError, std::string(call) + " failed at " + file + ":" +
                                      std::to_string(line) + ": " + cublasGetStatusName(err) +
                                      " (" + cublasGetStatusString(err) + ")"};
}

}  // namespace qmoe::bench

#define QMOE_CUDA_TRY(call) \
  QMOE_RETURN_IF_ERROR(::qmoe::bench::cuda_status((call), #call, __FILE__, __LINE__))
#define QMOE_CUBLAS_TRY(call) \
  QMOE_RETURN_IF_ERROR(::qmoe::bench::cublas_status((call), #call, __FILE__, __LINE__))
