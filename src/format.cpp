// FormatSpec: parsing, printing, validation, exact bits/weight and the packed layout sizes
// (docs/formats.md §1-2).
#include "qmoe/format.hpp"

#include <cstdlib>

#include "src/formats/status_guard.hpp"

namespace qmoe {

namespace {

int64_t round_up(int64_t v, int64_t m) {
  return (v + m - 1) / m * m;
}

// Canonical decimal only: no sign, no leading zero ("g064" would print back as "g64").
bool parse_int(const std::string& s, int* out) {
  if (s.empty() || s.size() > 4 || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::atoi(s.c_str());
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

}  // namespace

const char* dtype_name(DType t) {
  return t == DType::kBF16 ? "bf16" : "fp16";
}

FormatSpec FormatSpec::dense(DType t) {
  FormatSpec f;
  f.kind = FormatKind::kDense;
  f.dense_dtype = t;
  f.bits = 16;
  return f;
}

FormatSpec FormatSpec::lut(int bits) {
  FormatSpec f;
  f.kind = FormatKind::kLut;
  f.bits = bits;
  return f;
}

FormatSpec FormatSpec::trellis(int step_bits, int values_per_state) {
  FormatSpec f;
  f.kind = FormatKind::kTrellis;
  f.bits = step_bits;
  f.values_per_state = values_per_state;
  f.group_size = kTileCols;  // one trellis block (and scale) per 128 inputs
  return f;
}

FormatSpec FormatSpec::vector(int code_bits) {
  FormatSpec f;
  f.kind = FormatKind::kVector;
  f.bits = code_bits;
  f.values_per_state = kVectorDim;
  f.group_size = kTileCols;  // one scale per 128 inputs
  return f;
}

FormatSpec FormatSpec::integer(int bits, int group_size, bool symmetric) {
  FormatSpec f;
  f.kind = FormatKind::kInt;
  f.bits = bits;
  f.group_size = group_size;
  f.symmetric = symmetric;
  return f;
}

// Fields a kind does not use must keep their defaults, so that operator== (which compares
// every field) agrees with to_string: two valid specs are equal iff they print the same.
Status FormatSpec::validate() const {
  // First: the layout divides by it, whatever the kind.
  if (kind == FormatKind::kVector ? values_per_state != kVectorDim
                                  : kind != FormatKind::kTrellis && values_per_state != 1)
    return invalid_argument(
        "values_per_state must be 4 for vector formats and 1 outside trellis formats");
  if (kind == FormatKind::kDense) {
    if (bits != 16) return invalid_argument("dense format must have 16 bits");
    if (dense_dtype != DType::kBF16 && dense_dtype != DType::kFP16)
      return invalid_argument("dense format dtype must be bf16 or fp16");
    if (group_size != 0 || symmetric)
      return invalid_argument("dense format must leave group_size 0 and symmetric false");
    return Status::ok();
  }
  if (kind == FormatKind::kLut) {
    if (bits != 2 && bits != 3 && bits != 4)
      return invalid_argument("LUT (nuq) bits must be 2, 3 or 4, got " + std::to_string(bits));
    if (dense_dtype != DType::kBF16 || group_size != 0 || symmetric)
      return invalid_argument(
          "LUT format must leave dense_dtype bf16, group_size 0 and symmetric false");
    return Status::ok();
  }
  if (kind == FormatKind::kTrellis) {
    const bool one = values_per_state == 1 && (bits == 2 || bits == 3 || bits == 4);
    const bool two = values_per_state == 2 && (bits == 3 || bits == 5 || bits == 7);
    if (!one && !two)
      return invalid_argument(
          "trellis (tcq) formats take 2, 3 or 4 bits a step with one value a "
          "state, or 3, 5 or 7 with two; got " +
          std::to_string(bits) + " and " + std::to_string(values_per_state));
    if (dense_dtype != DType::kBF16 || group_size != kTileCols || symmetric)
      return invalid_argument(
          "trellis format must leave dense_dtype bf16, group_size 128 and symmetric false");
    return Status::ok();
  }
  if (kind == FormatKind::kVector) {
    if (bits != 6 && bits != 8 && bits != 10 && bits != 12)
      return invalid_argument("vector (vq) formats take 6, 8, 10 or 12 code bits a vector, got " +
                              std::to_string(bits));
    if (dense_dtype != DType::kBF16 || group_size != kTileCols || symmetric)
      return invalid_argument(
          "vector format must leave dense_dtype bf16, group_size 128 and symmetric false");
    return Status::ok();
  }
  if (kind != FormatKind::kInt) return invalid_argument("unknown format kind");
  if (dense_dtype != DType::kBF16)
    return invalid_argument("integer format must leave dense_dtype at its default (bf16)");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return invalid_argument("integer bits must be 2, 3, 4 or 8, got " + std::to_string(bits));
  if (group_size != 0 && group_size != 32 && group_size != 64 && group_size != 128)
    return invalid_argument("group size must be 32, 64, 128 or per-channel, got " +
                            std::to_string(group_size));
  return Status::ok();
}

namespace {

Status parse_format(const std::string& text, FormatSpec* out) {
  if (out == nullptr) return invalid_argument("FormatSpec::parse: null output");
  const std::string bad = "unknown format string '" + text +
                          "' (expected e.g. bf16, fp16, int4:g128, int3:g64:sym, int8:pc, nuq3, "
                          "tcq2, vq2)";
  if (text == "bf16" || text == "fp16") {
    *out = FormatSpec::dense(text == "bf16" ? DType::kBF16 : DType::kFP16);
    return Status::ok();
  }
  if (text.compare(0, 3, "nuq") == 0 || text.compare(0, 3, "tcq") == 0) {
    // "tcq<n>.5": half-integer rates, 2n + 1 bits a step coding two weights.
    std::string number = text.substr(3);
    const bool half =
        text[0] == 't' && number.size() > 2 && number.compare(number.size() - 2, 2, ".5") == 0;
    if (half) number.resize(number.size() - 2);
    int bits = 0;
    if (!parse_int(number, &bits)) return invalid_argument(bad);
    FormatSpec f = text[0] == 'n' ? FormatSpec::lut(bits)
                   : half         ? FormatSpec::trellis(2 * bits + 1, 2)
                                  : FormatSpec::trellis(bits);
    Status st = f.validate();
    if (!st.is_ok()) return invalid_argument("format '" + text + "': " + st.message());
    *out = f;
    return Status::ok();
  }
  if (text.compare(0, 2, "vq") == 0) {
    // "vq<n>" or "vq<n>.5": 4n or 4n + 2 code bits a vector of 4 weights.
    std::string number = text.substr(2);
    const bool half = number.size() > 2 && number.compare(number.size() - 2, 2, ".5") == 0;
    if (half) number.resize(number.size() - 2);
    int rate = 0;
    if (!parse_int(number, &rate) || rate > 64) return invalid_argument(bad);
    const FormatSpec f = FormatSpec::vector(4 * rate + (half ? 2 : 0));
    Status st = f.validate();
    if (!st.is_ok()) return invalid_argument("format '" + text + "': " + st.message());
    *out = f;
    return Status::ok();
  }
  std::vector<std::string> parts = split(text, ':');
  if (parts.size() < 2 || parts.size() > 3) return invalid_argument(bad);
  if (parts[0].size() < 4 || parts[0].compare(0, 3, "int") != 0) return invalid_argument(bad);
  int bits = 0;
  if (!parse_int(parts[0].substr(3), &bits)) return invalid_argument(bad);
  int group = 0;
  if (parts[1] == "pc") {
    group = 0;
  } else if (parts[1].size() < 2 || parts[1][0] != 'g' || !parse_int(parts[1].substr(1), &group) ||
             group == 0) {
    return invalid_argument(bad);
  }
  bool sym = false;
  if (parts.size() == 3) {
    if (parts[2] == "sym")
      sym = true;
    else if (parts[2] != "asym")
      return invalid_argument(bad);
  }
  FormatSpec f = FormatSpec::integer(bits, group, sym);
  Status st = f.validate();
  if (!st.is_ok()) return invalid_argument("format '" + text + "': " + st.message());
  *out = f;
  return Status::ok();
}

}  // namespace

Status FormatSpec::parse(const std::string& text, FormatSpec* out) {
  return detail::run_catching("FormatSpec::parse", [&] { return parse_format(text, out); });
}

std::string FormatSpec::to_string() const {
  if (kind == FormatKind::kDense) return dtype_name(dense_dtype);
  if (kind == FormatKind::kLut) return "nuq" + std::to_string(bits);
  if (kind == FormatKind::kVector)
    return "vq" + std::to_string(bits / 4) + (bits % 4 == 2 ? ".5" : "");
  if (kind == FormatKind::kTrellis)
    return "tcq" + (values_per_state == 2 ? std::to_string(bits / 2) + ".5" : std::to_string(bits));
  std::string s = "int" + std::to_string(bits) + ":";
  s += group_size == 0 ? std::string("pc") : "g" + std::to_string(group_size);
  if (symmetric) s += ":sym";
  return s;
}

double FormatSpec::bits_per_weight(int64_t k_in) const {
  if (kind == FormatKind::kDense) return 16.0;
  if (kind == FormatKind::kLut) return bits + 16.0 * lut_entries() / static_cast<double>(k_in);
  if (kind == FormatKind::kTrellis || kind == FormatKind::kVector)
    return static_cast<double>(bits) / values_per_state + 16.0 / kTileCols;
  const double g = static_cast<double>(group_len(k_in));
  return bits + (16.0 + (symmetric ? 0.0 : 8.0)) / g;
}

const std::vector<FormatSpec>& all_formats() {
  static const std::vector<FormatSpec> formats = [] {
    std::vector<FormatSpec> v{FormatSpec::dense(DType::kBF16), FormatSpec::dense(DType::kFP16)};
    for (int bits : {2, 3, 4, 8})
      for (int group : {32, 64, 128, 0})
        for (bool sym : {false, true}) v.push_back(FormatSpec::integer(bits, group, sym));
    for (int bits : {2, 3, 4}) v.push_back(FormatSpec::lut(bits));
    for (int twice_rate : {3, 4, 5, 6, 7, 8})  // tcq1.5, tcq2, tcq2.5, ..., tcq4
      v.push_back(twice_rate % 2 == 1 ? FormatSpec::trellis(twice_rate, 2)
                                      : FormatSpec::trellis(twice_rate / 2));
    for (int code_bits : {6, 8, 10, 12}) v.push_back(FormatSpec::vector(code_bits));
    return v;
  }();
  return formats;
}

std::vector<int> plane_bits(const FormatSpec& f) {
  if (f.kind == FormatKind::kDense) return {16};
  // Row streams, and codes per vector in §2.2's own planes: no §2.4 planes.
  if (f.kind == FormatKind::kTrellis || f.kind == FormatKind::kVector) return {};
  if (f.bits == 3) return {2, 1};
  return {f.bits};
}

namespace {

Status layout_of(const FormatSpec& f, int64_t n_out, int64_t k_in, PackedLayout* out) {
  if (out == nullptr) return invalid_argument("packed_layout: null output");
  QMOE_RETURN_IF_ERROR(f.validate());
  if (n_out <= 0 || k_in <= 0)
    return invalid_argument("matrix dims must be positive, got [" + std::to_string(n_out) + ", " +
                            std::to_string(k_in) + "]");
  // Offsets are 64-bit but descriptors keep some sizes in 32 bits: cap the dims.
  if (n_out > (int64_t{1} << 24) || k_in > (int64_t{1} << 24))
    return invalid_argument("matrix dims above 2^24 are not supported");
  if (f.kind != FormatKind::kDense && f.group_size != 0 && k_in % f.group_size != 0)
    return invalid_argument("K = " + std::to_string(k_in) + " is not divisible by group size " +
                            std::to_string(f.group_size) + " of format " + f.to_string());
  PackedLayout L;
  L.n = n_out;
  L.k = k_in;
  L.n_pad = round_up(n_out, kTileRows);
  L.k_pad = round_up(k_in, kTileCols);
  L.tile_bytes = int64_t{kTileRows} * kTileCols * f.bits / (8 * f.values_per_state);
  L.codes_bytes = (L.n_pad / kTileRows) * (L.k_pad / kTileCols) * L.tile_bytes;
  if (f.kind == FormatKind::kInt) {
    L.groups_pad = f.group_size == 0 ? 1 : L.k_pad / f.group_size;
    L.scales_bytes = L.n_pad * L.groups_pad * 2;
    L.zeros_bytes = f.symmetric ? 0 : L.n_pad * L.groups_pad;
  } else if (f.kind == FormatKind::kLut) {
    L.scales_bytes = L.n_pad * f.lut_entries() * 2;  // one fp16 table a row, padded rows too
  } else if (f.kind == FormatKind::kTrellis || f.kind == FormatKind::kVector) {
    L.groups_pad = L.k_pad / kTileCols;  // = K / 128: K is a multiple of 128 (checked above)
    L.scales_bytes = L.n_pad * L.groups_pad * 2;
  }
  L.codes_offset = 0;
  L.scales_offset = round_up(L.codes_bytes, kSectionAlign);
  L.zeros_offset = L.scales_offset + round_up(L.scales_bytes, kSectionAlign);
  L.total_bytes = L.zeros_offset + round_up(L.zeros_bytes, kSectionAlign);
  *out = L;
  return Status::ok();
}

}  // namespace

Status packed_layout(const FormatSpec& f, int64_t n_out, int64_t k_in, PackedLayout* out) {
  return detail::run_catching("packed_layout", [&] { return layout_of(f, n_out, k_in, out); });
}

int64_t group_param_index(const FormatSpec& f, const PackedLayout& layout, int64_t row,
                          int64_t group) {
  if (f.kind != FormatKind::kInt && f.kind != FormatKind::kTrellis && f.kind != FormatKind::kVector)
    return -1;
  // Groups per tile column: 128 / g, or the one group of a per-channel row.
  const int64_t gpt = f.group_size == 0 ? 1 : kTileCols / f.group_size;
  const int64_t r = row % kTileRows;
  return (row / kTileRows * layout.groups_pad + group / gpt * gpt) * kTileRows + (r % 8) * 2 * gpt +
         (r / 8) * gpt + group % gpt;
}

int64_t lut_index(const FormatSpec& f, int64_t row, int code) {
  if (f.kind != FormatKind::kLut) return -1;
  return row * f.lut_entries() + code;
}

}  // namespace qmoe
