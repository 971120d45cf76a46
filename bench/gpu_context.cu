// Device selection, stream and cuBLAS handle of a benchmark run.
#include "bench/check.hpp"
#include "bench/gpu_context.hpp"

namespace qmoe::bench {

namespace {
// NVIDIA recommends at least 32 MiB of cuBLAS workspace on Hopper; more does not hurt.
constexpr int64_t kCublasWorkspaceBytes = int64_t{64} << 20;
}  // namespace

GpuContext::~GpuContext() {
  // Teardown errors cannot be acted on; an earlier failure has already been reported.
  if (cublas_ != nullptr) (void)cublasDestroy(cublas_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Status GpuContext::init() {
  int device = 0;
  QMOE_CUDA_TRY(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  QMOE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  device_name_ = prop.name;
  int l2 = 0;
  QMOE_CUDA_TRY(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  l2_bytes_ = l2;
  QMOE_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  QMOE_CUBLAS_TRY(cublasCreate(&cublas_));
  QMOE_CUBLAS_TRY(cublasSetStream(cublas_, stream_));
  QMOE_RETURN_IF_ERROR(cublas_workspace_.allocate(kCublasWorkspaceBytes));
  QMOE_CUBLAS_TRY(cublasSetWorkspace(cublas_, cublas_workspace_.data(),
                                     static_cast<size_t>(kCublasWorkspaceBytes)));
  QMOE_CUBLAS_TRY(cublasSetPointerMode(cublas_, CUBLAS_POINTER_MODE_HOST));
  return Status::ok();
}

Status GpuContext::free_bytes(int64_t* bytes) const {
  size_t free = 0, total = 0;
  QMOE_CUDA_TRY(cudaMemGetInfo(&free, &total));
  *bytes = static_cast<int64_t>(free);
  return Status::ok();
}

}  // namespace qmoe::bench
