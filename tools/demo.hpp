// tools/demo.hpp — `qmoe demo`: an embedded, seeded synthetic MoE layer quantized in every
// format, run through the grouped GEMM (GPU if present, else the CPU reference).
#pragma once

namespace qmoe::tools {
int run_demo(int argc, char** argv);
int run_inspect(int argc, char** argv);
}  // namespace qmoe::tools
