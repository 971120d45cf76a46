// bench/options.hpp — what `qmoe bench` measures: the MoE shapes of DESIGN.md §5, bank
// formats (one format for every expert, or a named per-expert mix) and the command line.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "qmoe/format.hpp"
#include "qmoe/gpu.hpp"

namespace qmoe::bench {

/// One MoE layer's expert FFN: w13 is [E, 2I, H], w2 is [E, H, I].
struct MoeShape {
  std::string name;      ///< a DESIGN.md §5 model's, or "H:I:E:K" for a custom shape
  int64_t hidden;        ///< H
  int64_t intermediate;  ///< I (per expert)
  int32_t experts;       ///< E
  int32_t top_k;         ///< experts per token
};

/// The shapes of DESIGN.md §5, in report order.
const std::vector<MoeShape>& moe_shapes();

/// The formats of a bank's experts: expert e uses palette[e % palette.size()]. A single
/// format is a palette of one; "mixed:<name>" is a named palette (see --help).
struct BankFormat {
  std::string name;  ///< as reported: the canonical format string or "mixed:<name>"
  std::vector<FormatSpec> palette;

  const FormatSpec& for_expert(int64_t e) const {
    return palette[static_cast<size_t>(e) % palette.size()];
  }
};

/// Parses "int4:g128", "bf16", ... or "mixed:<name>". Errors: kInvalidArgument naming the text.
Status parse_bank_format(const std::string& text, BankFormat* out);

/// What the timed qmoe layer does between its two GEMMs (--epilogue).
enum class LayerEpilogue {
  kNone,        ///< none: w2 reads an input of its own (the GEMMs alone, as the baselines)
  kSiluFused,   ///< silu: gate/up with Epilogue::kSiluMulInterleaved writes w2's input
  kSiluKernel,  ///< silu-kernel: gate/up, then silu_mul_interleaved writes w2's input
};

struct BenchOptions {
  std::vector<MoeShape> shapes;
  std::vector<int64_t> tokens;
  std::vector<BankFormat> formats;
  KernelChoice kernel = KernelChoice::kAuto;
  std::string kernel_name = "auto";
  int decode_max_tokens = 0;  ///< kAuto's threshold: --kernel auto:N; 0 (auto): chosen per call
  IntegerDecode integer_decode = IntegerDecode::kAuto;  ///< --integer-decode
  std::string integer_decode_name = "auto";
  TileKernel tile_kernel = TileKernel::kAuto;  ///< --tile-kernel
  std::string tile_kernel_name = "auto";
  LayerEpilogue epilogue = LayerEpilogue::kNone;  ///< --epilogue
  std::string epilogue_name = "none";
  int reps = 0;
  std::string out_dir = "bench/results";
  std::string commit;  ///< --commit, else $QMOE_COMMIT, else "unknown"
  bool help = false;
  bool dry_run = false;  ///< --dry-run: print the sweep (print_plan), touch no device
};

/// Parses argv (options only). Errors: kInvalidArgument with a message for the user.
Status parse_options(int argc, char** argv, BenchOptions* out);

void print_usage(std::FILE* to);

/// The sweep `o` asks for, one line per shape (name, H, I, E, top-k), then its token counts,
/// formats and kernel choice: what --dry-run prints.
void print_plan(const BenchOptions& o, std::FILE* to);

}  // namespace qmoe::bench
