// Checkpoint I/O (docs/files.md): the strict safetensors reader/writer, the packed-bank
// convention, a table of corrupt files, a deterministic mutation fuzz loop, and the sample
// checkpoint the CLI ctest (tests/cli_io_test.cmake) quantizes and inspects.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "qmoe/io.hpp"
#include "qmoe/numeric.hpp"
#include "tests/cpu/test_util.hpp"

namespace qmoe {
namespace {

using test::bank_of;
using test::gaussian;
using test::quantized;
using test::scale_byte;

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "qmoe_io_" + name;
}

bool file_exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f != nullptr) std::fclose(f);
  return f != nullptr;
}

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/// Files in path's directory whose names start with path's name and ".tmp".
std::vector<std::string> temp_files_beside(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".tmp";
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) found.push_back(name);
  }
  return found;
}

/// A fresh directory of this process under the test temp dir (leftovers of other runs, or
/// other processes testing at once, stay out of it), removed by the destructor.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& name)
      : path(::testing::TempDir() + "qmoe_io_" + name + "_" + std::to_string(::getpid())) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng() | 1u);  // never all zero
  return v;
}

/// A file from a literal JSON header and `data_bytes` of non-zero data.
std::vector<uint8_t> file_from_header(const std::string& json, size_t data_bytes) {
  std::vector<uint8_t> f(8 + json.size() + data_bytes);
  uint64_t n = json.size();
  for (size_t i = 0; i < 8; ++i, n >>= 8) f[i] = static_cast<uint8_t>(n);
  for (size_t i = 0; i < json.size(); ++i) f[8 + i] = static_cast<uint8_t>(json[i]);
  for (size_t i = 0; i < data_bytes; ++i) f[8 + json.size() + i] = static_cast<uint8_t>(0xA5 ^ i);
  return f;
}

Status parse_bytes(std::vector<uint8_t> bytes, SafetensorsFile* out = nullptr) {
  SafetensorsFile local;
  return parse_safetensors(std::move(bytes), out != nullptr ? out : &local);
}

std::vector<uint8_t> serialize(const SafetensorsWriter& w) {
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(w.serialize(&bytes).is_ok());
  return bytes;
}

/// An owned, editable copy of a file's contents, to build corrupt variants of valid files.
struct Contents {
  struct Tensor {
    TensorDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  static Contents of(const SafetensorsFile& f) {
    Contents c;
    for (const auto& kv : f.tensors)
      c.tensors[kv.first] = {
          kv.second.dtype, kv.second.shape,
          std::vector<uint8_t>(f.data(kv.second), f.data(kv.second) + kv.second.bytes)};
    c.metadata = f.metadata;
    return c;
  }
  std::vector<uint8_t> serialize() const {
    SafetensorsWriter w;
    for (const auto& kv : tensors)
      EXPECT_TRUE(
          w.add_tensor(kv.first, kv.second.dtype, kv.second.shape, kv.second.bytes.data()).is_ok())
          << kv.first;
    for (const auto& kv : metadata) EXPECT_TRUE(w.add_metadata(kv.first, kv.second).is_ok());
    return qmoe::serialize(w);
  }
};

// ---- safetensors ---------------------------------------------------------------------------

TEST(IoSafetensors, WriteReadRoundTripKeepsEveryDtypeShapeByteAndMetadata) {
  const std::vector<TensorDType> dtypes = {
      TensorDType::kBool,   TensorDType::kU8,  TensorDType::kI8,  TensorDType::kF8E4M3,
      TensorDType::kF8E5M2, TensorDType::kI16, TensorDType::kU16, TensorDType::kF16,
      TensorDType::kBF16,   TensorDType::kI32, TensorDType::kU32, TensorDType::kF32,
      TensorDType::kI64,    TensorDType::kU64, TensorDType::kF64};
  std::mt19937 rng(11);
  struct Expect {
    std::string name;
    TensorDType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Expect> expect;
  for (size_t i = 0; i < dtypes.size(); ++i) {
    // Odd element counts, so alignment depends on the writer's ordering, not on luck.
    const std::vector<int64_t> shape = {static_cast<int64_t>(i % 3 + 1), 5, 3};
    expect.push_back(
        {"t" + std::to_string(i) + "." + tensor_dtype_name(dtypes[i]), dtypes[i], shape,
         random_bytes(static_cast<size_t>(15 * shape[0] * tensor_dtype_bytes(dtypes[i])), rng)});
  }
  expect.push_back({"scalar", TensorDType::kF32, {}, random_bytes(4, rng)});
  expect.push_back({"empty", TensorDType::kBF16, {0, 7}, {}});
  expect.push_back(
      {"name with \"quotes\", \\ and \xC3\xA9\x01", TensorDType::kU8, {2}, random_bytes(2, rng)});
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"tab\tnewline\n", "\"quoted\" \xE2\x82\xAC \x7F"}, {"", ""}};

  SafetensorsWriter w;
  for (const Expect& e : expect)
    ASSERT_TRUE(w.add_tensor(e.name, e.dtype, e.shape, e.bytes.data()).is_ok()) << e.name;
  for (const auto& kv : metadata) ASSERT_TRUE(w.add_metadata(kv.first, kv.second).is_ok());
  const ScratchDir dir("roundtrip");
  const std::string path = dir.file("roundtrip.safetensors");
  ASSERT_TRUE(w.write(path).is_ok());
  EXPECT_TRUE(temp_files_beside(path).empty());

  SafetensorsFile f;
  Status st = read_safetensors(path, &f);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(f.metadata, metadata);
  ASSERT_EQ(f.tensors.size(), expect.size());
  for (const Expect& e : expect) {
    const auto it = f.tensors.find(e.name);
    ASSERT_NE(it, f.tensors.end()) << e.name;
    const TensorInfo& t = it->second;
    EXPECT_EQ(t.dtype, e.dtype) << e.name;
    EXPECT_EQ(t.shape, e.shape) << e.name;
    ASSERT_EQ(t.bytes, static_cast<int64_t>(e.bytes.size())) << e.name;
    EXPECT_TRUE(std::equal(e.bytes.begin(), e.bytes.end(), f.data(t))) << e.name;
    EXPECT_EQ(t.offset % tensor_dtype_bytes(t.dtype), 0) << e.name << " is misaligned";
  }
  std::remove(path.c_str());
}

TEST(IoSafetensors, FileWithZeroTensorsRoundTrips) {
  SafetensorsFile f;
  ASSERT_TRUE(parse_bytes(serialize(SafetensorsWriter()), &f).is_ok());
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
  EXPECT_TRUE(parse_bytes(file_from_header("{}", 0)).is_ok());
  SafetensorsWriter only_metadata;
  ASSERT_TRUE(only_metadata.add_metadata("k", "v").is_ok());
  ASSERT_TRUE(parse_bytes(serialize(only_metadata), &f).is_ok());
  EXPECT_EQ(f.metadata.at("k"), "v");
}

TEST(IoSafetensors, AcceptsEverythingTheFormatAllows) {
  // Whitespace everywhere, keys in any order, tensors listed out of offset order, escapes
  // (incl. a surrogate pair) and trailing padding.
  const std::string json =
      " {\r\n \"b\" : { \"data_offsets\" : [ 4 , 12 ] , \"shape\" : [ 2 ] , \"dtype\" : \"F32\" } "
      ",\t\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\": {\"dtype\":\"I32\",\"shape\":[],"
      "\"data_offsets\":[0,4]}, \"__metadata__\": {\"x\": \"\\u0041\"}, \"z\": {\"dtype\": "
      "\"U8\", \"shape\": [0, 3], \"data_offsets\": [12, 12]}}     ";
  SafetensorsFile f;
  Status st = parse_bytes(file_from_header(json, 12), &f);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors.count("\xC3\xA9\xF0\x9F\x98\x80/\b\f\n\r\t\"\\"), 1u);
  EXPECT_EQ(f.tensors.at("b").offset, 8 + static_cast<int64_t>(json.size()) + 4);
  EXPECT_EQ(f.tensors.at("z").bytes, 0);
  EXPECT_EQ(f.metadata.at("x"), "A");
}

TEST(IoSafetensors, CorruptHeadersAreRejectedWithTheirReason) {
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    const char* what;
    std::string json;
    size_t data_bytes;
    const char* message;  // a fragment the error must contain
  };
  const std::vector<Case> cases = {
      {"empty header", "", 0, "expected '{'"},
      {"array", "[]", 0, "expected '{'"},
      {"trailing bytes", "{} x", 0, "after the header"},
      {"two objects", "{}{}", 0, "after the header"},
      {"trailing comma", "{" + a + ",}", 8, "expected '\"'"},
      {"unterminated", "{" + a, 8, "header ends"},
      {"unterminated string", R"({"a)", 0, "unterminated string"},
      {"bare word", R"({"a":true})", 0, "expected '{'"},
      {"null shape", R"({"a":{"dtype":"F32","shape":null,"data_offsets":[0,0]}})", 0,
       "expected '['"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0,
       "non-negative integer"},
      {"fraction", R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4, "fraction"},
      {"exponent", R"({"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}})", 4, "exponent"},
      {"leading zero", R"({"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}})", 4,
       "leading zero"},
      {"string dim", R"({"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})", 4,
       "non-negative integer"},
      {"nested arrays", R"({"a":{"dtype":"F32","shape":[[[[1]]]],"data_offsets":[0,4]}})", 4,
       "non-negative integer"},
      {"integer over int64",
       R"({"a":{"dtype":"U8","shape":[99999999999999999999],)"
       R"("data_offsets":[0,0]}})",
       0, "64 bits"},
      {"unknown key", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[]}})", 4,
       "unknown key"},
      {"missing offsets", R"({"a":{"dtype":"F32","shape":[1]}})", 4, "needs"},
      {"three offsets", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}})", 4,
       "2 integers"},
      {"repeated dtype", R"({"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
       4, "duplicate \"dtype\""},
      {"unknown dtype", R"({"a":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}})", 1,
       "unknown dtype \"F4\""},
      {"lower-case dtype", R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4,
       "unknown dtype"},
      {"duplicate tensor", "{" + a + "," + a + "}", 8, "duplicate tensor name 'a'"},
      {"empty tensor name", R"({"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}})", 0,
       "empty tensor name"},
      {"duplicate metadata object", R"({"__metadata__":{},"__metadata__":{}})", 0,
       "duplicate \"__metadata__\""},
      {"duplicate metadata key", R"({"__metadata__":{"k":"1","k":"2"}})", 0, "duplicate metadata"},
      {"metadata number", R"({"__metadata__":{"k":1}})", 0, "expected '\"'"},
      {"metadata object", R"({"__metadata__":{"k":{}}})", 0, "expected '\"'"},
      {"bad escape", R"({"\x":{}})", 0, "bad escape"},
      {"short unicode escape", R"({"\u12":{}})", 0, "bad hex digit"},
      {"lone high surrogate", R"({"\ud800x":{}})", 0, "unpaired high surrogate"},
      {"lone low surrogate", R"({"\udc00":{}})", 0, "unpaired low surrogate"},
      {"raw newline in string", "{\"a\nb\":{}}", 0, "control character"},
      {"invalid UTF-8", "{\"\xFF\":{}}", 0, "not UTF-8"},
      {"overlong UTF-8", "{\"\xC0\xAF\":{}}", 0, "not UTF-8"},
      {"UTF-8 surrogate", "{\"\xED\xA0\x80\":{}}", 0, "not UTF-8"},
      {"reversed offsets", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}})", 8,
       "reversed"},
      {"offset beyond data", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8,
       "beyond the 8-byte data section"},
      {"shape/bytes mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
       "needs 12 bytes, data_offsets span 8"},
      {"shape overflow",
       R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4],)"
       R"("data_offsets":[0,0]}})",
       0, "overflows"},
      {"overflow before a zero dim",
       R"({"a":{"dtype":"F64","shape":[4611686018427387904,0],)"
       R"("data_offsets":[0,0]}})",
       0, "overflows"},
      {"overlap", "{" + a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
       "overlaps"},
      {"same range twice", "{" + a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8,
       "overlaps"},
      {"gap", "{" + a + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})", 16, "gap"},
      {"not starting at 0", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "gap"},
      {"unindexed tail", "{" + a + "}", 12, "tensors cover 8"},
      {"data without tensors", "{}", 1, "tensors cover 0"},
  };
  for (const Case& c : cases) {
    SafetensorsFile out;
    out.metadata["sentinel"] = "kept";
    Status st = parse_bytes(file_from_header(c.json, c.data_bytes), &out);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what << ": " << st.to_string();
    EXPECT_NE(st.message().find(c.message), std::string::npos)
        << c.what << ": '" << st.message() << "' lacks '" << c.message << "'";
    EXPECT_EQ(out.metadata.count("sentinel"), 1u) << c.what << ": output touched on error";
  }
}

TEST(IoSafetensors, HeaderLengthBeyondFileOrLimitIsRejected) {
  std::vector<uint8_t> good = file_from_header("{}", 0);
  for (size_t size = 0; size < 8; ++size) {
    Status st = parse_bytes(std::vector<uint8_t>(good.begin(), good.begin() + size));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << size;
    EXPECT_NE(st.message().find("fewer than the 8-byte"), std::string::npos) << st.message();
  }
  const auto with_length = [&](uint64_t n) {
    std::vector<uint8_t> f = good;
    for (int i = 0; i < 8; ++i, n >>= 8) f[static_cast<size_t>(i)] = static_cast<uint8_t>(n);
    return parse_bytes(f);
  };
  EXPECT_NE(with_length(3).message().find("runs past the end"), std::string::npos);
  EXPECT_NE(with_length(~uint64_t{0}).message().find("exceeds the limit"), std::string::npos);
  EXPECT_NE(with_length(kMaxSafetensorsHeaderBytes + 1).message().find("exceeds the limit"),
            std::string::npos);
  EXPECT_NE(with_length(uint64_t{1} << 63).message().find("exceeds the limit"), std::string::npos);
}

/// A small valid file: a bank of two experts, raw tensors and metadata.
std::vector<uint8_t> sample_bank_file(ExpertBank* bank_out = nullptr) {
  std::mt19937 rng(5);
  const std::vector<float> w = gaussian(24 * 128, 1.0f, rng);
  ExpertBank bank = bank_of({"int4:g32", "int3:pc:sym", "nuq3", "tcq2.5", "vq2", "vq3"},
                            [&](const FormatSpec& f) { return quantized(w, 24, 128, f); });
  const std::vector<float> raw = gaussian(6, 1.0f, rng);
  SafetensorsWriter w_;
  EXPECT_TRUE(save_bank(&w_, "w13", bank).is_ok());
  EXPECT_TRUE(w_.add_tensor("norm", TensorDType::kF32, {6}, raw.data()).is_ok());
  EXPECT_TRUE(w_.add_metadata("note", "fuzz me").is_ok());
  std::vector<uint8_t> bytes = serialize(w_);
  if (bank_out != nullptr) *bank_out = std::move(bank);
  return bytes;
}

TEST(IoSafetensors, TruncationAtEveryByteIsRejected) {
  const std::vector<uint8_t> good = sample_bank_file();
  ASSERT_TRUE(parse_bytes(good).is_ok());
  for (size_t size = 0; size < good.size(); ++size) {
    Status st = parse_bytes(std::vector<uint8_t>(good.begin(), good.begin() + size));
    ASSERT_EQ(st.code(), StatusCode::kInvalidArgument) << "truncated to " << size;
  }
}

TEST(IoSafetensors, ReadReportsMissingAndUnreadableFiles) {
  SafetensorsFile f;
  Status st = read_safetensors(temp_path("does_not_exist.safetensors"), &f);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cannot open"), std::string::npos) << st.message();
  st = read_safetensors(::testing::TempDir(), &f);  // a directory
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_EQ(read_safetensors("x", nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(IoSafetensors, WriterRejectsBadTensorsAndLeavesNoPartialFile) {
  const float data[4] = {1.f, 2.f, 3.f, 4.f};
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_tensor("a", TensorDType::kF32, {4}, data).is_ok());
  EXPECT_EQ(w.add_tensor("a", TensorDType::kF32, {4}, data).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("", TensorDType::kF32, {4}, data).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("__metadata__", TensorDType::kF32, {4}, data).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("neg", TensorDType::kF32, {-1}, data).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      w.add_tensor("huge", TensorDType::kF64, {int64_t{1} << 40, int64_t{1} << 30}, data).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("null", TensorDType::kF32, {1}, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(w.add_tensor("null but empty", TensorDType::kF32, {0}, nullptr).is_ok());
  EXPECT_EQ(w.add_tensor("bad \xFF utf8", TensorDType::kU8, {1}, data).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.add_metadata("k", "v").is_ok());
  EXPECT_TRUE(w.add_metadata("k", "v").is_ok());  // the same value again is harmless
  EXPECT_EQ(w.add_metadata("k", "other").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_metadata("k2", "\xC0\x80").code(), StatusCode::kInvalidArgument);

  SafetensorsFile f;
  ASSERT_TRUE(parse_bytes(serialize(w), &f).is_ok());
  EXPECT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.metadata.size(), 1u);
  EXPECT_EQ(f.metadata.at("k"), "v");

  const std::string path = temp_path("no_such_dir/x.safetensors");
  Status st = w.write(path);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("cannot create"), std::string::npos) << st.message();
  EXPECT_FALSE(file_exists(path));
}

TEST(IoSafetensors, WriteLeavesAFileNamedLikeItsTemporaryAlone) {
  const ScratchDir dir("beside");
  const std::string path = dir.file("beside.safetensors");
  const std::string other = path + ".tmp";  // someone else's file, the old temporary's name
  { std::ofstream(other, std::ios::binary) << "not ours"; }
  const float data[3] = {1.f, -2.f, 3.5f};
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_tensor("t", TensorDType::kF32, {3}, data).is_ok());
  ASSERT_TRUE(w.write(path).is_ok());
  EXPECT_EQ(file_bytes(path), serialize(w));
  const std::vector<uint8_t> untouched = file_bytes(other);
  EXPECT_EQ(std::string(untouched.begin(), untouched.end()), "not ours");
  std::remove(other.c_str());
  EXPECT_TRUE(temp_files_beside(path).empty());  // no temporary file of ours is left
}

TEST(IoSafetensors, ConcurrentWritesToOnePathEachLeaveAWholeImage) {
  // Each writer its own image; several threads write them to one path over and over while this
  // thread reads it. Every write succeeds, every read finds one whole image (or no file yet),
  // and no temporary file is left.
  const ScratchDir dir("concurrent");
  const std::string path = dir.file("concurrent.safetensors");
  constexpr int kWriters = 4, kRounds = 25;
  std::vector<std::vector<float>> data(kWriters);
  std::vector<SafetensorsWriter> writers(kWriters);
  std::vector<std::vector<uint8_t>> images(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    data[i].assign(4096 * (i + 1), static_cast<float>(i + 1));
    ASSERT_TRUE(writers[i]
                    .add_tensor("w" + std::to_string(i), TensorDType::kF32,
                                {static_cast<int64_t>(data[i].size())}, data[i].data())
                    .is_ok());
    images[i] = serialize(writers[i]);
  }
  std::vector<int> failures(kWriters, 0);
  std::atomic<int> running{kWriters};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < kRounds; ++r) failures[i] += writers[i].write(path).is_ok() ? 0 : 1;
      --running;
    });
  int reads = 0, torn = 0;
  while (running > 0) {
    const std::vector<uint8_t> seen = file_bytes(path);
    if (seen.empty()) continue;  // not written yet
    ++reads;
    if (std::find(images.begin(), images.end(), seen) == images.end()) ++torn;
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kWriters; ++i) EXPECT_EQ(failures[i], 0) << "writer " << i;
  EXPECT_EQ(torn, 0) << "of " << reads << " reads";
  const std::vector<uint8_t> final_image = file_bytes(path);
  EXPECT_NE(std::find(images.begin(), images.end(), final_image), images.end());
  EXPECT_TRUE(temp_files_beside(path).empty());
}

TEST(IoSafetensors, WriterRejectsTensorsTotallingMoreThanInt64BeforeReadingThem) {
  // Each view alone is a valid size; their sum is not. The data is never read.
  const uint8_t byte = 7;
  const int64_t half = std::numeric_limits<int64_t>::max() / 2 + 1;
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_tensor("a", TensorDType::kU8, {half}, &byte).is_ok());
  ASSERT_TRUE(w.add_tensor("b", TensorDType::kU8, {half}, &byte).is_ok());
  std::vector<uint8_t> out = {1, 2, 3};
  Status st = w.serialize(&out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("overflows int64"), std::string::npos) << st.message();
  EXPECT_EQ(out, (std::vector<uint8_t>{1, 2, 3}));
  const ScratchDir dir("total_overflow");
  const std::string path = dir.file("total_overflow.safetensors");
  EXPECT_EQ(w.write(path).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(file_exists(path));
  EXPECT_TRUE(temp_files_beside(path).empty());
}

TEST(IoSafetensors, TensorToFloatConvertsEveryFloatDtype) {
  const float f32[3] = {1.5f, -2.25f, 3e-3f};
  const double f64[3] = {0.1, -1e30, 7.0};
  const uint16_t f16[3] = {float_to_fp16(0.5f), float_to_fp16(-3.f), float_to_fp16(65504.f)};
  const uint16_t bf16[3] = {float_to_bf16(-0.75f), float_to_bf16(1e20f), float_to_bf16(2.f)};
  const int32_t i32[3] = {1, 2, 3};
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_tensor("f32", TensorDType::kF32, {3}, f32).is_ok());
  ASSERT_TRUE(w.add_tensor("f64", TensorDType::kF64, {3}, f64).is_ok());
  ASSERT_TRUE(w.add_tensor("f16", TensorDType::kF16, {3}, f16).is_ok());
  ASSERT_TRUE(w.add_tensor("bf16", TensorDType::kBF16, {1, 3}, bf16).is_ok());
  ASSERT_TRUE(w.add_tensor("i32", TensorDType::kI32, {3}, i32).is_ok());
  SafetensorsFile f;
  ASSERT_TRUE(parse_bytes(serialize(w), &f).is_ok());
  float out[3];
  ASSERT_TRUE(tensor_to_float(f, "f32", 0, 3, out).is_ok());
  EXPECT_EQ(std::vector<float>(out, out + 3), std::vector<float>(f32, f32 + 3));
  ASSERT_TRUE(tensor_to_float(f, "f64", 1, 2, out).is_ok());
  EXPECT_EQ(out[0], static_cast<float>(-1e30));
  EXPECT_EQ(out[1], 7.f);
  ASSERT_TRUE(tensor_to_float(f, "f16", 0, 3, out).is_ok());
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_EQ(out[1], -3.f);
  EXPECT_EQ(out[2], 65504.f);
  ASSERT_TRUE(tensor_to_float(f, "bf16", 0, 3, out).is_ok());
  EXPECT_EQ(out[0], -0.75f);
  EXPECT_EQ(out[1], bf16_to_float(float_to_bf16(1e20f)));
  EXPECT_EQ(tensor_to_float(f, "i32", 0, 3, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tensor_to_float(f, "nope", 0, 1, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tensor_to_float(f, "f32", 2, 2, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tensor_to_float(f, "f32", -1, 1, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tensor_to_float(f, "f32", 0, 1, nullptr).code(), StatusCode::kInvalidArgument);
}

// ---- packed banks --------------------------------------------------------------------------

/// One expert per format, each quantizing its own standard Gaussian weights [n, k].
ExpertBank quantized_bank(const std::vector<std::string>& formats, int64_t n, int64_t k,
                          uint32_t seed) {
  std::mt19937 rng(seed);
  return bank_of(
      formats, [&](const FormatSpec& f) { return quantized(gaussian(n * k, 1.0f, rng), n, k, f); });
}

void expect_same_bank(const ExpertBank& a, const ExpertBank& b) {
  ASSERT_EQ(a.num_experts(), b.num_experts());
  EXPECT_EQ(a.n(), b.n());
  EXPECT_EQ(a.k(), b.k());
  for (int64_t e = 0; e < a.num_experts(); ++e) {
    EXPECT_EQ(a.expert(e).format, b.expert(e).format) << "expert " << e;
    EXPECT_EQ(a.expert(e).blob, b.expert(e).blob) << "expert " << e;
  }
}

TEST(IoBank, SaveLoadRoundTripIsByteExactForMixedFormats) {
  // Rows not a multiple of 16 and (second bank) K not a multiple of 128: padded blobs.
  const ExpertBank w13 = quantized_bank({"int4:g128", "int3:g64:sym", "int2:g32", "int8:pc", "bf16",
                                         "fp16", "nuq4", "tcq3", "vq2", "vq2.5"},
                                        40, 256, 21);
  const ExpertBank w2 = quantized_bank({"int4:pc", "int2:pc:sym", "bf16", "nuq3"}, 24, 200, 22);
  const std::vector<float> norm = {1.f, 2.f};
  SafetensorsWriter w;
  ASSERT_TRUE(save_bank(&w, "layers.0.w13", w13).is_ok());
  ASSERT_TRUE(save_bank(&w, "layers.0.w2", w2).is_ok());
  ASSERT_TRUE(w.add_tensor("layers.0.norm", TensorDType::kF32, {2}, norm.data()).is_ok());
  const std::string path = temp_path("banks.safetensors");
  ASSERT_TRUE(w.write(path).is_ok());

  SafetensorsFile f;
  ASSERT_TRUE(read_safetensors(path, &f).is_ok());
  std::vector<std::string> names;
  ASSERT_TRUE(bank_names(f, &names).is_ok());
  EXPECT_EQ(names, (std::vector<std::string>{"layers.0.w13", "layers.0.w2"}));
  EXPECT_EQ(f.metadata.at("layers.0.w13.shape"), "40,256");
  EXPECT_EQ(f.metadata.at("layers.0.w13.experts"), "10");
  EXPECT_EQ(f.metadata.at("layers.0.w13.format.1"), "int3:g64:sym");
  EXPECT_EQ(f.metadata.at("layers.0.w13.format.8"), "vq2");
  EXPECT_EQ(f.metadata.at("layers.0.w13.format.9"), "vq2.5");
  EXPECT_EQ(f.metadata.at("qmoe.version"), "2");
  ExpertBank loaded;
  Status st = load_bank(f, "layers.0.w13", &loaded);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  expect_same_bank(w13, loaded);
  ASSERT_TRUE(load_bank(f, "layers.0.w2", &loaded).is_ok());
  expect_same_bank(w2, loaded);

  // The one-bank convenience writes the same entries.
  ASSERT_TRUE(save_bank(path, "only", w2).is_ok());
  ASSERT_TRUE(read_safetensors(path, &f).is_ok());
  ASSERT_TRUE(load_bank(f, "only", &loaded).is_ok());
  expect_same_bank(w2, loaded);
  EXPECT_EQ(f.tensors.size(), 4u);  // one blob tensor per expert
  std::remove(path.c_str());
}

TEST(IoBank, CorruptBanksAreRejectedAndNothingIsReturned) {
  const ExpertBank bank = quantized_bank({"int4:g128", "int2:g32:sym", "bf16"}, 40, 256, 31);
  SafetensorsWriter w;
  ASSERT_TRUE(save_bank(&w, "p", bank).is_ok());
  SafetensorsFile good;
  ASSERT_TRUE(parse_bytes(serialize(w), &good).is_ok());
  const PackedLayout& L = bank.expert(0).layout;
  ASSERT_LT(40, L.n_pad);                                    // row n_pad - 1 is padding
  ASSERT_LT(L.zeros_offset + L.zeros_bytes, L.total_bytes);  // a zero tail exists

  struct Case {
    const char* what;
    std::function<void(Contents&)> corrupt;
    const char* message;
    StatusCode code;
  };
  const auto blob0 = [](Contents& c) -> std::vector<uint8_t>& {
    return c.tensors.at("p.expert.0").bytes;
  };
  const auto resize0 = [&](Contents& c, size_t bytes) {
    blob0(c).resize(bytes, 0);
    c.tensors.at("p.expert.0").shape = {static_cast<int64_t>(bytes)};
  };
  const StatusCode bad = StatusCode::kInvalidArgument;
  const std::vector<Case> cases = {
      {"padded row's scale set",
       [&](Contents& c) {
         blob0(c)[static_cast<size_t>(scale_byte(bank.expert(0), L.n_pad - 1, 0))] ^= 1;
       },
       "expert 0", bad},
      {"tail byte set", [&](Contents& c) { blob0(c).back() ^= 0x80; }, "expert 0", bad},
      {"NaN scale in a real row",
       [&](Contents& c) {
         blob0(c)[static_cast<size_t>(L.scales_offset)] = 0x01;
         blob0(c)[static_cast<size_t>(L.scales_offset) + 1] = 0x7E;
       },
       "expert 0", bad},
      {"blob one section short",
       [&](Contents& c) { resize0(c, static_cast<size_t>(L.total_bytes - 256)); },
       "expert 0: blob has", bad},
      {"blob longer", [&](Contents& c) { resize0(c, static_cast<size_t>(L.total_bytes + 256)); },
       "expert 0: blob has", bad},
      {"blob not U8", [](Contents& c) { c.tensors.at("p.expert.1").dtype = TensorDType::kI8; },
       "expert 1: tensor must be U8", bad},
      {"blob of rank 2",
       [](Contents& c) {
         auto& t = c.tensors.at("p.expert.2");
         t.shape = {1, t.shape[0]};
       },
       "rank 2", bad},
      {"expert tensor missing", [](Contents& c) { c.tensors.erase("p.expert.1"); },
       "expert 1: no tensor", bad},
      {"stray expert tensor",
       [](Contents& c) { c.tensors["p.expert.3"] = c.tensors.at("p.expert.0"); },
       "stray tensor 'p.expert.3'", bad},
      {"non-canonical expert tensor",
       [](Contents& c) { c.tensors["p.expert.01"] = c.tensors.at("p.expert.0"); }, "stray tensor",
       bad},
      {"stray format key", [](Contents& c) { c.metadata["p.format.9"] = "bf16"; },
       "stray metadata key", bad},
      {"format missing", [](Contents& c) { c.metadata.erase("p.format.2"); }, "expert 2: no format",
       bad},
      {"format unknown", [](Contents& c) { c.metadata["p.format.0"] = "int5:g128"; }, "expert 0",
       bad},
      {"format of another size", [](Contents& c) { c.metadata["p.format.0"] = "int2:g128"; },
       "expert 0: blob has", bad},
      {"format of the same size", [](Contents& c) { c.metadata["p.format.2"] = "fp16"; }, "",
       StatusCode::kOk},  // bf16 <-> fp16 bits are indistinguishable: not corruption
      {"shape syntax", [](Contents& c) { c.metadata["p.shape"] = "40;256"; }, "bad shape", bad},
      {"shape with three dims", [](Contents& c) { c.metadata["p.shape"] = "40,256,1"; },
       "bad shape", bad},
      {"shape with a zero", [](Contents& c) { c.metadata["p.shape"] = "0,256"; }, "bad shape", bad},
      {"shape with a leading zero", [](Contents& c) { c.metadata["p.shape"] = "040,256"; },
       "bad shape", bad},
      {"shape too large", [](Contents& c) { c.metadata["p.shape"] = "16777217,128"; }, "bad shape",
       bad},
      {"shape of 19 digits", [](Contents& c) { c.metadata["p.shape"] = "9999999999999999999,256"; },
       "bad shape", bad},
      {"shape of another size", [](Contents& c) { c.metadata["p.shape"] = "40,128"; }, "blob has",
       bad},
      {"shape missing", [](Contents& c) { c.metadata.erase("p.shape"); }, "p.shape", bad},
      {"fewer experts declared", [](Contents& c) { c.metadata["p.experts"] = "2"; },
       "stray tensor 'p.expert.2'", bad},
      {"more experts declared", [](Contents& c) { c.metadata["p.experts"] = "4"; },
       "expert 3: no format", bad},
      {"zero experts", [](Contents& c) { c.metadata["p.experts"] = "0"; }, "expert count", bad},
      {"negative experts", [](Contents& c) { c.metadata["p.experts"] = "-3"; }, "expert count",
       bad},
      {"huge experts", [](Contents& c) { c.metadata["p.experts"] = "9999999999999999999"; },
       "expert count", bad},
      {"bank missing", [](Contents& c) { c.metadata.erase("p.experts"); }, "no such bank", bad},
      {"version missing", [](Contents& c) { c.metadata.erase("qmoe.version"); }, "qmoe.version",
       bad},
      {"version garbage", [](Contents& c) { c.metadata["qmoe.version"] = "1.0"; },
       "bad \"qmoe.version\"", bad},
      {"newer version", [](Contents& c) { c.metadata["qmoe.version"] = "3"; }, "qmoe.version 3",
       StatusCode::kUnsupported},
      // Version 1 stored scales and zeros row-major (before the parameter blocks of §2.5).
      {"version 1 layout", [](Contents& c) { c.metadata["qmoe.version"] = "1"; }, "qmoe.version 1",
       StatusCode::kUnsupported},
  };
  for (const Case& c : cases) {
    Contents contents = Contents::of(good);
    c.corrupt(contents);
    SafetensorsFile f;
    ASSERT_TRUE(parse_bytes(contents.serialize(), &f).is_ok()) << c.what;
    ExpertBank out;
    Status st = load_bank(f, "p", &out);
    EXPECT_EQ(st.code(), c.code) << c.what << ": " << st.to_string();
    if (c.code == StatusCode::kOk) continue;
    EXPECT_NE(st.message().find("bank 'p'"), std::string::npos) << c.what << ": " << st.message();
    EXPECT_NE(st.message().find(c.message), std::string::npos)
        << c.what << ": '" << st.message() << "' lacks '" << c.message << "'";
    EXPECT_EQ(out.num_experts(), 0) << c.what;
  }
}

TEST(IoBank, SaveRejectsInvalidBlobsAndLeavesTheWriterUnchanged) {
  ExpertBank good = quantized_bank({"int4:g32"}, 16, 128, 41);
  // A blob of the right size but random bytes: its padding and scales are not pack's.
  std::vector<PackedMatrix> experts = {good.expert(0), good.expert(0)};
  std::mt19937 rng(42);
  for (uint8_t& b : experts[1].blob) b = static_cast<uint8_t>(rng());
  ExpertBank corrupt;
  ASSERT_TRUE(ExpertBank::create(std::move(experts), &corrupt).is_ok());

  SafetensorsWriter w;
  ASSERT_TRUE(save_bank(&w, "ok", good).is_ok());
  ASSERT_TRUE(w.add_metadata("taken.shape", "1,1").is_ok());
  const std::vector<uint8_t> before = serialize(w);
  Status st = save_bank(&w, "bad", corrupt);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("bank 'bad' expert 1"), std::string::npos) << st.message();
  EXPECT_EQ(save_bank(&w, "ok", good).code(), StatusCode::kInvalidArgument);  // name taken
  st = save_bank(&w, "taken", good);  // its tensors are new, its shape key is not
  EXPECT_NE(st.message().find("'taken.shape' already set"), std::string::npos) << st.message();
  EXPECT_EQ(save_bank(&w, "", good).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(save_bank(&w, "empty", ExpertBank()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(serialize(w), before);
  const std::string path = temp_path("never_written.safetensors");
  EXPECT_EQ(save_bank(path, "bad", corrupt).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(file_exists(path));
}

TEST(IoBank, FilesWithoutVersionDeclareNoBanks) {
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_metadata("x.experts", "2").is_ok());
  SafetensorsFile f;
  ASSERT_TRUE(parse_bytes(serialize(w), &f).is_ok());
  std::vector<std::string> names = {"stale"};
  ASSERT_TRUE(bank_names(f, &names).is_ok());
  EXPECT_TRUE(names.empty());
}

// ---- fuzzing -------------------------------------------------------------------------------

TEST(IoFuzz, RandomMutationsOfABankFileNeverCrashAndFailCleanly) {
  const std::vector<uint8_t> good = sample_bank_file();
  uint64_t header_end = 0;
  for (int i = 7; i >= 0; --i) header_end = (header_end << 8) | good[static_cast<size_t>(i)];
  header_end += 8;
  std::mt19937 rng(20250101);
  const std::string json_chars = "{}[]\":,0123456789-.eE\\u \x01\xFF";
  const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int parsed = 0, loaded = 0, rejected = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> f = good;
    const int mutations = 1 + static_cast<int>(pick(3));
    for (int m = 0; m < mutations && f.size() > 8; ++m) {
      const size_t header_size = std::min<size_t>(f.size(), static_cast<size_t>(header_end));
      switch (pick(6)) {
        case 0:  // flip a bit anywhere
          f[pick(f.size())] ^= static_cast<uint8_t>(1u << pick(8));
          break;
        case 1:  // flip a bit in the length or the header
          f[pick(header_size)] ^= static_cast<uint8_t>(1u << pick(8));
          break;
        case 2:  // a JSON-significant byte in the header
          f[8 + pick(header_size - 8)] = static_cast<uint8_t>(json_chars[pick(json_chars.size())]);
          break;
        case 3:  // truncate
          f.resize(pick(f.size() + 1));
          break;
        case 4:  // append
          f.insert(f.end(), pick(300), static_cast<uint8_t>(rng()));
          break;
        default: {  // a digit changed: offsets, shapes, counts in the metadata
          std::vector<size_t> digits;
          for (size_t i = 8; i < header_size; ++i)
            if (f[i] >= '0' && f[i] <= '9') digits.push_back(i);
          if (!digits.empty())
            f[digits[pick(digits.size())]] = static_cast<uint8_t>('0' + pick(10));
        }
      }
    }
    SafetensorsFile file;
    Status st = parse_bytes(f, &file);
    if (!st.is_ok()) {
      ASSERT_EQ(st.code(), StatusCode::kInvalidArgument) << "iteration " << iter;
      ASSERT_FALSE(st.message().empty());
      ++rejected;
      continue;
    }
    ++parsed;
    std::vector<std::string> names;
    ASSERT_TRUE(bank_names(file, &names).is_ok());
    for (const std::string& name : names) {
      ExpertBank bank;
      st = load_bank(file, name, &bank);
      ASSERT_TRUE(st.is_ok() || st.code() == StatusCode::kInvalidArgument ||
                  st.code() == StatusCode::kUnsupported)
          << "iteration " << iter << ": " << st.to_string();
      loaded += st.is_ok() ? 1 : 0;
      rejected += st.is_ok() ? 0 : 1;
    }
  }
  // The loop must exercise both outcomes to mean anything.
  EXPECT_GT(rejected, 1000);
  EXPECT_GT(parsed, 50);
  EXPECT_GT(loaded, 10);
}

// ---- the sample checkpoint of the CLI test ---------------------------------------------------

/// Writes a small float checkpoint: an expert bank w13 [4, 64, 128] (F32), w2 [4, 128, 64]
/// (BF16), a router [4, 128] (F16), a norm [128] and calibration activations [32, 128]. The
/// CLI ctest runs this test with QMOE_IO_SAMPLE_PATH set, then `qmoe quantize`/`inspect` on it.
TEST(SafetensorsRead, AFileItsHeaderDoesNotDescribeIsRefusedBeforeItsDataIsRead) {
  // An empty header (length 0) at the front of a 1 TiB sparse file: refused for its header, the
  // data never read (reading the whole file first ran out of memory: kOutOfRange, and an 8 GB
  // one took 40 s to refuse).
  const std::string path = temp_path("sparse.safetensors");
  {
    std::ofstream f(path, std::ios::binary);
    const char length[8] = {};
    f.write(length, sizeof(length));
  }
  std::error_code ec;
  std::filesystem::resize_file(path, uint64_t{1} << 40, ec);
  if (ec) {
    std::remove(path.c_str());
    GTEST_SKIP() << "no sparse 1 TiB file here: " << ec.message();
  }
  SafetensorsFile f;
  const Status st = read_safetensors(path, &f);
  std::remove(path.c_str());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("header"), std::string::npos) << st.message();
}

TEST(IoCli, WritesTheSampleCheckpointOfTheCliTest) {
  const char* env = std::getenv("QMOE_IO_SAMPLE_PATH");
  const std::string path = env != nullptr ? env : temp_path("sample.safetensors");
  std::mt19937 rng(51);
  const std::vector<float> w13 = gaussian(4 * 64 * 128, 1.0f, rng), norm = gaussian(128, 1.0f, rng),
                           calib = gaussian(32 * 128, 1.0f, rng);
  std::vector<uint16_t> w2, router;
  for (float v : gaussian(4 * 128 * 64, 1.0f, rng)) w2.push_back(float_to_bf16(v));
  for (float v : gaussian(4 * 128, 1.0f, rng)) router.push_back(float_to_fp16(v));
  SafetensorsWriter w;
  ASSERT_TRUE(w.add_tensor("layers.0.w13", TensorDType::kF32, {4, 64, 128}, w13.data()).is_ok());
  ASSERT_TRUE(w.add_tensor("layers.0.w2", TensorDType::kBF16, {4, 128, 64}, w2.data()).is_ok());
  ASSERT_TRUE(w.add_tensor("layers.0.router", TensorDType::kF16, {4, 128}, router.data()).is_ok());
  ASSERT_TRUE(w.add_tensor("layers.0.norm", TensorDType::kF32, {128}, norm.data()).is_ok());
  ASSERT_TRUE(w.add_tensor("calib", TensorDType::kF32, {32, 128}, calib.data()).is_ok());
  ASSERT_TRUE(w.add_metadata("format", "pt").is_ok());
  ASSERT_TRUE(w.write(path).is_ok()) << path;
  // The same checkpoint with a metadata key of w13's bank namespace (a format of an expert 9 it
  // will not have): quantizing w13 must refuse to write a file that would not load back.
  SafetensorsWriter stray = w;
  ASSERT_TRUE(stray.add_metadata("layers.0.w13.format.9", "int4:g128").is_ok());
  ASSERT_TRUE(stray.write(path + ".stray").is_ok()) << path;

  SafetensorsFile f;
  ASSERT_TRUE(read_safetensors(path, &f).is_ok());
  ASSERT_EQ(f.tensors.size(), 5u);
  std::vector<float> back(4 * 64 * 128);
  ASSERT_TRUE(tensor_to_float(f, "layers.0.w13", 0, 4 * 64 * 128, back.data()).is_ok());
  EXPECT_EQ(back, w13);
  if (env == nullptr) {
    std::remove(path.c_str());
    std::remove((path + ".stray").c_str());
  }
}

}  // namespace
}  // namespace qmoe
