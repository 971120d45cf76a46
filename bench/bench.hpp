// bench/bench.hpp — `qmoe bench`: the grouped expert GEMM microbenchmark (DESIGN.md §5).
// Times qmoe::grouped_gemm per (shape, tokens, format) against the measured HBM/tensor
// floor and a cuBLAS bf16 baseline, and writes bench/results/<device>-<date>.{json,csv}.
#pragma once

namespace qmoe::bench {

/// Runs the benchmark. argv holds only the options (no program or command name); see
/// `qmoe bench --help`. Returns 0 on success, 2 on bad options, 1 on a CUDA/cuBLAS/qmoe
/// error (printed to stderr).
int run_cli(int argc, char** argv);

}  // namespace qmoe::bench
