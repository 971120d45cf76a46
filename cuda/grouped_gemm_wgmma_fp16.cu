// Instantiation unit: Hopper wgmma grouped GEMM, fp16 activations.
#include "cuda/kernels/grouped_gemm_wgmma.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemm_wgmma<__half>(const GemmProblem&, cudaStream_t);
template cudaError_t qmoe::dev::grouped_gemm_wgmma_available<__half>(bool*);
