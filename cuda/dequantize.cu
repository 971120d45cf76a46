// Instantiation unit: decode-only kernel, both activation types (small, one file).
#include "cuda/kernels/dequantize.cuh"

template cudaError_t qmoe::dev::launch_dequantize_bank<__nv_bfloat16>(const uint8_t*,
                                                                      const ExpertDesc*, int, int,
                                                                      int, void*, cudaStream_t);
template cudaError_t qmoe::dev::launch_dequantize_bank<__half>(const uint8_t*, const ExpertDesc*,
                                                               int, int, int, void*, cudaStream_t);
