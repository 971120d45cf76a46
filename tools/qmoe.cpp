// The `qmoe` command-line program: demo, inspect, bench.
#include <cstdio>
#include <string>

#include "tools/demo.hpp"
#if defined(QMOE_WITH_BENCH)
#include "bench/bench.hpp"
#endif

namespace {
void print_help() {
  std::printf(
      "qmoe — quantized Mixture-of-Experts kernels\n\n"
      "usage: qmoe <command> [options]   (qmoe <command> --help for details)\n\n"
      "commands:\n"
      "  demo      quantize an embedded synthetic MoE layer in every format and run it\n"
      "  inspect   list formats and their exact bits/weight\n"
      "  bench     GPU microbenchmark vs cuBLAS bf16 and the bandwidth floor (CUDA builds)\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return print_help(), 2;
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") return print_help(), 0;
  if (cmd == "demo") return qmoe::tools::run_demo(argc - 2, argv + 2);
  if (cmd == "inspect") return qmoe::tools::run_inspect(argc - 2, argv + 2);
  if (cmd == "bench") {
#if defined(QMOE_WITH_BENCH)
    return qmoe::bench::run_cli(argc - 2, argv + 2);
#else
    const bool help =
        argc > 2 && (std::string(argv[2]) == "--help" || std::string(argv[2]) == "-h");
    std::fprintf(help ? stdout : stderr,
                 "usage: qmoe bench [options]\n\nGPU microbenchmark of the grouped expert GEMM "
                 "against cuBLAS bf16 and the\n"
                 "bandwidth/compute floor. unsupported: this qmoe was built without CUDA.\n");
    return help ? 0 : 2;
#endif
  }
  std::fprintf(stderr, "qmoe: unknown command '%s'\n\n", cmd.c_str());
  print_help();
  return 2;
}
