// The benchmark's shapes, format palettes and command line.
#include <cstdlib>
#include <map>
#include <string>
#include <utility>

#include "bench/options.hpp"

namespace qmoe::bench {

namespace {

struct NamedMix {
  const char* name;
  const char* description;
  std::vector<const char*> palette;
};

// Experts take the palette round-robin by index: with uniform routing every format is hit
// equally often, so the mix's floor is the bytes-weighted average of its formats.
const std::vector<NamedMix>& named_mixes() {
  static const std::vector<NamedMix> mixes{
      {"mixed:rr",
       "experts round-robin over int2:g128, int3:g128, int4:g128, int8:g128",
       {"int2:g128", "int3:g128", "int4:g128", "int8:g128"}},
      {"mixed:lo", "experts round-robin over int2:g128, int3:g128", {"int2:g128", "int3:g128"}},
      {"mixed:hi", "experts round-robin over int4:g128, int8:g128", {"int4:g128", "int8:g128"}},
      // A trellis format beside an int one: on sm_90a their tile work takes two launches (the
      // mma.sync kernel for tcq, wgmma for int4; kernel_split.cuh tile_launches).
      {"mixed:tq", "experts round-robin over tcq2, int4:g128", {"tcq2", "int4:g128"}},
  };
  return mixes;
}

const std::vector<int64_t> kAllTokens{1, 4, 16, 64, 256, 1024, 4096, 16384};
const char* const kDefaultFormats = "bf16,int4:g128,int3:g128,int2:g128,int8:g128,mixed:rr";
constexpr int kDefaultReps = 30;

// --quick: a smoke run of a few seconds (one big-expert and one many-expert shape).
const char* const kQuickShapes = "mixtral-8x7b,qwen3-30b-a3b";
const char* const kQuickTokens = "1,256";
const char* const kQuickFormats = "bf16,int4:g128,mixed:rr";
constexpr int kQuickReps = 10;

// Upper bound on tokens so T * top_k always fits the int32 expert offsets.
constexpr int64_t kMaxTokens = int64_t{1} << 20;

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    const size_t pos = s.find(',', start);
    items.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return items;
    start = pos + 1;
  }
}

bool parse_positive(const std::string& s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  const int64_t v = std::atoll(s.c_str());
  if (v < 1 || v > max) return false;
  *out = v;
  return true;
}

/// "<name padded to 17> H=<H> I=<I> E=<E> top-<K>": a shape as --help and --dry-run list it.
std::string shape_text(const MoeShape& s) {
  char text[160];
  std::snprintf(text, sizeof(text), "%-17s H=%lld I=%lld E=%d top-%d", s.name.c_str(),
                static_cast<long long>(s.hidden), static_cast<long long>(s.intermediate), s.experts,
                s.top_k);
  return text;
}

// Bounds of a custom shape "H:I:E:K": sanity limits (a bank that does not fit the device is
// skipped with a note); K <= 1024 keeps T * K (T <= kMaxTokens) within the int32 offsets.
constexpr int64_t kMaxCustomDim = 65536;
constexpr int64_t kMaxCustomExperts = 1024;

/// A custom shape "H:I:E:K" (hidden, intermediate, experts, top-k), e.g. "2048:1408:6:2" for a
/// bank whose schedule size (E) the model shapes do not cover. false if `text` is not one.
bool parse_custom_shape(const std::string& text, MoeShape* out) {
  int64_t v[4] = {};
  const int64_t max[4] = {kMaxCustomDim, kMaxCustomDim, kMaxCustomExperts, kMaxCustomExperts};
  size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t pos = text.find(':', start);
    if ((i < 3) != (pos != std::string::npos)) return false;
    if (!parse_positive(text.substr(start, pos - start), max[i], &v[i])) return false;
    start = pos + 1;
  }
  if (v[3] > v[2]) return false;  // top-k <= E
  *out = MoeShape{text, v[0], v[1], static_cast<int32_t>(v[2]), static_cast<int32_t>(v[3])};
  return true;
}

Status parse_shapes(const std::string& list, std::vector<MoeShape>* out) {
  out->clear();
  if (list == "all") return *out = moe_shapes(), Status::ok();
  for (const std::string& name : split_list(list)) {
    if (name.find(':') != std::string::npos) {
      MoeShape custom;
      if (!parse_custom_shape(name, &custom))
        return invalid_argument("bad shape '" + name +
                                "' (a custom shape is H:I:E:K with H, I in 1.." +
                                std::to_string(kMaxCustomDim) + ", E in 1.." +
                                std::to_string(kMaxCustomExperts) + ", top-k K in 1..E)");
      out->push_back(custom);
      continue;
    }
    bool found = false;
    for (const MoeShape& s : moe_shapes())
      if (name == s.name) out->push_back(s), found = true;
    if (!found) {
      std::string known;
      for (const MoeShape& s : moe_shapes())
        known += std::string(known.empty() ? "" : ", ") + s.name;
      return invalid_argument("unknown shape '" + name + "' (known: " + known +
                              ", all, or H:I:E:K)");
    }
  }
  return Status::ok();
}

Status parse_tokens(const std::string& list, std::vector<int64_t>* out) {
  out->clear();
  if (list == "all") return *out = kAllTokens, Status::ok();
  for (const std::string& item : split_list(list)) {
    int64_t t = 0;
    if (!parse_positive(item, kMaxTokens, &t))
      return invalid_argument("bad token count '" + item + "' (expected 1.." +
                              std::to_string(kMaxTokens) + ")");
    out->push_back(t);
  }
  return Status::ok();
}

Status parse_formats(const std::string& list, std::vector<BankFormat>* out) {
  out->clear();
  for (const std::string& item : split_list(list)) {
    BankFormat f;
    QMOE_RETURN_IF_ERROR(parse_bank_format(item, &f));
    out->push_back(f);
  }
  return Status::ok();
}

/// *out = the value `name` stands for among `choices` of option `option`, or kInvalidArgument
/// "bad <option> '<name>' (<listed>)".
template <class T, size_t N>
Status pick_named(const char* option, const std::string& name,
                  const std::pair<const char*, T> (&choices)[N], const char* listed, T* out) {
  for (const auto& [text, value] : choices)
    if (name == text) {
      *out = value;
      return Status::ok();
    }
  return invalid_argument(std::string("bad ") + option + " '" + name + "' (" + listed + ")");
}

}  // namespace

const std::vector<MoeShape>& moe_shapes() {
  static const std::vector<MoeShape> shapes{
      {"mixtral-8x7b", 4096, 14336, 8, 2},  {"deepseek-v2-lite", 2048, 1408, 64, 6},
      {"qwen3-30b-a3b", 2048, 768, 128, 8}, {"olmoe", 2048, 1024, 64, 8},
      {"deepseek-v3", 7168, 2048, 256, 8},
  };
  return shapes;
}

namespace {

Status check_device_format(const FormatSpec& spec) {
  if (has_device_decoder(spec)) return Status::ok();
  return unsupported("format " + spec.to_string() +
                     " has no device decoder yet (docs/formats.md §1): nothing to time");
}

}  // namespace

Status parse_bank_format(const std::string& text, BankFormat* out) {
  for (const NamedMix& mix : named_mixes()) {
    if (text != mix.name) continue;
    BankFormat f;
    f.name = mix.name;
    for (const char* member : mix.palette) {
      FormatSpec spec;
      QMOE_RETURN_IF_ERROR(FormatSpec::parse(member, &spec));
      QMOE_RETURN_IF_ERROR(check_device_format(spec));
      f.palette.push_back(spec);
    }
    *out = f;
    return Status::ok();
  }
  if (text.compare(0, 6, "mixed:") == 0) {
    std::string known;
    for (const NamedMix& mix : named_mixes())
      known += std::string(known.empty() ? "" : ", ") + mix.name;
    return invalid_argument("unknown mix '" + text + "' (known: " + known + ")");
  }
  FormatSpec spec;
  QMOE_RETURN_IF_ERROR(FormatSpec::parse(text, &spec));
  QMOE_RETURN_IF_ERROR(check_device_format(spec));
  *out = BankFormat{spec.to_string(), {spec}};
  return Status::ok();
}

Status parse_options(int argc, char** argv, BenchOptions* out) {
  // Collect the flags first so that --quick only changes what was not given explicitly.
  std::map<std::string, std::string> values;
  bool quick = false;
  BenchOptions o;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg == "--quick") {
      quick = true;
      continue;
    }
    if (arg == "--dry-run") {
      o.dry_run = true;
      continue;
    }
    static const char* const kValued[] = {
        "--shapes", "--tokens", "--formats",        "--kernel",   "--reps",
        "--out",    "--commit", "--integer-decode", "--epilogue", "--tile-kernel"};
    bool valued = false;
    for (const char* name : kValued) valued = valued || arg == name;
    if (!valued) return invalid_argument("unknown option '" + arg + "'");
    if (i + 1 >= argc) return invalid_argument("option " + arg + " needs a value");
    values[arg] = argv[++i];
  }
  if (o.help) return *out = o, Status::ok();

  auto value_or = [&](const char* name, const std::string& fallback) {
    const auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  };
  QMOE_RETURN_IF_ERROR(parse_shapes(value_or("--shapes", quick ? kQuickShapes : "all"), &o.shapes));
  QMOE_RETURN_IF_ERROR(parse_tokens(value_or("--tokens", quick ? kQuickTokens : "all"), &o.tokens));
  QMOE_RETURN_IF_ERROR(
      parse_formats(value_or("--formats", quick ? kQuickFormats : kDefaultFormats), &o.formats));

  o.kernel_name = value_or("--kernel", "auto");
  if (o.kernel_name == "auto") {
    o.kernel = KernelChoice::kAuto;
  } else if (o.kernel_name.rfind("auto:", 0) == 0) {
    int64_t threshold = 0;
    if (!parse_positive(o.kernel_name.substr(5), kMaxDecodeMaxTokens, &threshold))
      return invalid_argument("bad --kernel '" + o.kernel_name + "' (auto:N needs N in 1.." +
                              std::to_string(kMaxDecodeMaxTokens) + ")");
    o.kernel = KernelChoice::kAuto;
    o.decode_max_tokens = static_cast<int>(threshold);
  } else if (o.kernel_name == "decode")
    o.kernel = KernelChoice::kDecode;
  else if (o.kernel_name == "prefill")
    o.kernel = KernelChoice::kPrefill;
  else
    return invalid_argument("bad --kernel '" + o.kernel_name +
                            "' (auto, auto:N, decode or prefill)");

  o.integer_decode_name = value_or("--integer-decode", "auto");
  static const std::pair<const char*, IntegerDecode> kDecodes[] = {
      {"auto", IntegerDecode::kAuto}, {"on", IntegerDecode::kOn}, {"off", IntegerDecode::kOff}};
  QMOE_RETURN_IF_ERROR(pick_named("--integer-decode", o.integer_decode_name, kDecodes,
                                  "auto, on or off", &o.integer_decode));

  o.tile_kernel_name = value_or("--tile-kernel", "auto");
  static const std::pair<const char*, TileKernel> kTileKernels[] = {
      {"auto", TileKernel::kAuto}, {"mma", TileKernel::kMmaSync}, {"wgmma", TileKernel::kWgmma}};
  QMOE_RETURN_IF_ERROR(pick_named("--tile-kernel", o.tile_kernel_name, kTileKernels,
                                  "auto, mma or wgmma", &o.tile_kernel));

  o.epilogue_name = value_or("--epilogue", "none");
  static const std::pair<const char*, LayerEpilogue> kEpilogues[] = {
      {"none", LayerEpilogue::kNone},
      {"silu", LayerEpilogue::kSiluFused},
      {"silu-kernel", LayerEpilogue::kSiluKernel}};
  QMOE_RETURN_IF_ERROR(pick_named("--epilogue", o.epilogue_name, kEpilogues,
                                  "none, silu or silu-kernel", &o.epilogue));

  int64_t reps = quick ? kQuickReps : kDefaultReps;
  if (values.count("--reps") && !parse_positive(values["--reps"], 100000, &reps))
    return invalid_argument("bad --reps '" + values["--reps"] + "' (expected 1..100000)");
  o.reps = static_cast<int>(reps);

  o.out_dir = value_or("--out", o.out_dir);
  if (o.out_dir.empty()) return invalid_argument("--out needs a directory");
  const char* env_commit = std::getenv("QMOE_COMMIT");
  o.commit = value_or("--commit", env_commit != nullptr && *env_commit ? env_commit : "unknown");
  *out = o;
  return Status::ok();
}

void print_usage(std::FILE* to) {
  std::fprintf(to,
               "usage: qmoe bench [options]\n\n"
               "Times qmoe::grouped_gemm (the expert FFN's w13 then w2 GEMM over tokens sorted\n"
               "by expert) per (shape, tokens, format) as the median of CUDA-graph replays over\n"
               "weights and activations rotated beyond 4x L2, against the floor\n"
               "max(bytes / measured HBM bandwidth, flops / measured bf16 cuBLAS rate) (HBM: the\n"
               "faster of a read-only stream and a copy) and the\n"
               "faster cuBLAS bf16 baseline (per-expert cublasGemmEx loop or\n"
               "cublasGemmGroupedBatchedEx). Writes <out>/<device>-<yyyy-mm-dd>.json and .csv.\n\n"
               "options:\n"
               "  --shapes LIST    comma list or 'all' (default all):");
  for (const MoeShape& s : moe_shapes())
    std::fprintf(to, "\n                     %s", shape_text(s).c_str());
  std::fprintf(
      to,
      "\n                     H:I:E:K           a custom shape, e.g. 2048:1408:6:2"
      "\n  --tokens LIST    token counts T (rows M = T * top_k), or 'all' (default):\n"
      "                   1,4,16,64,256,1024,4096,16384\n"
      "  --formats LIST   format strings (bf16, fp16, int<2|3|4|8>:g<32|64|128>|pc[:sym])\n"
      "                   or named mixes; default\n"
      "                   %s\n"
      "                   mixes:",
      kDefaultFormats);
  for (const NamedMix& mix : named_mixes())
    std::fprintf(to, "\n                     %-10s %s", mix.name, mix.description);
  std::fprintf(
      to,
      "\n  --kernel K       auto | auto:N | decode | prefill (default auto: one kernel per call,\n"
      "                   chosen from the mean tokens per expert; auto:N: per expert, the\n"
      "                   decode kernel up to N tokens (1..64), the tile kernel above)\n"
      "  --integer-decode D  auto | on | off: the decode kernel's integer-mma decode of int\n"
      "                   experts (default auto: by the bank's formats and the launch's size)\n"
      "  --tile-kernel T  auto | mma | wgmma: the tile kernel above the decode kernel's share\n"
      "                   (default auto; mma: the mma.sync kernel, the sm_80 path, on every\n"
      "                   device; wgmma: sm_90a's, trellis experts too at any mean; rows it\n"
      "                   cannot run are skipped)\n"
      "  --epilogue E     none | silu | silu-kernel: what qmoe's layer does between its GEMMs\n"
      "                   (default none: the GEMMs alone, as the baselines; silu: the gate/up\n"
      "                   call's fused gated-SiLU epilogue writes the down projection's input;\n"
      "                   silu-kernel: the same activation as a kernel of its own). The floor\n"
      "                   and the baselines count the GEMMs only\n"
      "  --reps N         timed graph replays per measurement, median reported "
      "(default %d;\n"
      "                   long replays get fewer, >= 5, to keep a measurement near 0.4 s)\n"
      "  --quick          smoke run: shapes %s, tokens 1,256,\n"
      "                   formats %s, %d reps (explicit options win)\n"
      "  --dry-run        print the sweep these options ask for and exit (no device)\n"
      "  --out DIR        output directory (default bench/results)\n"
      "  --commit SHA     commit recorded in the results (default $QMOE_COMMIT)\n"
      "  -h, --help       this text\n",
      kDefaultReps, kQuickShapes, kQuickFormats, kQuickReps);
}

void print_plan(const BenchOptions& o, std::FILE* to) {
  for (const MoeShape& s : o.shapes) std::fprintf(to, "shape %s\n", shape_text(s).c_str());
  std::fprintf(to, "tokens");
  for (const int64_t t : o.tokens) std::fprintf(to, " %lld", static_cast<long long>(t));
  std::fprintf(to, "\nformats");
  for (const BankFormat& f : o.formats) std::fprintf(to, " %s", f.name.c_str());
  std::fprintf(to, "\nkernel %s, %d reps\n", o.kernel_name.c_str(), o.reps);
}

}  // namespace qmoe::bench
