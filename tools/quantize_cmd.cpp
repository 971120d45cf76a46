// `qmoe quantize` and `qmoe inspect FILE`: checkpoint files in and out (docs/files.md).
#include "tools/quantize_cmd.hpp"

#include <cstdio>
#include <deque>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "qmoe/io.hpp"
#include "qmoe/quantize.hpp"

namespace qmoe::tools {

namespace {

void print_quantize_help() {
  std::printf(
      "usage: qmoe quantize --in IN.safetensors --out OUT.safetensors --format F\n"
      "                     [--method rtn|mse|gptq] [--calib NAME] [--tensors REGEX]\n\n"
      "Quantizes every float tensor (F32, F16, BF16, F64) of rank 3, [E, N, K] (an expert bank,\n"
      "e.g. w13 [E, 2I, H]), or rank 2, [N, K], into a packed bank of the same name\n"
      "(docs/files.md); every other tensor and all metadata are copied unchanged.\n\n"
      "  --in FILE       input safetensors file\n"
      "  --out FILE      output file (written only if every tensor quantizes)\n"
      "  --format F      weight format, e.g. int4:g128, int3:g64:sym, int8:pc, bf16, nuq3,\n"
      "                  tcq2, vq2 (qmoe inspect --formats lists them)\n"
      "  --method M      rtn (round to nearest, min/max range; default), mse (range searched\n"
      "                  for least squared error) or gptq (needs --calib)\n"
      "  --calib NAME    GPTQ calibration activations: a float tensor [rows, K] of the input\n"
      "                  file, used for every expert of every selected tensor with that K\n"
      "                  (not copied to the output)\n"
      "  --tensors REGEX quantize only tensors whose name contains a match of REGEX\n"
      "                  (ECMAScript, e.g. '^layers\\.0\\.' or 'w13$'); default: all\n");
}

bool is_float(TensorDType t) {
  return t == TensorDType::kF32 || t == TensorDType::kF16 || t == TensorDType::kBF16 ||
         t == TensorDType::kF64;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The image `writer` would write, parsed and every bank it declares loaded (load_bank checks
/// versions, metadata, stray entries and every blob): what `qmoe inspect` would find in it.
Status check_loads_back(const SafetensorsWriter& writer) {
  std::vector<uint8_t> image;
  QMOE_RETURN_IF_ERROR(writer.serialize(&image));
  SafetensorsFile file;
  std::vector<std::string> names;
  Status st = parse_safetensors(std::move(image), &file);
  if (st.is_ok()) st = bank_names(file, &names);
  for (size_t i = 0; st.is_ok() && i < names.size(); ++i) {
    ExpertBank bank;
    st = load_bank(file, names[i], &bank);
  }
  if (!st.is_ok())
    return Status(st.code(),
                  "the output would not load back (nothing written): " + st.message() +
                      " (a metadata entry or tensor copied from the input names a bank's key)");
  return Status::ok();
}

struct Calibration {
  std::vector<float> x;  // [rows, k]
  int64_t rows = 0, k = 0;
};

Status load_calibration(const SafetensorsFile& file, const std::string& name, Calibration* out) {
  const auto it = file.tensors.find(name);
  if (it == file.tensors.end()) return invalid_argument("--calib: no tensor named '" + name + "'");
  const TensorInfo& t = it->second;
  if (!is_float(t.dtype) || t.shape.size() != 2 || t.shape[0] == 0 || t.shape[1] == 0)
    return invalid_argument("--calib: '" + name +
                            "' must be a non-empty float [rows, K] tensor, is " +
                            tensor_dtype_name(t.dtype) + " " + shape_string(t.shape));
  out->rows = t.shape[0];
  out->k = t.shape[1];
  out->x.resize(static_cast<size_t>(out->rows * out->k));
  return tensor_to_float(file, name, 0, out->rows * out->k, out->x.data());
}

/// Quantizes tensor `name` ([E, N, K] or [N, K]) expert by expert into a bank.
Status quantize_tensor(const SafetensorsFile& file, const std::string& name, const FormatSpec& f,
                       const QuantizeOptions& base, const Calibration& calib, ExpertBank* bank) {
  const std::vector<int64_t>& shape = file.tensors.at(name).shape;
  const int64_t experts = shape.size() == 3 ? shape[0] : 1;
  const int64_t n = shape[shape.size() - 2], k = shape[shape.size() - 1];
  QuantizeOptions opt = base;
  if (opt.method == QuantMethod::kGptq) {
    if (calib.k != k)
      return invalid_argument("tensor '" + name + "' has K = " + std::to_string(k) +
                              ", the calibration tensor K = " + std::to_string(calib.k) +
                              " (select matching tensors with --tensors)");
    opt.calib = calib.x.data();
    opt.calib_rows = calib.rows;
  }
  std::vector<float> w(static_cast<size_t>(n * k));
  std::vector<PackedMatrix> packed(static_cast<size_t>(experts));
  for (int64_t e = 0; e < experts; ++e) {
    QMOE_RETURN_IF_ERROR(tensor_to_float(file, name, e * n * k, n * k, w.data()));
    Status st = quantize(w.data(), n, k, f, opt, &packed[static_cast<size_t>(e)]);
    if (!st.is_ok())
      return Status(st.code(),
                    "tensor '" + name + "' expert " + std::to_string(e) + ": " + st.message());
  }
  return ExpertBank::create(std::move(packed), bank);
}

int fail(const char* cmd, const Status& st) {
  std::fprintf(stderr, "qmoe %s: %s\n", cmd, st.to_string().c_str());
  return 1;
}

}  // namespace

int run_quantize(int argc, char** argv) {
  std::map<std::string, std::string> args = {{"--method", "rtn"}};
  const std::set<std::string> known = {"--in",     "--out",   "--format",
                                       "--method", "--calib", "--tensors"};
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return print_quantize_help(), 0;
    if (known.count(a) == 0 || i + 1 >= argc)
      return std::fprintf(stderr, "qmoe quantize: %s '%s' (see --help)\n",
                          known.count(a) ? "missing value for" : "unknown argument", a.c_str()),
             2;
    args[a] = argv[++i];
  }
  for (const char* required : {"--in", "--out", "--format"})
    if (args.count(required) == 0)
      return std::fprintf(stderr, "qmoe quantize: %s is required (see --help)\n", required), 2;

  FormatSpec format;
  Status st = FormatSpec::parse(args["--format"], &format);
  if (!st.is_ok()) return std::fprintf(stderr, "qmoe quantize: %s\n", st.to_string().c_str()), 2;
  QuantizeOptions opt;
  const std::string& method = args["--method"];
  const bool has_calib = args.count("--calib") != 0;
  if (method == "rtn") {
    opt.method = QuantMethod::kRtnMinMax;
  } else if (method == "mse") {
    opt.method = QuantMethod::kRtnMse;
  } else if (method == "gptq") {
    opt.method = QuantMethod::kGptq;
    if (!has_calib)
      return std::fprintf(stderr,
                          "qmoe quantize: --method gptq needs calibration activations: "
                          "--calib NAME, a float [rows, K] tensor of the input file\n"),
             2;
  } else {
    return std::fprintf(stderr, "qmoe quantize: --method wants rtn, mse or gptq, got '%s'\n",
                        method.c_str()),
           2;
  }
  if (has_calib && opt.method != QuantMethod::kGptq)
    return std::fprintf(stderr, "qmoe quantize: --calib is only used by --method gptq\n"), 2;
  std::regex filter;
  const bool has_filter = args.count("--tensors") != 0;
  try {
    if (has_filter) filter = std::regex(args["--tensors"], std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return std::fprintf(stderr, "qmoe quantize: bad --tensors regex '%s': %s\n",
                        args["--tensors"].c_str(), e.what()),
           2;
  }

  SafetensorsFile in;
  st = read_safetensors(args["--in"], &in);
  if (!st.is_ok()) return fail("quantize", st);
  Calibration calib;
  if (has_calib) {
    st = load_calibration(in, args["--calib"], &calib);
    if (!st.is_ok()) return fail("quantize", st);
  }

  SafetensorsWriter writer;
  for (const auto& kv : in.metadata) {
    st = writer.add_metadata(kv.first, kv.second);
    if (!st.is_ok()) return fail("quantize", st);
  }
  std::deque<ExpertBank> banks;  // a deque never moves its elements: the writer keeps views
  for (const auto& kv : in.tensors) {
    const std::string& name = kv.first;
    const TensorInfo& t = kv.second;
    if (has_calib && name == args["--calib"]) continue;
    bool selected = is_float(t.dtype) && (t.shape.size() == 2 || t.shape.size() == 3);
    for (int64_t d : t.shape) selected = selected && d > 0;
    if (selected && has_filter) {
      // Matching can throw too (error_complexity, error_stack on long names).
      try {
        selected = std::regex_search(name, filter);
      } catch (const std::regex_error& e) {
        return std::fprintf(stderr, "qmoe quantize: --tensors regex '%s' failed on '%s': %s\n",
                            args["--tensors"].c_str(), name.c_str(), e.what()),
               2;
      }
    }
    if (!selected) {
      st = writer.add_tensor(name, t.dtype, t.shape, in.data(t));
      if (!st.is_ok()) return fail("quantize", st);
      continue;
    }
    banks.emplace_back();
    st = quantize_tensor(in, name, format, opt, calib, &banks.back());
    if (!st.is_ok()) return fail("quantize", st);
    st = save_bank(&writer, name, banks.back());
    if (!st.is_ok()) return fail("quantize", st);
    const ExpertBank& b = banks.back();
    std::printf("%-32s %-5s %-22s -> %s, %lld bytes, %.4f bits/weight\n", name.c_str(),
                tensor_dtype_name(t.dtype), shape_string(t.shape).c_str(),
                format.to_string().c_str(), static_cast<long long>(b.image_bytes()),
                format.bits_per_weight(b.k()));
  }
  if (banks.empty())
    return fail("quantize",
                invalid_argument("no float tensor of rank 2 or 3 matched (see --help)"));
  // The copied metadata and tensors may hold entries of a quantized tensor's bank namespace
  // (e.g. "<name>.format.9" beside a bank of 4 experts) or declare banks of their own, which
  // this run's qmoe.version would make the reader check: the image is loaded back, every bank,
  // before anything is written.
  st = check_loads_back(writer);
  if (!st.is_ok()) return fail("quantize", st);
  st = writer.write(args["--out"]);
  if (!st.is_ok()) return fail("quantize", st);
  std::printf("wrote %s: %zu bank(s)\n", args["--out"].c_str(), banks.size());
  return 0;
}

void print_inspect_file_usage(const char* lead) {
  std::printf(
      "%s qmoe inspect FILE\n\n"
      "  FILE        a safetensors file: validates every packed bank (docs/files.md) and lists\n"
      "              the banks (experts, [n, k], formats, stored bytes, exact bits/weight),\n"
      "              the other tensors (dtype, shape, bytes) and the other metadata\n",
      lead);
}

int run_inspect_file(int argc, char** argv) {
  if (argc != 1)
    return std::fprintf(stderr, "qmoe inspect: FILE takes no other arguments (see --help)\n"), 2;
  if (std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h") {
    print_inspect_file_usage("usage:");
    return 0;
  }
  const std::string path = argv[0];
  SafetensorsFile file;
  Status st = read_safetensors(path, &file);
  if (!st.is_ok()) return fail("inspect", st);
  std::vector<std::string> names;
  st = bank_names(file, &names);
  if (!st.is_ok()) return fail("inspect", st);

  std::set<std::string> bank_tensors, bank_keys = {"qmoe.version"};
  std::printf("%s: %zu bytes, %zu tensors, %zu bank(s)\n", path.c_str(), file.buffer.size(),
              file.tensors.size(), names.size());
  if (!names.empty())
    std::printf("\n%-32s %7s %-16s %12s %11s  %s\n", "bank", "experts", "[n, k]", "bytes",
                "bits/weight", "formats");
  for (const std::string& name : names) {
    ExpertBank bank;
    st = load_bank(file, name, &bank);
    if (!st.is_ok()) return fail("inspect", st);
    // Formats in first-seen order with their expert counts: "int4:g128 x6, int2:g32 x2".
    std::vector<std::pair<std::string, int>> formats;
    double bits = 0;
    for (int64_t e = 0; e < bank.num_experts(); ++e) {
      const FormatSpec& f = bank.expert(e).format;
      const std::string s = f.to_string();
      bits += f.bits_per_weight(bank.k());
      auto it = formats.begin();
      while (it != formats.end() && it->first != s) ++it;
      if (it == formats.end())
        formats.emplace_back(s, 1);
      else
        ++it->second;
      bank_tensors.insert(name + ".expert." + std::to_string(e));
      bank_keys.insert(name + ".format." + std::to_string(e));
    }
    bank_keys.insert({name + ".shape", name + ".experts"});
    std::string list;
    for (const auto& fc : formats)
      list += (list.empty() ? "" : ", ") + fc.first + " x" + std::to_string(fc.second);
    std::printf(
        "%-32s %7lld %-16s %12lld %11.4f  %s\n", name.c_str(),
        static_cast<long long>(bank.num_experts()), shape_string({bank.n(), bank.k()}).c_str(),
        static_cast<long long>(bank.image_bytes()), bits / bank.num_experts(), list.c_str());
  }
  if (file.tensors.size() > bank_tensors.size())
    std::printf("\n%-32s %-7s %-22s %12s\n", "tensor", "dtype", "shape", "bytes");
  for (const auto& kv : file.tensors) {
    if (bank_tensors.count(kv.first)) continue;
    std::printf("%-32s %-7s %-22s %12lld\n", kv.first.c_str(), tensor_dtype_name(kv.second.dtype),
                shape_string(kv.second.shape).c_str(), static_cast<long long>(kv.second.bytes));
  }
  bool header = false;
  for (const auto& kv : file.metadata) {
    if (bank_keys.count(kv.first)) continue;
    if (!header) std::printf("\nmetadata\n");
    header = true;
    std::printf("  %s = %s\n", kv.first.c_str(), kv.second.c_str());
  }
  return 0;
}

}  // namespace qmoe::tools
