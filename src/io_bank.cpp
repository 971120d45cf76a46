// Packed expert banks stored in safetensors files (docs/files.md): one U8 tensor per expert
// holding its packed blob verbatim, the formats and dims as metadata strings.
#include <algorithm>
#include <utility>

#include "qmoe/io.hpp"
#include "src/formats/status_guard.hpp"

namespace qmoe {

namespace {

constexpr const char* kVersionKey = "qmoe.version";
/// Far above any MoE (DeepSeek-V3 has 256 experts); bounds the loops a hostile file causes.
constexpr int64_t kMaxBankExperts = int64_t{1} << 20;
/// packed_layout's own cap on n and k.
constexpr int64_t kMaxBankDim = int64_t{1} << 24;

std::string expert_tensor(const std::string& bank, int64_t e) {
  return bank + ".expert." + std::to_string(e);
}
std::string expert_format_key(const std::string& bank, int64_t e) {
  return bank + ".format." + std::to_string(e);
}

/// A canonical decimal (digits only, no sign, no leading zero) in [0, max], else false.
/// At most 18 digits, so the accumulation cannot overflow int64.
bool parse_decimal(const std::string& s, int64_t max, int64_t* out) {
  if (s.empty() || s.size() > 18 || (s.size() > 1 && s[0] == '0')) return false;
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

/// The blob must be one that pack produces for its format and dims: unpack checks it all.
Status check_blob(const PackedMatrix& m, const std::string& where) {
  LogicalMatrix logical;
  Status st = unpack(m, &logical);
  if (!st.is_ok()) return Status(st.code(), where + ": " + st.message());
  return Status::ok();
}

Status save_checked(SafetensorsWriter* writer, const std::string& name, const ExpertBank& bank) {
  if (writer == nullptr) return invalid_argument("save_bank: null writer");
  if (name.empty()) return invalid_argument("save_bank: empty bank name");
  if (bank.num_experts() == 0) return invalid_argument("save_bank: bank '" + name + "' is empty");
  SafetensorsWriter entries;
  for (int64_t e = 0; e < bank.num_experts(); ++e) {
    const PackedMatrix& m = bank.expert(e);
    const std::string where = "save_bank: bank '" + name + "' expert " + std::to_string(e);
    QMOE_RETURN_IF_ERROR(check_blob(m, where));
    QMOE_RETURN_IF_ERROR(entries.add_tensor(expert_tensor(name, e), TensorDType::kU8,
                                            {static_cast<int64_t>(m.blob.size())}, m.blob.data()));
    QMOE_RETURN_IF_ERROR(entries.add_metadata(expert_format_key(name, e), m.format.to_string()));
  }
  QMOE_RETURN_IF_ERROR(entries.add_metadata(
      name + ".shape", std::to_string(bank.n()) + "," + std::to_string(bank.k())));
  QMOE_RETURN_IF_ERROR(entries.add_metadata(name + ".experts", std::to_string(bank.num_experts())));
  QMOE_RETURN_IF_ERROR(entries.add_metadata(kVersionKey, std::to_string(kBankFileVersion)));
  return writer->merge(entries);
}

/// Numbered entries "<prefix><e>" with e >= experts (or not canonical) are left-overs of
/// another bank size: a file that declares E experts must hold exactly those.
template <typename Map>
Status check_no_stray(const Map& map, const std::string& prefix, int64_t experts,
                      const std::string& where, const char* what) {
  for (auto it = map.lower_bound(prefix); it != map.end(); ++it) {
    const std::string& key = it->first;
    if (key.compare(0, prefix.size(), prefix) != 0) break;
    const std::string suffix = key.substr(prefix.size());
    const bool numbered = !suffix.empty() && suffix.find_first_not_of("0123456789") == suffix.npos;
    int64_t e = 0;
    if (numbered && !parse_decimal(suffix, experts - 1, &e))
      return invalid_argument(where + "stray " + what + " '" + key + "' for a bank of " +
                              std::to_string(experts) + " experts");
  }
  return Status::ok();
}

Status load_checked(const SafetensorsFile& file, const std::string& name, ExpertBank* out) {
  if (out == nullptr) return invalid_argument("load_bank: null output");
  const std::string where = "load_bank: bank '" + name + "': ";
  const auto meta = [&](const std::string& key) -> const std::string* {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };

  const std::string* version = meta(kVersionKey);
  int64_t v = 0;
  if (version == nullptr) return invalid_argument(where + "file has no \"qmoe.version\" metadata");
  if (!parse_decimal(*version, kMaxBankExperts, &v))
    return invalid_argument(where + "bad \"qmoe.version\" '" + *version + "'");
  if (v != kBankFileVersion)
    return unsupported(where + "file has qmoe.version " + *version + ", this build reads " +
                       std::to_string(kBankFileVersion));

  const std::string* experts_text = meta(name + ".experts");
  if (experts_text == nullptr) return invalid_argument(where + "no such bank in the file");
  int64_t experts = 0;
  if (!parse_decimal(*experts_text, kMaxBankExperts, &experts) || experts == 0)
    return invalid_argument(where + "bad expert count '" + *experts_text + "'");

  const std::string* shape = meta(name + ".shape");
  if (shape == nullptr) return invalid_argument(where + "no \"" + name + ".shape\" metadata");
  const size_t comma = shape->find(',');
  int64_t n = 0, k = 0;
  if (comma == std::string::npos || !parse_decimal(shape->substr(0, comma), kMaxBankDim, &n) ||
      !parse_decimal(shape->substr(comma + 1), kMaxBankDim, &k) || n == 0 || k == 0)
    return invalid_argument(where + "bad shape '" + *shape + "' (want \"n,k\")");

  QMOE_RETURN_IF_ERROR(check_no_stray(file.tensors, name + ".expert.", experts, where, "tensor"));
  QMOE_RETURN_IF_ERROR(
      check_no_stray(file.metadata, name + ".format.", experts, where, "metadata key"));

  std::vector<PackedMatrix> matrices;
  for (int64_t e = 0; e < experts; ++e) {
    const std::string at = where + "expert " + std::to_string(e) + ": ";
    const std::string* format_text = meta(expert_format_key(name, e));
    if (format_text == nullptr) return invalid_argument(at + "no format metadata");
    PackedMatrix m;
    Status st = FormatSpec::parse(*format_text, &m.format);
    if (!st.is_ok()) return invalid_argument(at + st.message());
    st = packed_layout(m.format, n, k, &m.layout);
    if (!st.is_ok()) return invalid_argument(at + st.message());

    const auto t = file.tensors.find(expert_tensor(name, e));
    if (t == file.tensors.end()) return invalid_argument(at + "no tensor");
    const TensorInfo& info = t->second;
    if (info.dtype != TensorDType::kU8 || info.shape.size() != 1)
      return invalid_argument(at + "tensor must be U8 of rank 1, is " +
                              tensor_dtype_name(info.dtype) + " of rank " +
                              std::to_string(info.shape.size()));
    if (info.bytes != m.layout.total_bytes)
      return invalid_argument(at + "blob has " + std::to_string(info.bytes) + " bytes, " +
                              m.format.to_string() + " at [" + std::to_string(n) + ", " +
                              std::to_string(k) + "] needs " +
                              std::to_string(m.layout.total_bytes));
    m.blob.assign(file.data(info), file.data(info) + info.bytes);
    QMOE_RETURN_IF_ERROR(check_blob(m, at + m.format.to_string()));
    matrices.push_back(std::move(m));
  }
  return ExpertBank::create(std::move(matrices), out);
}

}  // namespace

Status save_bank(SafetensorsWriter* writer, const std::string& name, const ExpertBank& bank) {
  return detail::run_catching("save_bank", [&] { return save_checked(writer, name, bank); });
}

Status save_bank(const std::string& path, const std::string& name, const ExpertBank& bank) {
  SafetensorsWriter writer;
  QMOE_RETURN_IF_ERROR(save_bank(&writer, name, bank));
  return writer.write(path);
}

Status load_bank(const SafetensorsFile& file, const std::string& name, ExpertBank* out) {
  return detail::run_catching("load_bank", [&] { return load_checked(file, name, out); });
}

Status bank_names(const SafetensorsFile& file, std::vector<std::string>* out) {
  if (out == nullptr) return invalid_argument("bank_names: null output");
  return detail::run_catching("bank_names", [&] {
    std::vector<std::string> names;
    const std::string suffix = ".experts";
    if (file.metadata.count(kVersionKey) != 0) {
      for (const auto& kv : file.metadata) {
        const std::string& key = kv.first;
        if (key.size() > suffix.size() &&
            key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0)
          names.push_back(key.substr(0, key.size() - suffix.size()));
      }
    }
    std::sort(names.begin(), names.end());
    *out = std::move(names);
    return Status::ok();
  });
}

}  // namespace qmoe
