// Instantiation unit: weight-streaming grouped kernel, fp16 activations.
#include "cuda/kernels/grouped_gemv.cuh"

template cudaError_t qmoe::dev::launch_grouped_gemv<__half>(const GemmProblem&, cudaStream_t);
template cudaError_t qmoe::dev::launch_rotate_x<__half>(const GemmProblem&, cudaStream_t);
