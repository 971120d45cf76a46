// Instantiation unit: tensor-core grouped GEMM, fp16 activations.
#include "cuda/kernels/grouped_gemm_tc.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemm_tc<__half>(const GemmProblem&, cudaStream_t);
template cudaError_t qmoe::dev::grouped_gemm_tc_smem<__half>(const GemmProblem&, size_t*, size_t*);
