// Safetensors reader and writer (https://github.com/huggingface/safetensors, "Format"):
// an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.
// The JSON parser knows exactly the subset the format uses (objects, arrays of non-negative
// integers, strings) and rejects everything else; it is schema-directed, so it never
// recurses and a hostile header cannot exhaust the stack.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include "qmoe/io.hpp"
#include "qmoe/numeric.hpp"
#include "src/formats/status_guard.hpp"

namespace qmoe {

namespace {

struct DTypeEntry {
  TensorDType dtype;
  const char* name;
  int64_t bytes;
};
constexpr DTypeEntry kDTypes[] = {
    {TensorDType::kBool, "BOOL", 1},      {TensorDType::kU8, "U8", 1},
    {TensorDType::kI8, "I8", 1},          {TensorDType::kF8E4M3, "F8_E4M3", 1},
    {TensorDType::kF8E5M2, "F8_E5M2", 1}, {TensorDType::kI16, "I16", 2},
    {TensorDType::kU16, "U16", 2},        {TensorDType::kF16, "F16", 2},
    {TensorDType::kBF16, "BF16", 2},      {TensorDType::kI32, "I32", 4},
    {TensorDType::kU32, "U32", 4},        {TensorDType::kF32, "F32", 4},
    {TensorDType::kI64, "I64", 8},        {TensorDType::kU64, "U64", 8},
    {TensorDType::kF64, "F64", 8},
};

const DTypeEntry& dtype_entry(TensorDType t) {
  for (const DTypeEntry& e : kDTypes)
    if (e.dtype == t) return e;
  return kDTypes[0];  // unreachable for a valid enum value
}

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

/// prod(shape) * elem_bytes, or -1 if a dim is negative or a partial product exceeds int64
/// (even when a later dim is 0, as the reference implementation does).
int64_t tensor_bytes(const std::vector<int64_t>& shape, int64_t elem_bytes) {
  int64_t total = elem_bytes;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && total > kMaxInt64 / d) return -1;
    total *= d;
  }
  return total;
}

/// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
/// Returns the byte index of the first invalid sequence, or size if all valid.
size_t first_invalid_utf8(const uint8_t* s, size_t size) {
  size_t i = 0;
  while (i < size) {
    const uint8_t c = s[i];
    size_t len;
    uint32_t min_cp, cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min_cp = 0x80, cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min_cp = 0x800, cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min_cp = 0x10000, cp = c & 0x07u;
    } else {
      return i;
    }
    if (size - i < len) return i;
    for (size_t j = 1; j < len; ++j) {
      if ((s[i + j] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + j] & 0x3Fu);
    }
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return size;
}

bool is_utf8(const std::string& s) {
  return first_invalid_utf8(reinterpret_cast<const uint8_t*>(s.data()), s.size()) == s.size();
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// The header as parsed, before the offsets are checked against each other.
struct RawTensor {
  std::string name;
  TensorDType dtype = TensorDType::kU8;
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;  // data_offsets, relative to the data section
};

class HeaderParser {
 public:
  HeaderParser(const char* text, size_t size) : p_(text), begin_(text), end_(text + size) {}

  Status parse(std::vector<RawTensor>* tensors, std::map<std::string, std::string>* metadata) {
    std::set<std::string> names;
    bool seen_metadata = false;
    // (Not QMOE_RETURN_IF_ERROR around the call: its temporary would shadow the lambda's.)
    const Status members = parse_object([&](std::string key) -> Status {
      if (key == "__metadata__") {
        if (seen_metadata) return fail("duplicate \"__metadata__\"");
        seen_metadata = true;
        return parse_metadata(metadata);
      }
      // The writer refuses "" too, so every file read here can be written back.
      if (key.empty()) return fail("empty tensor name");
      if (!names.insert(key).second) return fail("duplicate tensor name '" + key + "'");
      RawTensor t;
      t.name = std::move(key);
      QMOE_RETURN_IF_ERROR(parse_tensor(&t));
      tensors->push_back(std::move(t));
      return Status::ok();
    });
    if (!members.is_ok()) return members;
    skip_space();  // writers pad the header with spaces so the data section is aligned
    if (p_ != end_) return fail("unexpected bytes after the header object");
    return Status::ok();
  }

 private:
  Status fail(const std::string& what) const {
    return invalid_argument("safetensors: header byte " + std::to_string(p_ - begin_) + ": " +
                            what);
  }
  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool consume(char c) {
    skip_space();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  Status expect(char c) {
    if (consume(c)) return Status::ok();
    if (p_ == end_) return fail(std::string("expected '") + c + "', header ends");
    return fail(std::string("expected '") + c + "'");
  }

  /// A JSON object: on_member(key) parses the value of each member, after its key and ':'.
  template <class OnMember>
  Status parse_object(OnMember on_member) {
    QMOE_RETURN_IF_ERROR(expect('{'));
    if (consume('}')) return Status::ok();
    do {
      std::string key;
      QMOE_RETURN_IF_ERROR(parse_string(&key));
      QMOE_RETURN_IF_ERROR(expect(':'));
      QMOE_RETURN_IF_ERROR(on_member(std::move(key)));
    } while (consume(','));
    return expect('}');
  }

  Status parse_hex4(uint32_t* out) {
    if (end_ - p_ < 4) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      const char c = *p_;
      uint32_t d;
      if (c >= '0' && c <= '9')
        d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        d = static_cast<uint32_t>(c - 'A' + 10);
      else
        return fail("bad hex digit in \\u escape");
      v = v * 16 + d;
    }
    *out = v;
    return Status::ok();
  }

  Status parse_string(std::string* out) {
    QMOE_RETURN_IF_ERROR(expect('"'));
    std::string s;
    while (true) {
      if (p_ == end_) return fail("unterminated string");
      const char c = *p_++;
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        s.push_back(c);  // the whole header was checked to be UTF-8 already
        continue;
      }
      if (p_ == end_) return fail("unterminated escape");
      const char e = *p_++;
      // The single-character escapes of JSON and the characters they stand for.
      static constexpr char kEscaped[] = "\"\\/bfnrt";
      static constexpr char kMeaning[] = "\"\\/\b\f\n\r\t";
      const char* hit = e != '\0' ? std::strchr(kEscaped, e) : nullptr;
      if (hit != nullptr) {
        s.push_back(kMeaning[hit - kEscaped]);
        continue;
      }
      if (e != 'u') return fail(std::string("bad escape '\\") + e + "'");
      uint32_t cp = 0;
      QMOE_RETURN_IF_ERROR(parse_hex4(&cp));
      if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("unpaired low surrogate in \\u escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t low = 0;
        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u')
          return fail("unpaired high surrogate in \\u escape");
        p_ += 2;
        QMOE_RETURN_IF_ERROR(parse_hex4(&low));
        if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      }
      append_utf8(cp, &s);
    }
    *out = std::move(s);
    return Status::ok();
  }

  /// A JSON integer >= 0 without sign, fraction, exponent or leading zeros, <= int64 max.
  Status parse_uint(int64_t* out) {
    skip_space();
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return fail("expected a non-negative integer");
    if (*p_ == '0' && end_ - p_ > 1 && p_[1] >= '0' && p_[1] <= '9')
      return fail("integer with a leading zero");
    int64_t v = 0;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      const int64_t d = *p_ - '0';
      if (v > (kMaxInt64 - d) / 10) return fail("integer does not fit in 64 bits");
      v = v * 10 + d;
      ++p_;
    }
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E'))
      return fail("expected an integer, found a fraction or exponent");
    *out = v;
    return Status::ok();
  }

  Status parse_uint_array(std::vector<int64_t>* out) {
    QMOE_RETURN_IF_ERROR(expect('['));
    std::vector<int64_t> v;
    if (!consume(']')) {
      do {
        int64_t x = 0;
        QMOE_RETURN_IF_ERROR(parse_uint(&x));
        v.push_back(x);
      } while (consume(','));
      QMOE_RETURN_IF_ERROR(expect(']'));
    }
    *out = std::move(v);
    return Status::ok();
  }

  Status parse_metadata(std::map<std::string, std::string>* metadata) {
    return parse_object([&](std::string key) -> Status {
      std::string value;
      QMOE_RETURN_IF_ERROR(parse_string(&value));
      if (!metadata->emplace(std::move(key), std::move(value)).second)
        return fail("duplicate metadata key");
      return Status::ok();
    });
  }

  Status parse_tensor(RawTensor* t) {
    const std::string where = "tensor '" + t->name + "': ";
    bool has_dtype = false, has_shape = false, has_offsets = false;
    const Status members = parse_object([&](const std::string& key) -> Status {
      if (key == "dtype") {
        if (has_dtype) return fail(where + "duplicate \"dtype\"");
        has_dtype = true;
        std::string name;
        QMOE_RETURN_IF_ERROR(parse_string(&name));
        Status st = parse_tensor_dtype(name, &t->dtype);
        if (!st.is_ok()) return fail(where + st.message());
      } else if (key == "shape") {
        if (has_shape) return fail(where + "duplicate \"shape\"");
        has_shape = true;
        QMOE_RETURN_IF_ERROR(parse_uint_array(&t->shape));
      } else if (key == "data_offsets") {
        if (has_offsets) return fail(where + "duplicate \"data_offsets\"");
        has_offsets = true;
        std::vector<int64_t> offsets;
        QMOE_RETURN_IF_ERROR(parse_uint_array(&offsets));
        if (offsets.size() != 2) return fail(where + "\"data_offsets\" must hold 2 integers");
        t->begin = offsets[0];
        t->end = offsets[1];
      } else {
        return fail(where + "unknown key \"" + key + "\"");
      }
      return Status::ok();
    });
    if (!members.is_ok()) return members;
    if (!has_dtype || !has_shape || !has_offsets)
      return fail(where + "needs \"dtype\", \"shape\" and \"data_offsets\"");
    return Status::ok();
  }

  const char* p_;
  const char* begin_;
  const char* end_;
};

/// The header length a file's first 8 bytes hold (little-endian).
uint64_t header_length(const uint8_t* first8) {
  uint64_t bytes = 0;
  for (int i = 7; i >= 0; --i) bytes = (bytes << 8) | first8[i];
  return bytes;
}

/// A file's 8-byte header length, its header's tensors and metadata.
struct ParsedHeader {
  uint64_t header_bytes = 0;
  std::vector<RawTensor> raw;
  std::map<std::string, std::string> metadata;
};

/// Every check of the format that needs only the first 8 + header-length bytes of a file of
/// `size` bytes (`prefix`, prefix_bytes of them: the whole file, or its length and header): the
/// length within the cap and the file, the header's UTF-8 and JSON, each tensor's extent within
/// the data section and the section covered without holes or overlaps.
Status parse_header(const uint8_t* prefix, uint64_t prefix_bytes, uint64_t size,
                    ParsedHeader* out) {
  if (size < 8)
    return invalid_argument("safetensors: file has " + std::to_string(size) +
                            " bytes, fewer than the 8-byte header length");
  if (prefix_bytes < 8) return invalid_argument("safetensors: the file changed while it was read");
  const uint64_t header_bytes = header_length(prefix);
  if (header_bytes > kMaxSafetensorsHeaderBytes)
    return invalid_argument("safetensors: header length " + std::to_string(header_bytes) +
                            " exceeds the limit of " + std::to_string(kMaxSafetensorsHeaderBytes) +
                            " bytes");
  if (header_bytes > size - 8)
    return invalid_argument("safetensors: header length " + std::to_string(header_bytes) +
                            " runs past the end of the " + std::to_string(size) + "-byte file");
  if (prefix_bytes < 8 + header_bytes)  // the file grew between its size and its read
    return invalid_argument("safetensors: the file changed while it was read");
  const uint8_t* header = prefix + 8;
  const size_t bad = first_invalid_utf8(header, header_bytes);
  if (bad != header_bytes)
    return invalid_argument("safetensors: header byte " + std::to_string(bad) + " is not UTF-8");

  std::vector<RawTensor> raw;
  std::map<std::string, std::string> metadata;
  HeaderParser parser(reinterpret_cast<const char*>(header), header_bytes);
  QMOE_RETURN_IF_ERROR(parser.parse(&raw, &metadata));

  // The spec requires the data section to be indexed entirely, without holes: sorted by
  // offsets, every tensor starts where the previous one ended and the last ends the file.
  const int64_t data_start = static_cast<int64_t>(8 + header_bytes);
  const int64_t data_bytes = static_cast<int64_t>(size) - data_start;
  for (const RawTensor& t : raw) {
    const std::string where = "safetensors: tensor '" + t.name + "': ";
    if (t.begin > t.end)
      return invalid_argument(where + "data_offsets [" + std::to_string(t.begin) + ", " +
                              std::to_string(t.end) + "] are reversed");
    if (t.end > data_bytes)
      return invalid_argument(where + "data_offsets end " + std::to_string(t.end) +
                              " is beyond the " + std::to_string(data_bytes) +
                              "-byte data section");
    const int64_t expect = tensor_bytes(t.shape, tensor_dtype_bytes(t.dtype));
    if (expect < 0) return invalid_argument(where + "shape size overflows 64 bits");
    if (expect != t.end - t.begin)
      return invalid_argument(where + "shape x " + tensor_dtype_name(t.dtype) + " needs " +
                              std::to_string(expect) + " bytes, data_offsets span " +
                              std::to_string(t.end - t.begin));
  }
  std::vector<const RawTensor*> order;
  order.reserve(raw.size());
  for (const RawTensor& t : raw) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const RawTensor* a, const RawTensor* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  int64_t cursor = 0;
  for (const RawTensor* t : order) {
    if (t->begin < cursor)
      return invalid_argument("safetensors: tensor '" + t->name + "': data_offsets begin " +
                              std::to_string(t->begin) + " overlaps data before byte " +
                              std::to_string(cursor));
    if (t->begin > cursor)
      return invalid_argument("safetensors: tensor '" + t->name + "': data_offsets begin " +
                              std::to_string(t->begin) + " leaves a gap after byte " +
                              std::to_string(cursor));
    cursor = t->end;
  }
  if (cursor != data_bytes)
    return invalid_argument("safetensors: data section has " + std::to_string(data_bytes) +
                            " bytes, tensors cover " + std::to_string(cursor));
  out->header_bytes = header_bytes;
  out->raw = std::move(raw);
  out->metadata = std::move(metadata);
  return Status::ok();
}

/// The file of `bytes` (the whole file) whose header h describes (parse_header of them).
void build_file(ParsedHeader h, std::vector<uint8_t> bytes, SafetensorsFile* out) {
  const int64_t data_start = static_cast<int64_t>(8 + h.header_bytes);
  SafetensorsFile file;
  for (RawTensor& t : h.raw) {
    TensorInfo info;
    info.dtype = t.dtype;
    info.offset = data_start + t.begin;
    info.bytes = t.end - t.begin;
    info.shape = std::move(t.shape);
    file.tensors.emplace(std::move(t.name), std::move(info));
  }
  file.metadata = std::move(h.metadata);
  file.buffer = std::move(bytes);
  *out = std::move(file);
}

Status parse_checked(std::vector<uint8_t> bytes, SafetensorsFile* out) {
  if (out == nullptr) return invalid_argument("parse_safetensors: null output");
  ParsedHeader h;
  QMOE_RETURN_IF_ERROR(parse_header(bytes.data(), bytes.size(), bytes.size(), &h));
  build_file(std::move(h), std::move(bytes), out);
  return Status::ok();
}

Status system_error(const char* what, const std::string& path) {
  return invalid_argument(std::string(what) + " '" + path + "': " + std::strerror(errno));
}

/// Creates a temporary file beside `path` that no other writer, in this process or another,
/// uses: `<path>.tmp.<pid>.<n>`, opened with O_EXCL (a name that exists is skipped, never
/// truncated), mode 0666 less the umask like fopen's. Null (errno set) when none can be made.
std::FILE* create_temp_beside(const std::string& path, std::string* tmp) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 64; ++attempt) {
    *tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid())) + "." +
           std::to_string(counter.fetch_add(1));
    const int fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return nullptr;
    }
    std::FILE* f = ::fdopen(fd, "wb");
    if (f == nullptr) {
      const int fdopen_errno = errno;
      ::close(fd);
      std::remove(tmp->c_str());
      errno = fdopen_errno;
    }
    return f;
  }
  errno = EEXIST;
  return nullptr;
}

/// Opens the regular file at `path` for reading; *size = its size.
Status open_regular(const std::string& path, std::FILE** f, uint64_t* size) {
  std::error_code ec;
  const bool regular = std::filesystem::is_regular_file(path, ec);
  if (ec) return invalid_argument("cannot open '" + path + "': " + ec.message());
  if (!regular) return invalid_argument("cannot open '" + path + "': not a regular file");
  *size = std::filesystem::file_size(path, ec);
  if (ec) return invalid_argument("cannot open '" + path + "': " + ec.message());
  *f = std::fopen(path.c_str(), "rb");
  if (*f == nullptr) return system_error("cannot open", path);
  return Status::ok();
}

/// Closes f, which read the file at `path`: an error of those reads is the call's.
Status close_after_reads(std::FILE* f, const std::string& path) {
  const bool failed = std::ferror(f) != 0;
  const int saved_errno = errno;
  std::fclose(f);
  if (!failed) return Status::ok();
  errno = saved_errno;
  return system_error("cannot read", path);
}

/// Reads and checks the safetensors file at `path` in one pass: its 8-byte length and header
/// first, parsed and checked against the file's size (a file they do not describe is refused
/// before its data is read: an 8 GB file with an empty header took 40 s and 8 GB of memory, and
/// a file larger than memory said "out of memory"), then its data section. A file whose size
/// changes while it is read is refused.
Status read_checked(const std::string& path, SafetensorsFile* out) {
  std::FILE* f = nullptr;
  uint64_t size = 0;
  QMOE_RETURN_IF_ERROR(open_regular(path, &f, &size));
  // Closed by close_after_reads, or here where an allocation below throws.
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> open_file(f, std::fclose);
  std::vector<uint8_t> bytes(8, 0);
  size_t got = std::fread(bytes.data(), 1, 8, f);
  if (got == 8) {
    const uint64_t header_bytes = header_length(bytes.data());
    if (header_bytes <= kMaxSafetensorsHeaderBytes && header_bytes <= size - 8) {
      bytes.resize(8 + header_bytes);
      got += std::fread(bytes.data() + 8, 1, header_bytes, f);
    }
  }
  ParsedHeader h;
  Status st = parse_header(bytes.data(), got, size, &h);
  if (st.is_ok()) {
    // The data section, then one byte more, which must not be there.
    bytes.resize(static_cast<size_t>(size));
    got += std::fread(bytes.data() + got, 1, static_cast<size_t>(size) - got, f);
    if (got != size || std::fgetc(f) != EOF)
      st = invalid_argument("safetensors: the file changed while it was read");
  }
  const Status closed = close_after_reads(open_file.release(), path);
  QMOE_RETURN_IF_ERROR(closed);
  if (!st.is_ok()) return Status(st.code(), path + ": " + st.message());
  build_file(std::move(h), std::move(bytes), out);
  return Status::ok();
}

void append_json_string(const std::string& s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", u);
      out->append(esc);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

const char* tensor_dtype_name(TensorDType t) {
  return dtype_entry(t).name;
}
int64_t tensor_dtype_bytes(TensorDType t) {
  return dtype_entry(t).bytes;
}

Status parse_tensor_dtype(const std::string& text, TensorDType* out) {
  if (out == nullptr) return invalid_argument("parse_tensor_dtype: null output");
  for (const DTypeEntry& e : kDTypes) {
    if (text == e.name) {
      *out = e.dtype;
      return Status::ok();
    }
  }
  return invalid_argument("unknown dtype \"" + text + "\"");
}

Status parse_safetensors(std::vector<uint8_t> bytes, SafetensorsFile* out) {
  return detail::run_catching("parse_safetensors",
                              [&] { return parse_checked(std::move(bytes), out); });
}

Status read_safetensors(const std::string& path, SafetensorsFile* out) {
  if (out == nullptr) return invalid_argument("read_safetensors: null output");
  return detail::run_catching("read_safetensors", [&] { return read_checked(path, out); });
}

Status tensor_to_float(const SafetensorsFile& file, const std::string& name, int64_t first,
                       int64_t count, float* out) {
  return detail::run_catching("tensor_to_float", [&]() -> Status {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) return invalid_argument("no tensor named '" + name + "'");
    const TensorInfo& t = it->second;
    const int64_t elem = tensor_dtype_bytes(t.dtype);
    const int64_t total = t.bytes / elem;
    if (first < 0 || count < 0 || first > total || count > total - first)
      return invalid_argument("tensor '" + name + "': elements [" + std::to_string(first) + ", +" +
                              std::to_string(count) + ") outside its " + std::to_string(total));
    if (out == nullptr && count > 0) return invalid_argument("tensor_to_float: null output");
    const uint8_t* src = file.data(t) + first * elem;
    switch (t.dtype) {
      case TensorDType::kF32:
        if (count > 0) std::memcpy(out, src, static_cast<size_t>(count) * 4);
        return Status::ok();
      case TensorDType::kF64:
        for (int64_t i = 0; i < count; ++i) {
          double v;
          std::memcpy(&v, src + 8 * i, 8);
          out[i] = static_cast<float>(v);
        }
        return Status::ok();
      case TensorDType::kF16:
      case TensorDType::kBF16:
        for (int64_t i = 0; i < count; ++i) {
          uint16_t h;
          std::memcpy(&h, src + 2 * i, 2);
          out[i] = t.dtype == TensorDType::kF16 ? fp16_to_float(h) : bf16_to_float(h);
        }
        return Status::ok();
      default:
        return invalid_argument("tensor '" + name + "' is " + tensor_dtype_name(t.dtype) +
                                ", not a float tensor (F32, F16, BF16, F64)");
    }
  });
}

// ---- writer ------------------------------------------------------------------------------

Status SafetensorsWriter::add_tensor(const std::string& name, TensorDType dtype,
                                     std::vector<int64_t> shape, const void* data) {
  return detail::run_catching("SafetensorsWriter::add_tensor", [&]() -> Status {
    if (name.empty() || name == "__metadata__")
      return invalid_argument("safetensors writer: bad tensor name '" + name + "'");
    if (!is_utf8(name)) return invalid_argument("safetensors writer: tensor name is not UTF-8");
    if (has_tensor(name))
      return invalid_argument("safetensors writer: tensor '" + name + "' added twice");
    const int64_t bytes = tensor_bytes(shape, tensor_dtype_bytes(dtype));
    if (bytes < 0)
      return invalid_argument("safetensors writer: tensor '" + name +
                              "' has a negative dim or a size that overflows");
    if (bytes > 0 && data == nullptr)
      return invalid_argument("safetensors writer: tensor '" + name + "' has null data");
    tensors_.reserve(tensors_.size() + 1);  // so that push_back cannot throw after the insert
    names_.insert(name);
    tensors_.push_back(Entry{name, dtype, std::move(shape), data, bytes});
    return Status::ok();
  });
}

Status SafetensorsWriter::add_metadata(const std::string& key, const std::string& value) {
  return detail::run_catching("SafetensorsWriter::add_metadata", [&]() -> Status {
    if (!is_utf8(key) || !is_utf8(value))
      return invalid_argument("safetensors writer: metadata '" + key + "' is not UTF-8");
    QMOE_RETURN_IF_ERROR(check_metadata(key, value));
    metadata_[key] = value;
    return Status::ok();
  });
}

Status SafetensorsWriter::check_metadata(const std::string& key, const std::string& value) const {
  const auto it = metadata_.find(key);
  if (it != metadata_.end() && it->second != value)
    return invalid_argument("safetensors writer: metadata '" + key + "' already set to '" +
                            it->second + "'");
  return Status::ok();
}

bool SafetensorsWriter::has_tensor(const std::string& name) const {
  return names_.count(name) != 0;
}

Status SafetensorsWriter::merge(const SafetensorsWriter& other) {
  return detail::run_catching("SafetensorsWriter::merge", [&]() -> Status {
    for (const Entry& e : other.tensors_)
      if (has_tensor(e.name))
        return invalid_argument("safetensors writer: tensor '" + e.name + "' added twice");
    for (const auto& kv : other.metadata_)
      QMOE_RETURN_IF_ERROR(check_metadata(kv.first, kv.second));
    // Nothing can conflict now; only memory can run out, and then the additions are undone.
    const size_t old_tensors = tensors_.size();
    std::vector<std::string> new_keys;
    new_keys.reserve(other.metadata_.size());
    try {
      for (const Entry& e : other.tensors_) {
        tensors_.push_back(e);
        names_.insert(e.name);
      }
      for (const auto& kv : other.metadata_)
        if (metadata_.insert(kv).second) new_keys.push_back(kv.first);
    } catch (...) {
      for (size_t i = old_tensors; i < tensors_.size(); ++i) names_.erase(tensors_[i].name);
      tensors_.erase(tensors_.begin() + static_cast<std::ptrdiff_t>(old_tensors), tensors_.end());
      for (const std::string& key : new_keys) metadata_.erase(key);
      throw;
    }
    return Status::ok();
  });
}

Status SafetensorsWriter::prefix(std::string* bytes, std::vector<const Entry*>* order) const {
  order->clear();
  for (const Entry& e : tensors_) order->push_back(&e);
  std::stable_sort(order->begin(), order->end(), [](const Entry* a, const Entry* b) {
    return tensor_dtype_bytes(a->dtype) > tensor_dtype_bytes(b->dtype);
  });
  std::string header = "{";
  if (!metadata_.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& kv : metadata_) {
      if (header.back() != '{') header += ',';
      append_json_string(kv.first, &header);
      header += ':';
      append_json_string(kv.second, &header);
    }
    header += '}';
  }
  int64_t data_bytes = 0;
  for (const Entry* e : *order) {
    if (e->bytes > kMaxInt64 - data_bytes)
      return invalid_argument("safetensors writer: the tensors' total size overflows int64");
    if (header.size() > 1) header += ',';
    append_json_string(e->name, &header);
    header += ":{\"dtype\":\"";
    header += tensor_dtype_name(e->dtype);
    header += "\",\"shape\":[";
    for (size_t i = 0; i < e->shape.size(); ++i)
      header += (i ? "," : "") + std::to_string(e->shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(data_bytes) + "," +
              std::to_string(data_bytes + e->bytes) + "]}";
    data_bytes += e->bytes;
  }
  header += '}';
  // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
  while (header.size() % 8 != 0) header += ' ';
  if (header.size() > kMaxSafetensorsHeaderBytes)
    return invalid_argument("safetensors writer: header of " + std::to_string(header.size()) +
                            " bytes exceeds the limit");
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (size_t i = 0; i < 8; ++i, n >>= 8) out[i] = static_cast<char>(n & 0xFF);
  *bytes = out + header;
  return Status::ok();
}

Status SafetensorsWriter::serialize(std::vector<uint8_t>* out) const {
  if (out == nullptr) return invalid_argument("SafetensorsWriter::serialize: null output");
  return detail::run_catching("SafetensorsWriter::serialize", [&]() -> Status {
    std::string head;
    std::vector<const Entry*> order;
    QMOE_RETURN_IF_ERROR(prefix(&head, &order));
    std::vector<uint8_t> image(head.begin(), head.end());
    for (const Entry* e : order) {
      const auto* p = static_cast<const uint8_t*>(e->data);
      if (e->bytes > 0) image.insert(image.end(), p, p + e->bytes);
    }
    *out = std::move(image);
    return Status::ok();
  });
}

Status SafetensorsWriter::write(const std::string& path) const {
  return detail::run_catching("SafetensorsWriter::write", [&]() -> Status {
    std::string head;
    std::vector<const Entry*> order;
    QMOE_RETURN_IF_ERROR(prefix(&head, &order));
    std::string tmp;
    std::FILE* f = create_temp_beside(path, &tmp);
    if (f == nullptr) return system_error("cannot create a temporary file for", path);
    // Streamed tensor by tensor: a checkpoint is never held twice in memory. errno is kept
    // from the call that failed (a later call may change it).
    int write_errno = 0;
    auto put = [&](const void* data, size_t bytes) {
      if (bytes == 0) return true;
      errno = 0;
      if (std::fwrite(data, 1, bytes, f) == bytes) return true;
      write_errno = errno != 0 ? errno : EIO;
      return false;
    };
    bool written = put(head.data(), head.size());
    for (size_t i = 0; written && i < order.size(); ++i)
      written = put(order[i]->data, static_cast<size_t>(order[i]->bytes));
    errno = 0;
    const bool closed = std::fclose(f) == 0;
    if (written && !closed) write_errno = errno != 0 ? errno : EIO;
    // On failure the temporary file goes first, then errno is restored for the message (whose
    // strings may throw; run_catching turns that into a Status, with nothing left behind).
    if (!written || !closed) {
      std::remove(tmp.c_str());
      errno = write_errno;
      return system_error("cannot write", tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      const int rename_errno = errno;
      std::remove(tmp.c_str());
      errno = rename_errno;
      return system_error("cannot rename the temporary file to", path);
    }
    return Status::ok();
  });
}

}  // namespace qmoe
