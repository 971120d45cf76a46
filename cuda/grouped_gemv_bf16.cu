// Instantiation unit: weight-streaming grouped kernel, bf16 activations.
#include "cuda/kernels/grouped_gemv.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemv<__nv_bfloat16>(const GemmProblem&,
                                                                   cudaStream_t);
template cudaError_t qmoe::dev::launch_rotate_x<__nv_bfloat16>(const GemmProblem&, cudaStream_t);
