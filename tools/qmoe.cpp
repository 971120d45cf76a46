// The `qmoe` command-line program: demo, quantize, inspect, bench.
#include <cstdio>
#include <string>

#include "tools/demo.hpp"
#include "tools/quantize_cmd.hpp"
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
      "  quantize  quantize the float tensors of a safetensors file into packed expert banks\n"
      "  inspect   list formats and their exact bits/weight, or the banks and tensors of a file\n"
      "  bench     GPU microbenchmark vs cuBLAS bf16 and the bandwidth floor (CUDA builds)\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return print_help(), 2;
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") return print_help(), 0;
  if (cmd == "demo") return qmoe::tools::run_demo(argc - 2, argv + 2);
  if (cmd == "quantize") return qmoe::tools::run_quantize(argc - 2, argv + 2);
  if (cmd == "inspect") {
    const std::string first = argc > 2 ? argv[2] : "";
    if (!first.empty() && first[0] != '-') return qmoe::tools::run_inspect_file(argc - 2, argv + 2);
    const int rc = qmoe::tools::run_inspect(argc - 2, argv + 2);
    if (first == "--help" || first == "-h") qmoe::tools::print_inspect_file_usage("\n   or:");
    return rc;
  }
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
