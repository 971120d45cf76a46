// Persistent-grid sizing shared by the grouped kernels' launchers.
#include <algorithm>

#include "cuda/kernels/launch.cuh"

namespace qmoe::dev {

cudaError_t persistent_grid(const void* kernel, size_t smem_limit, size_t smem_bytes,
                            int size_class, GridCache* cache, int* grid) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const bool cacheable = device >= 0 && device < GridCache::kMaxDevices && size_class >= 0 &&
                         size_class < GridCache::kSizeClasses;
  if (cacheable) {
    const int blocks = cache->blocks[device][size_class].load(std::memory_order_relaxed);
    if (blocks > 0) {
      *grid = blocks;
      return cudaSuccess;
    }
  }
  // Dynamic shared memory above 48 KB needs an opt-in per function and device, capped at
  // what the device offers beside the kernel's static shared memory (a launch above it then
  // fails with a clear launch error).
  int optin = 0;
  err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  cudaFuncAttributes attr{};
  err = cudaFuncGetAttributes(&attr, kernel);
  if (err != cudaSuccess) return err;
  const size_t room =
      static_cast<size_t>(optin) - std::min(static_cast<size_t>(optin), attr.sharedSizeBytes);
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(std::min(smem_limit, room)));
  if (err != cudaSuccess) return err;
  int per_sm = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlockThreads, smem_bytes);
  if (err != cudaSuccess) return err;
  int sms = 0;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  const int blocks = sms * std::max(per_sm, 1);
  if (cacheable) cache->blocks[device][size_class].store(blocks, std::memory_order_relaxed);
  *grid = blocks;
  return cudaSuccess;
}

}  // namespace qmoe::dev
