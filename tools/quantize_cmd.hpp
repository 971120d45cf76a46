// tools/quantize_cmd.hpp — `qmoe quantize` (float safetensors -> packed expert banks) and
// `qmoe inspect FILE` (list the banks and tensors of a safetensors file). docs/files.md.
#pragma once

namespace qmoe::tools {
int run_quantize(int argc, char** argv);
/// argv[0] is the file; `--help` prints the usage.
int run_inspect_file(int argc, char** argv);
/// The usage of `qmoe inspect FILE`, its first line starting with `lead` ("usage:").
void print_inspect_file_usage(const char* lead);
}  // namespace qmoe::tools
