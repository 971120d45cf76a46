// Launcher of the gated-SiLU kernel (gated_silu.cuh): grouped_gemm's Epilogue::kSiluMulInterleaved
// after a tile-kernel launch, and silu_mul_interleaved.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/kernels/gated_silu.cuh"
#include "cuda/kernels/launch.cuh"

namespace qmoe::dev {

template <class Act>
cudaError_t launch_silu_mul_interleaved(const void* h, void* y, int64_t rows, int strips,
                                        const int32_t* offsets, int num_experts,
                                        cudaStream_t stream) {
  static GridCache cache;
  const auto* kernel = reinterpret_cast<const void*>(silu_mul_interleaved_kernel<Act>);
  GridSize grid;
  const cudaError_t err = persistent_grid(kernel, 0, 0, 0, &cache, &grid);
  if (err != cudaSuccess) return err;
  // A grid-stride loop: at most the resident blocks, at least one (its threads still wait for
  // the previous kernel, so that the launch's completion implies it).
  const int64_t needed = (rows * strips + kBlockThreads - 1) / kBlockThreads;
  grid.blocks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(grid.blocks, needed)));
  const auto* hv = static_cast<const uint4*>(h);
  auto* yv = static_cast<uint4*>(y);
  void* args[] = {&hv, &yv, &rows, &strips, &offsets, &num_experts};
  return launch_grouped_kernel_args(kernel, grid, 0, args, stream);
}

template cudaError_t launch_silu_mul_interleaved<__nv_bfloat16>(const void*, void*, int64_t, int,
                                                                const int32_t*, int, cudaStream_t);
template cudaError_t launch_silu_mul_interleaved<__half>(const void*, void*, int64_t, int,
                                                         const int32_t*, int, cudaStream_t);

}  // namespace qmoe::dev
