// Instantiation unit: Hopper wgmma grouped GEMM, bf16 activations.
#include "cuda/kernels/grouped_gemm_wgmma.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemm_wgmma<__nv_bfloat16>(const GemmProblem&,
                                                                         cudaStream_t);
template cudaError_t qmoe::dev::grouped_gemm_wgmma_available<__nv_bfloat16>(bool*);
