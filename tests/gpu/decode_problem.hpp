// tests/gpu/decode_problem.hpp — a decode launch's GemmProblem as the decode kernel's launch
// model (grouped_gemv.cuh choose_variant) reads it, for the tests that pick shapes by it.
#pragma once
#include <cstdint>

#include "cuda/kernels/launch.cuh"

namespace qmoe::gpu_test {

/// n x k weights of `experts` experts, m rows of at most max_tokens tokens per expert, the
/// bank's smallest and largest code tile + parameter block (decoder_strip_bytes).
inline dev::GemmProblem decode_problem(int experts, int n, int k, int64_t m, int max_tokens,
                                       int min_strip_bytes, int max_strip_bytes) {
  dev::GemmProblem p{};
  p.num_experts = experts;
  p.n = n;
  p.k = k;
  p.n_strips = (n + 15) / 16;
  p.k_tiles = (k + 127) / 128;
  p.m = m;
  p.min_tokens = 1;
  p.max_tokens = max_tokens;
  p.min_strip_bytes = min_strip_bytes;
  p.max_strip_bytes = max_strip_bytes;
  return p;
}

}  // namespace qmoe::gpu_test
