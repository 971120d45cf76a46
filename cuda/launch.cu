// Persistent-grid sizing shared by the grouped kernels' launchers.
#include <algorithm>
#include <climits>

#include "cuda/kernels/launch.cuh"

namespace qmoe::dev {

namespace {

/// Dynamic shared memory above 48 KB needs an opt-in per function and device, capped at what
/// the device offers beside the kernel's static shared memory.
cudaError_t smem_room(const void* kernel, int device, size_t* room,
                      cudaFuncAttributes* attr = nullptr) {
  int optin = 0;
  cudaError_t err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  cudaFuncAttributes own{};
  if (attr == nullptr) attr = &own;
  err = cudaFuncGetAttributes(attr, kernel);
  if (err != cudaSuccess) return err;
  *room = static_cast<size_t>(optin) - std::min(static_cast<size_t>(optin), attr->sharedSizeBytes);
  return cudaSuccess;
}

}  // namespace

cudaError_t kernel_smem_room(const void* kernel, SmemRoomCache* cache, size_t* room) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const bool cacheable = device >= 0 && device < GridCache::kMaxDevices;
  if (cacheable) {
    const int cached = cache->room[device].load(std::memory_order_relaxed);
    if (cached > 0) {
      *room = static_cast<size_t>(cached - 1);
      return cudaSuccess;
    }
  }
  err = smem_room(kernel, device, room);
  if (err != cudaSuccess) return err;
  if (cacheable) cache->room[device].store(static_cast<int>(*room) + 1, std::memory_order_relaxed);
  return cudaSuccess;
}

cudaError_t persistent_grid(const void* kernel, size_t smem_limit, size_t smem_bytes,
                            int size_class, GridCache* cache, GridSize* grid) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const bool cacheable = device >= 0 && device < GridCache::kMaxDevices && size_class >= 0 &&
                         size_class < GridCache::kSizeClasses;
  if (cacheable) {
    const int blocks = cache->blocks[device][size_class].load(std::memory_order_relaxed);
    const int pdl = cache->pdl[device].load(std::memory_order_relaxed);
    if (blocks > 0 && pdl > 0) {
      *grid = GridSize{blocks, pdl == 2};
      return cudaSuccess;
    }
  }
  // Opted in up to the room the device leaves (a launch above it then fails with a clear
  // launch error).
  cudaFuncAttributes attr{};
  size_t room = 0;
  err = smem_room(kernel, device, &room, &attr);
  if (err != cudaSuccess) return err;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(std::min(smem_limit, room)));
  if (err != cudaSuccess) return err;
  int per_sm = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kBlockThreads, smem_bytes);
  if (err != cudaSuccess) return err;
  int sms = 0;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  int major = 0;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (err != cudaSuccess) return err;
  const int blocks = sms * std::max(per_sm, 1);
  const bool pdl = major >= 9 && attr.ptxVersion >= 90;
  if (cacheable) {
    cache->blocks[device][size_class].store(blocks, std::memory_order_relaxed);
    cache->pdl[device].store(pdl ? 2 : 1, std::memory_order_relaxed);
  }
  *grid = GridSize{blocks, pdl};
  return cudaSuccess;
}

cudaError_t launch_grouped_kernel(const void* kernel, const GridSize& grid, size_t smem_bytes,
                                  const GemmProblem& p, cudaStream_t stream) {
  void* args[] = {const_cast<GemmProblem*>(&p)};
  return launch_grouped_kernel_args(kernel, grid, smem_bytes, args, stream);
}

cudaError_t launch_grouped_kernel_args(const void* kernel, const GridSize& grid, size_t smem_bytes,
                                       void** args, cudaStream_t stream) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(grid.blocks));
  config.blockDim = dim3(kBlockThreads);
  config.dynamicSmemBytes = smem_bytes;
  config.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attr;
  config.numAttrs = grid.pdl ? 1 : 0;
  return cudaLaunchKernelExC(&config, kernel, args);
}

cudaError_t launch_warp_kernel(const void* kernel, int64_t warps, bool pdl, void** args,
                               cudaStream_t stream) {
  const int64_t blocks = (warps + kBlockWarps - 1) / kBlockWarps;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  return launch_grouped_kernel_args(kernel, GridSize{static_cast<int>(blocks), pdl}, 0, args,
                                    stream);
}

}  // namespace qmoe::dev
