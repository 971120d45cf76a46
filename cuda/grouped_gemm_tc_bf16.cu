// Instantiation unit: tensor-core grouped GEMM, bf16 activations.
#include "cuda/kernels/grouped_gemm_tc.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemm_tc<__nv_bfloat16>(const GemmProblem&,
                                                                      cudaStream_t);
template cudaError_t qmoe::dev::grouped_gemm_tc_smem<__nv_bfloat16>(const GemmProblem&, size_t*,
                                                                    size_t*);
