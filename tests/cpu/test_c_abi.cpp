// The C ABI (python_free_bindings/qmoe.h), driven through the C header only; the C++ API is
// used solely as the oracle the C results must match byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "qmoe.h"
#include "qmoe/cpu_ref.hpp"
#include "qmoe/gpu.hpp"
#include "qmoe/quantize.hpp"
#include "tests/cpu/c_abi_test_util.hpp"
#include "tests/cpu/test_util.hpp"

namespace {

using qmoe::c_abi_test::kBF16;
using qmoe::c_abi_test::kF32;
using qmoe::c_abi_test::kF64;
using qmoe::c_abi_test::kFP16;
using qmoe::c_abi_test::kI32;
using qmoe::c_abi_test::last_error;
using qmoe::c_abi_test::tensor;
using qmoe::test::gaussian;
using qmoe::test::parse_format;
using qmoe::test::quantized;
using qmoe::test::random_activations;

template <typename T>
bool same_bytes(const std::vector<T>& a, const void* b, size_t count) {
  return a.size() == count && std::memcmp(a.data(), b, count * sizeof(T)) == 0;
}

TEST(CAbiVersion, LibraryMatchesTheHeaderAbiAndHasASemanticVersion) {
  EXPECT_EQ(qmoe_abi_version(), QMOE_ABI_VERSION);
  EXPECT_TRUE(std::regex_match(qmoe_version(), std::regex(R"(\d+\.\d+\.\d+)"))) << qmoe_version();
  EXPECT_STREQ(qmoe_status_name(QMOE_STATUS_INVALID_ARGUMENT), "invalid argument");
  EXPECT_STREQ(qmoe_status_name(static_cast<qmoe_status_t>(42)), "unknown");
  EXPECT_STREQ(qmoe_status_name(QMOE_STATUS_FORCE_INT32), "unknown");
}

TEST(CAbiFormats, ListIsTheCppRegistryInOrder) {
  const auto& formats = qmoe::all_formats();
  ASSERT_EQ(qmoe_format_count(), static_cast<int64_t>(formats.size()));
  for (size_t i = 0; i < formats.size(); ++i) {
    const char* name = qmoe_format_name(static_cast<int64_t>(i));
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(name, formats[i].to_string());
    EXPECT_LT(std::strlen(name), size_t{QMOE_FORMAT_STRING_MAX});
  }
  EXPECT_EQ(qmoe_format_name(-1), nullptr);
  EXPECT_EQ(qmoe_format_name(qmoe_format_count()), nullptr);
}

TEST(CAbiFormats, CanonicalStringAndBitsPerWeightMatchCpp) {
  for (const char* text : {"int4:g128:asym", "int3:g64:sym", "int2:g32", "int8:pc", "bf16", "fp16",
                           "nuq3", "tcq4", "tcq2.5"}) {
    SCOPED_TRACE(text);
    qmoe::FormatSpec f;
    ASSERT_TRUE(qmoe::FormatSpec::parse(text, &f).is_ok());
    size_t length = 0;
    ASSERT_EQ(qmoe_format_canonical(text, nullptr, 0, &length), QMOE_STATUS_OK);
    EXPECT_EQ(length, f.to_string().size());
    char buf[QMOE_FORMAT_STRING_MAX];
    ASSERT_EQ(qmoe_format_canonical(text, buf, sizeof(buf), nullptr), QMOE_STATUS_OK);
    EXPECT_EQ(std::string(buf), f.to_string());
    double bits = 0;
    ASSERT_EQ(qmoe_format_bits_per_weight(text, 4096, &bits), QMOE_STATUS_OK);
    EXPECT_EQ(bits, f.bits_per_weight(4096));
  }
}

struct QuantizeCase {
  const char* format;
  qmoe_quant_method_t method;
  qmoe::QuantMethod cpp_method;
};

TEST(CAbiQuantize, PackedBytesAndDequantizedValuesMatchCppForEveryMethod) {
  // n = 40 is not a multiple of the 16-row tile: padding is compared too.
  constexpr int64_t n = 40, k = 256, calib_rows = 64;
  std::vector<float> w = gaussian(n * k, 1.0f, 1), calib = gaussian(calib_rows * k, 1.0f, 2);
  int64_t w_shape[2] = {n, k}, calib_shape[2] = {calib_rows, k};
  const DLTensor wt = tensor(w.data(), w_shape, 2, kF32);
  const DLTensor ct = tensor(calib.data(), calib_shape, 2, kF32);
  const QuantizeCase cases[] = {
      {"int4:g128", QMOE_QUANT_RTN, qmoe::QuantMethod::kRtnMinMax},
      {"int3:g64:sym", QMOE_QUANT_RTN_MSE, qmoe::QuantMethod::kRtnMse},
      {"int2:g32", QMOE_QUANT_GPTQ, qmoe::QuantMethod::kGptq},
      {"int8:pc", QMOE_QUANT_RTN, qmoe::QuantMethod::kRtnMinMax},
      {"bf16", QMOE_QUANT_RTN, qmoe::QuantMethod::kRtnMinMax},
      {"fp16", QMOE_QUANT_RTN_MSE, qmoe::QuantMethod::kRtnMse},
      {"nuq4", QMOE_QUANT_RTN, qmoe::QuantMethod::kRtnMinMax},
      {"nuq2", QMOE_QUANT_GPTQ, qmoe::QuantMethod::kGptq},
      {"tcq2", QMOE_QUANT_RTN_MSE, qmoe::QuantMethod::kRtnMse},
  };
  for (const QuantizeCase& c : cases) {
    SCOPED_TRACE(c.format);
    const bool gptq = c.method == QMOE_QUANT_GPTQ;
    qmoe_packed_t* packed = nullptr;
    ASSERT_EQ(qmoe_quantize(&wt, c.format, c.method, gptq ? &ct : nullptr, &packed), QMOE_STATUS_OK)
        << last_error();
    qmoe::QuantizeOptions opt;
    opt.method = c.cpp_method;
    if (gptq) {
      opt.calib = calib.data();
      opt.calib_rows = calib_rows;
    }
    const qmoe::PackedMatrix expect = quantized(w, n, k, parse_format(c.format), opt);

    int64_t rows = 0, cols = 0, bytes = 0;
    const void* data = nullptr;
    char format[QMOE_FORMAT_STRING_MAX];
    ASSERT_EQ(qmoe_packed_shape(packed, &rows, &cols), QMOE_STATUS_OK);
    ASSERT_EQ(qmoe_packed_bytes(packed, &bytes), QMOE_STATUS_OK);
    ASSERT_EQ(qmoe_packed_data(packed, &data), QMOE_STATUS_OK);
    ASSERT_EQ(qmoe_packed_format(packed, format, sizeof(format), nullptr), QMOE_STATUS_OK);
    EXPECT_EQ(rows, n);
    EXPECT_EQ(cols, k);
    EXPECT_EQ(std::string(format), expect.format.to_string());
    ASSERT_EQ(bytes, static_cast<int64_t>(expect.blob.size()));
    EXPECT_TRUE(same_bytes(expect.blob, data, expect.blob.size()));

    std::vector<float> exact;
    ASSERT_TRUE(qmoe::ref::dequantize(expect, &exact).is_ok());
    std::vector<float> got(n * k, -7.0f);
    DLTensor out = tensor(got.data(), w_shape, 2, kF32);
    ASSERT_EQ(qmoe_dequantize(packed, &out), QMOE_STATUS_OK) << last_error();
    EXPECT_TRUE(same_bytes(exact, got.data(), got.size()));
    for (qmoe::DType t : {qmoe::DType::kBF16, qmoe::DType::kFP16}) {
      std::vector<uint16_t> rounded;
      ASSERT_TRUE(qmoe::ref::dequantize_to(expect, t, &rounded).is_ok());
      std::vector<uint16_t> got16(n * k, 0x7777);
      DLTensor out16 = tensor(got16.data(), w_shape, 2, t == qmoe::DType::kBF16 ? kBF16 : kFP16);
      ASSERT_EQ(qmoe_dequantize(packed, &out16), QMOE_STATUS_OK) << last_error();
      EXPECT_TRUE(same_bytes(rounded, got16.data(), got16.size())) << qmoe::dtype_name(t);
    }
    qmoe_packed_destroy(packed);
  }
}

TEST(CAbiQuantize, HonoursByteOffsetExplicitCompactStridesAndSize1Dims) {
  constexpr int64_t n = 16, k = 128, lead = 48;  // lead floats before the matrix
  std::vector<float> storage = gaussian(lead + n * k, 1.0f, 3);
  const std::vector<float> w(storage.begin() + lead, storage.end());
  int64_t shape[2] = {n, k}, strides[2] = {k, 1};
  DLTensor wt = tensor(storage.data(), shape, 2, kF32);
  wt.byte_offset = lead * sizeof(float);
  wt.strides = strides;
  qmoe_packed_t* packed = nullptr;
  ASSERT_EQ(qmoe_quantize(&wt, "int4:g64", QMOE_QUANT_RTN, nullptr, &packed), QMOE_STATUS_OK)
      << last_error();
  const qmoe::PackedMatrix expect = quantized(w, n, k, parse_format("int4:g64"));
  const void* data = nullptr;
  ASSERT_EQ(qmoe_packed_data(packed, &data), QMOE_STATUS_OK);
  EXPECT_TRUE(same_bytes(expect.blob, data, expect.blob.size()));

  // Output at a byte offset: the elements before it stay as they were.
  std::vector<float> exact;
  ASSERT_TRUE(qmoe::ref::dequantize(expect, &exact).is_ok());
  std::vector<float> out_storage(lead + n * k, -3.0f);
  DLTensor out = tensor(out_storage.data(), shape, 2, kF32);
  out.byte_offset = lead * sizeof(float);
  ASSERT_EQ(qmoe_dequantize(packed, &out), QMOE_STATUS_OK) << last_error();
  EXPECT_TRUE(same_bytes(exact, out_storage.data() + lead, n * k));
  for (int64_t i = 0; i < lead; ++i) ASSERT_EQ(out_storage[i], -3.0f);
  qmoe_packed_destroy(packed);

  // A single row: its row stride addresses nothing, so any value is compact.
  int64_t row_shape[2] = {1, k}, row_strides[2] = {123457, 1};
  DLTensor row = tensor(storage.data(), row_shape, 2, kF32);
  row.strides = row_strides;
  ASSERT_EQ(qmoe_quantize(&row, "int8:g128", QMOE_QUANT_RTN, nullptr, &packed), QMOE_STATUS_OK)
      << last_error();
  qmoe_packed_destroy(packed);
}

TEST(CAbiInterleave, GateUpRowsMatchCppInPlaceAndOutOfPlace) {
  // w13 [48, 5]: qmoe_interleave_gate_up gives qmoe::interleave_gate_up's rows, into another
  // tensor and into w13 itself; bad shapes and dtypes are refused and leave out alone.
  constexpr int64_t rows = 48, cols = 5;
  const std::vector<float> w = gaussian(rows * cols, 1.0f, 77);
  std::vector<float> want;
  ASSERT_TRUE(qmoe::interleave_gate_up(w.data(), rows, cols, &want).is_ok());
  int64_t shape[2] = {rows, cols};
  std::vector<float> in = w, out(w.size(), -1.0f);
  const DLTensor wt = tensor(in.data(), shape, 2, kF32);
  DLTensor ot = tensor(out.data(), shape, 2, kF32);
  ASSERT_EQ(qmoe_interleave_gate_up(&wt, &ot), QMOE_STATUS_OK) << last_error();
  EXPECT_EQ(out, want);
  EXPECT_EQ(in, w) << "the input changed";
  // Row 16 s + j is gate row 8 s + j, row 16 s + 8 + j up row 8 s + j (up starts at row 24).
  for (int64_t c = 0; c < cols; ++c) {
    EXPECT_EQ(out[static_cast<size_t>(9 * cols + c)], w[static_cast<size_t>((24 + 1) * cols + c)]);
    EXPECT_EQ(out[static_cast<size_t>(17 * cols + c)], w[static_cast<size_t>(9 * cols + c)]);
  }
  DLTensor in_place = tensor(in.data(), shape, 2, kF32);
  ASSERT_EQ(qmoe_interleave_gate_up(&in_place, &in_place), QMOE_STATUS_OK) << last_error();
  EXPECT_EQ(in, want);

  const std::vector<float> untouched(out.size(), -2.0f);
  out = untouched;
  int64_t odd_shape[2] = {40, cols}, other_shape[2] = {rows, cols + 1};
  const DLTensor odd = tensor(in.data(), odd_shape, 2, kF32);
  DLTensor odd_out = tensor(out.data(), odd_shape, 2, kF32);
  EXPECT_EQ(qmoe_interleave_gate_up(&odd, &odd_out), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(last_error().rfind("qmoe_interleave_gate_up: ", 0), 0u) << last_error();
  DLTensor wrong_shape = tensor(out.data(), other_shape, 2, kF32);
  EXPECT_EQ(qmoe_interleave_gate_up(&wt, &wrong_shape), QMOE_STATUS_INVALID_ARGUMENT);
  DLTensor wrong_dtype = tensor(out.data(), shape, 2, kF64);
  EXPECT_EQ(qmoe_interleave_gate_up(&wt, &wrong_dtype), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(qmoe_interleave_gate_up(nullptr, &ot), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(qmoe_interleave_gate_up(&wt, nullptr), QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(out, untouched);
}

TEST(CAbiRefGroupedGemm, MatchesCppOnAMixedBankWithAnEmptyExpert) {
  constexpr int64_t n = 48, k = 256, m = 7;
  const char* formats[] = {"int4:g128", "int3:g64:sym", "bf16"};
  constexpr int64_t E = 3;
  const int32_t offsets[E + 1] = {0, 3, 3, 7};  // expert 1 has no tokens
  qmoe_packed_t* experts[E];
  std::vector<qmoe::PackedMatrix> cpp_experts;
  int64_t w_shape[2] = {n, k};
  for (int64_t e = 0; e < E; ++e) {
    std::vector<float> w = gaussian(n * k, 1.0f, 10 + static_cast<uint32_t>(e));
    const DLTensor wt = tensor(w.data(), w_shape, 2, kF32);
    ASSERT_EQ(qmoe_quantize(&wt, formats[e], QMOE_QUANT_RTN, nullptr, &experts[e]), QMOE_STATUS_OK);
    cpp_experts.push_back(quantized(w, n, k, parse_format(formats[e])));
  }
  qmoe_bank_t* bank = nullptr;
  ASSERT_EQ(qmoe_bank_create(experts, E, &bank), QMOE_STATUS_OK) << last_error();
  for (qmoe_packed_t* p : experts) qmoe_packed_destroy(p);  // the bank holds copies
  int64_t num = 0, rows = 0, cols = 0;
  ASSERT_EQ(qmoe_bank_shape(bank, &num, &rows, &cols), QMOE_STATUS_OK);
  EXPECT_EQ(num, E);
  EXPECT_EQ(rows, n);
  EXPECT_EQ(cols, k);
  qmoe::ExpertBank cpp_bank;
  ASSERT_TRUE(qmoe::ExpertBank::create(std::move(cpp_experts), &cpp_bank).is_ok());

  for (qmoe::DType t : {qmoe::DType::kBF16, qmoe::DType::kFP16}) {
    SCOPED_TRACE(qmoe::dtype_name(t));
    std::vector<uint16_t> x = random_activations(t, m * k, 2.0f, 20);
    std::vector<double> expect;
    ASSERT_TRUE(qmoe::ref::grouped_gemm(cpp_bank, t, x.data(), m, offsets, &expect).is_ok());
    std::vector<double> y(m * n, std::nan(""));
    int64_t x_shape[2] = {m, k}, y_shape[2] = {m, n};
    const DLTensor xt = tensor(x.data(), x_shape, 2, t == qmoe::DType::kBF16 ? kBF16 : kFP16);
    DLTensor yt = tensor(y.data(), y_shape, 2, kF64);
    ASSERT_EQ(qmoe_ref_grouped_gemm(bank, &xt, offsets, &yt), QMOE_STATUS_OK) << last_error();
    EXPECT_TRUE(same_bytes(expect, y.data(), y.size()));
  }
  qmoe_bank_destroy(bank);
}

TEST(CAbiRefGroupedGemm, NoTokensWithNullDataIsANoOp) {
  constexpr int64_t n = 16, k = 128;
  std::vector<float> w = gaussian(n * k, 1.0f, 21);
  int64_t w_shape[2] = {n, k};
  const DLTensor wt = tensor(w.data(), w_shape, 2, kF32);
  qmoe_packed_t* packed = nullptr;
  ASSERT_EQ(qmoe_quantize(&wt, "int2:g64", QMOE_QUANT_RTN, nullptr, &packed), QMOE_STATUS_OK);
  qmoe_packed_t* experts[2] = {packed, packed};
  qmoe_bank_t* bank = nullptr;
  ASSERT_EQ(qmoe_bank_create(experts, 2, &bank), QMOE_STATUS_OK);
  qmoe_packed_destroy(packed);
  const int32_t offsets[3] = {0, 0, 0};
  int64_t x_shape[2] = {0, k}, y_shape[2] = {0, n};
  const DLTensor xt = tensor(nullptr, x_shape, 2, kFP16);
  DLTensor yt = tensor(nullptr, y_shape, 2, kF64);
  EXPECT_EQ(qmoe_ref_grouped_gemm(bank, &xt, offsets, &yt), QMOE_STATUS_OK) << last_error();
  qmoe_bank_destroy(bank);
}

TEST(CAbiHandles, EveryDestroyAcceptsNull) {
  qmoe_packed_destroy(nullptr);
  qmoe_bank_destroy(nullptr);
  qmoe_device_bank_destroy(nullptr);
}

// ---- bad inputs ---------------------------------------------------------------------------

/// Valid inputs for every call, and outputs pre-filled with sentinels that a failing call
/// must leave untouched.
struct Inputs {
  static constexpr int64_t kN = 16, kK = 128, kM = 4;
  std::vector<float> w = gaussian(kN * kK, 1.0f, 30), calib = gaussian(8 * kK, 1.0f, 31);
  int64_t w_shape[2] = {kN, kK}, calib_shape[2] = {8, kK};
  int64_t x_shape[2] = {kM, kK}, y_shape[2] = {kM, kN};
  std::vector<uint16_t> x =
      random_activations(qmoe::DType::kBF16, x_shape[0] * x_shape[1], 2.0f, 32);
  int32_t offsets[3] = {0, 1, kM};
  qmoe_packed_t* packed = nullptr;  // int4:g128 [kN, kK]
  qmoe_packed_t* tall = nullptr;    // int4:g128 [2 kN, kK]
  qmoe_bank_t* bank = nullptr;      // two experts [kN, kK]

  // Outputs, twice the size any correct call could write.
  std::vector<float> out_f32 = std::vector<float>(2 * kN * kK);
  std::vector<double> y = std::vector<double>(2 * kM * kN);
  char text[QMOE_FORMAT_STRING_MAX];
  double bits;
  int64_t dims[3];
  const void* data;
  size_t length;
  qmoe_packed_t* packed_out;
  qmoe_bank_t* bank_out;
  qmoe_device_bank_t* device_bank_out;

  // Distinct addresses no handle can have.
  char sentinel_storage[3];

  DLTensor w_t() { return tensor(w.data(), w_shape, 2, kF32); }
  DLTensor calib_t() { return tensor(calib.data(), calib_shape, 2, kF32); }
  DLTensor out_t() { return tensor(out_f32.data(), w_shape, 2, kF32); }
  DLTensor x_t() { return tensor(x.data(), x_shape, 2, kBF16); }
  DLTensor y_t() { return tensor(y.data(), y_shape, 2, kF64); }

  void fill_sentinels() {
    std::memset(out_f32.data(), 0x5a, out_f32.size() * sizeof(float));
    std::memset(y.data(), 0x5a, y.size() * sizeof(double));
    std::memset(text, 'Z', sizeof(text));
    bits = -1.5;
    dims[0] = dims[1] = dims[2] = -77;
    data = sentinel_storage;
    length = 12345;
    packed_out = reinterpret_cast<qmoe_packed_t*>(sentinel_storage);
    bank_out = reinterpret_cast<qmoe_bank_t*>(sentinel_storage + 1);
    device_bank_out = reinterpret_cast<qmoe_device_bank_t*>(sentinel_storage + 2);
  }

  /// Empty when every output still holds its sentinel, else the first one written.
  std::string written() const {
    for (size_t i = 0; i < out_f32.size() * sizeof(float); ++i)
      if (reinterpret_cast<const unsigned char*>(out_f32.data())[i] != 0x5a)
        return "dequantize out";
    for (size_t i = 0; i < y.size() * sizeof(double); ++i)
      if (reinterpret_cast<const unsigned char*>(y.data())[i] != 0x5a) return "y";
    for (char c : text)
      if (c != 'Z') return "text buffer";
    if (bits != -1.5) return "bits_per_weight";
    if (dims[0] != -77 || dims[1] != -77 || dims[2] != -77) return "shape outputs";
    if (data != sentinel_storage) return "data pointer";
    if (length != 12345) return "length";
    if (packed_out != reinterpret_cast<const qmoe_packed_t*>(sentinel_storage)) return "packed out";
    if (bank_out != reinterpret_cast<const qmoe_bank_t*>(sentinel_storage + 1)) return "bank out";
    if (device_bank_out != reinterpret_cast<const qmoe_device_bank_t*>(sentinel_storage + 2))
      return "device bank out";
    return "";
  }
};

struct BadCase {
  const char* what;
  const char* function;  // the message must start with it
  qmoe_status_t expect;
  std::function<qmoe_status_t(Inputs&)> call;
};

/// `t` with one field changed by `edit`.
template <typename Edit>
DLTensor with(DLTensor t, Edit edit) {
  edit(t);
  return t;
}

// Shapes, strides and buffers the table's tensors point at; static so they outlive the calls.
int64_t g_shape_1d[1] = {Inputs::kN * Inputs::kK};
int64_t g_shape_3d[3] = {1, Inputs::kN, Inputs::kK};
int64_t g_shape_k96[2] = {Inputs::kN, 96};
int64_t g_shape_neg[2] = {-1, Inputs::kK};
int64_t g_shape_wide[2] = {Inputs::kN, Inputs::kK + 1};
int64_t g_shape_calib_k64[2] = {8, 64};
int64_t g_shape_x_k64[2] = {Inputs::kM, 64};
int64_t g_shape_y_rows[2] = {Inputs::kM + 1, Inputs::kN};
int64_t g_transposed[2] = {1, Inputs::kN};
int64_t g_padded_rows[2] = {Inputs::kK + 8, 1};

qmoe_status_t quantize(Inputs& in, const DLTensor& w, const char* format = "int4:g128",
                       qmoe_quant_method_t method = QMOE_QUANT_RTN,
                       const DLTensor* calib = nullptr) {
  return qmoe_quantize(&w, format, method, calib, &in.packed_out);
}

qmoe_status_t dequantize(Inputs& in, DLTensor out) {
  return qmoe_dequantize(in.packed, &out);
}

qmoe_status_t ref_gemm(Inputs& in, const DLTensor& x, DLTensor y, const int32_t* offsets) {
  return qmoe_ref_grouped_gemm(in.bank, &x, offsets, &y);
}

std::vector<BadCase> bad_cases() {
  using I = Inputs;
  constexpr qmoe_status_t kInvalid = QMOE_STATUS_INVALID_ARGUMENT;
  static std::vector<float> nan_w = [] {
    std::vector<float> v = gaussian(I::kN * I::kK, 1.0f, 33);
    v[77] = std::numeric_limits<float>::quiet_NaN();
    return v;
  }();
  static std::vector<float> huge_w(I::kN * I::kK, 1e6f);  // beyond fp16's 65504
  static const int32_t decreasing[3] = {0, 3, 2}, short_end[3] = {0, 1, 3},
                       late_start[3] = {1, 2, 4};
  return {
      // qmoe_quantize
      {"null w", "qmoe_quantize", kInvalid,
       [](I& in) {
         return qmoe_quantize(nullptr, "int4:g128", QMOE_QUANT_RTN, nullptr, &in.packed_out);
       }},
      {"null format", "qmoe_quantize", kInvalid,
       [](I& in) {
         DLTensor w = in.w_t();
         return qmoe_quantize(&w, nullptr, QMOE_QUANT_RTN, nullptr, &in.packed_out);
       }},
      {"null out", "qmoe_quantize", kInvalid,
       [](I& in) {
         DLTensor w = in.w_t();
         return qmoe_quantize(&w, "int4:g128", QMOE_QUANT_RTN, nullptr, nullptr);
       }},
      {"unknown format", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, in.w_t(), "int5:g128"); }},
      {"upper-case format", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, in.w_t(), "INT4:G128"); }},
      {"float64 w", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.dtype = kF64; })); }},
      {"bfloat16 w", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.dtype = kBF16; })); }},
      {"2-lane w", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.dtype.lanes = 2; })); }},
      {"1-d w", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) {
                           t.ndim = 1;
                           t.shape = g_shape_1d;
                         }));
       }},
      {"3-d w", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) {
                           t.ndim = 3;
                           t.shape = g_shape_3d;
                         }));
       }},
      {"w on CUDA", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.device.device_type = kDLCUDA; }));
       }},
      {"w on CUDA host memory", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in,
                         with(in.w_t(), [](DLTensor& t) { t.device.device_type = kDLCUDAHost; }));
       }},
      {"transposed w", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.strides = g_transposed; }));
       }},
      {"padded rows of w", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.strides = g_padded_rows; }));
       }},
      {"null shape", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.shape = nullptr; })); }},
      {"negative dim", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.shape = g_shape_neg; }));
       }},
      {"null data", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.data = nullptr; })); }},
      {"misaligned byte_offset", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, with(in.w_t(), [](DLTensor& t) { t.byte_offset = 2; })); }},
      {"k not a multiple of the group", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.shape = g_shape_k96; }),
                         "int4:g64");
       }},
      {"unknown method", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, in.w_t(), "int4:g128", static_cast<qmoe_quant_method_t>(7));
       }},
      {"method FORCE_INT32", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, in.w_t(), "int4:g128", QMOE_QUANT_FORCE_INT32); }},
      {"calib without GPTQ", "qmoe_quantize", kInvalid,
       [](I& in) {
         const DLTensor c = in.calib_t();
         return quantize(in, in.w_t(), "int4:g128", QMOE_QUANT_RTN_MSE, &c);
       }},
      {"GPTQ without calib", "qmoe_quantize", kInvalid,
       [](I& in) { return quantize(in, in.w_t(), "int4:g128", QMOE_QUANT_GPTQ); }},
      {"calib of another k", "qmoe_quantize", kInvalid,
       [](I& in) {
         const DLTensor c = with(in.calib_t(), [](DLTensor& t) { t.shape = g_shape_calib_k64; });
         return quantize(in, in.w_t(), "int4:g128", QMOE_QUANT_GPTQ, &c);
       }},
      {"float64 calib", "qmoe_quantize", kInvalid,
       [](I& in) {
         const DLTensor c = with(in.calib_t(), [](DLTensor& t) { t.dtype = kF64; });
         return quantize(in, in.w_t(), "int4:g128", QMOE_QUANT_GPTQ, &c);
       }},
      {"NaN weight", "qmoe_quantize", kInvalid,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.data = nan_w.data(); }));
       }},
      {"weight beyond fp16", "qmoe_quantize", QMOE_STATUS_OUT_OF_RANGE,
       [](I& in) {
         return quantize(in, with(in.w_t(), [](DLTensor& t) { t.data = huge_w.data(); }), "fp16");
       }},
      // qmoe_dequantize
      {"null packed", "qmoe_dequantize", kInvalid,
       [](I& in) {
         DLTensor o = in.out_t();
         return qmoe_dequantize(nullptr, &o);
       }},
      {"null out", "qmoe_dequantize", kInvalid,
       [](I& in) { return qmoe_dequantize(in.packed, nullptr); }},
      {"out of another shape", "qmoe_dequantize", kInvalid,
       [](I& in) {
         return dequantize(in, with(in.out_t(), [](DLTensor& t) { t.shape = g_shape_wide; }));
       }},
      {"transposed out", "qmoe_dequantize", kInvalid,
       [](I& in) {
         return dequantize(in, with(in.out_t(), [](DLTensor& t) { t.strides = g_transposed; }));
       }},
      {"int32 out", "qmoe_dequantize", kInvalid,
       [](I& in) { return dequantize(in, with(in.out_t(), [](DLTensor& t) { t.dtype = kI32; })); }},
      {"float64 out", "qmoe_dequantize", kInvalid,
       [](I& in) { return dequantize(in, with(in.out_t(), [](DLTensor& t) { t.dtype = kF64; })); }},
      {"out on CUDA", "qmoe_dequantize", kInvalid,
       [](I& in) {
         return dequantize(in,
                           with(in.out_t(), [](DLTensor& t) { t.device.device_type = kDLCUDA; }));
       }},
      // packed accessors
      {"shape of null", "qmoe_packed_shape", kInvalid,
       [](I& in) { return qmoe_packed_shape(nullptr, &in.dims[0], &in.dims[1]); }},
      {"shape into null", "qmoe_packed_shape", kInvalid,
       [](I& in) { return qmoe_packed_shape(in.packed, &in.dims[0], nullptr); }},
      {"bytes of null", "qmoe_packed_bytes", kInvalid,
       [](I& in) { return qmoe_packed_bytes(nullptr, &in.dims[0]); }},
      {"data of null", "qmoe_packed_data", kInvalid,
       [](I& in) { return qmoe_packed_data(nullptr, &in.data); }},
      {"format of null", "qmoe_packed_format", kInvalid,
       [](I& in) { return qmoe_packed_format(nullptr, in.text, sizeof(in.text), &in.length); }},
      {"format into a short buffer", "qmoe_packed_format", kInvalid,
       [](I& in) { return qmoe_packed_format(in.packed, in.text, 4, &in.length); }},
      // formats
      {"canonical of unknown", "qmoe_format_canonical", kInvalid,
       [](I& in) {
         return qmoe_format_canonical("int4:g100", in.text, sizeof(in.text), &in.length);
       }},
      {"canonical of null", "qmoe_format_canonical", kInvalid,
       [](I& in) { return qmoe_format_canonical(nullptr, in.text, sizeof(in.text), &in.length); }},
      {"canonical into null with a size", "qmoe_format_canonical", kInvalid,
       [](I& in) { return qmoe_format_canonical("int4:g128", nullptr, 8, &in.length); }},
      {"canonical into a buffer without room for NUL", "qmoe_format_canonical", kInvalid,
       [](I& in) { return qmoe_format_canonical("int4:g128", in.text, 9, &in.length); }},
      {"bits of unknown", "qmoe_format_bits_per_weight", kInvalid,
       [](I& in) { return qmoe_format_bits_per_weight("int4", 128, &in.bits); }},
      {"bits for k = 0", "qmoe_format_bits_per_weight", kInvalid,
       [](I& in) { return qmoe_format_bits_per_weight("int4:pc", 0, &in.bits); }},
      {"bits for k off the group", "qmoe_format_bits_per_weight", kInvalid,
       [](I& in) { return qmoe_format_bits_per_weight("int4:g128", 200, &in.bits); }},
      {"bits into null", "qmoe_format_bits_per_weight", kInvalid,
       [](I&) { return qmoe_format_bits_per_weight("int4:g128", 128, nullptr); }},
      // banks
      {"bank of null array", "qmoe_bank_create", kInvalid,
       [](I& in) { return qmoe_bank_create(nullptr, 2, &in.bank_out); }},
      {"bank of no experts", "qmoe_bank_create", kInvalid,
       [](I& in) { return qmoe_bank_create(&in.packed, 0, &in.bank_out); }},
      {"bank with a null expert", "qmoe_bank_create", kInvalid,
       [](I& in) {
         qmoe_packed_t* experts[2] = {in.packed, nullptr};
         return qmoe_bank_create(experts, 2, &in.bank_out);
       }},
      {"bank of different shapes", "qmoe_bank_create", kInvalid,
       [](I& in) {
         qmoe_packed_t* experts[2] = {in.packed, in.tall};
         return qmoe_bank_create(experts, 2, &in.bank_out);
       }},
      {"bank into null", "qmoe_bank_create", kInvalid,
       [](I& in) { return qmoe_bank_create(&in.packed, 1, nullptr); }},
      {"shape of null bank", "qmoe_bank_shape", kInvalid,
       [](I& in) { return qmoe_bank_shape(nullptr, &in.dims[0], &in.dims[1], &in.dims[2]); }},
      // qmoe_ref_grouped_gemm
      {"null bank", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         const DLTensor x = in.x_t();
         DLTensor y = in.y_t();
         return qmoe_ref_grouped_gemm(nullptr, &x, in.offsets, &y);
       }},
      {"null offsets", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) { return ref_gemm(in, in.x_t(), in.y_t(), nullptr); }},
      {"null x", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         DLTensor y = in.y_t();
         return qmoe_ref_grouped_gemm(in.bank, nullptr, in.offsets, &y);
       }},
      {"null y", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         const DLTensor x = in.x_t();
         return qmoe_ref_grouped_gemm(in.bank, &x, in.offsets, nullptr);
       }},
      {"float32 x", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, with(in.x_t(), [](DLTensor& t) { t.dtype = kF32; }), in.y_t(),
                         in.offsets);
       }},
      {"x of another k", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, with(in.x_t(), [](DLTensor& t) { t.shape = g_shape_x_k64; }), in.y_t(),
                         in.offsets);
       }},
      {"x on CUDA", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, with(in.x_t(), [](DLTensor& t) { t.device.device_type = kDLCUDA; }),
                         in.y_t(), in.offsets);
       }},
      {"float32 y", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, in.x_t(), with(in.y_t(), [](DLTensor& t) { t.dtype = kF32; }),
                         in.offsets);
       }},
      {"bfloat16 y", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, in.x_t(), with(in.y_t(), [](DLTensor& t) { t.dtype = kBF16; }),
                         in.offsets);
       }},
      {"y with a row too many", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, in.x_t(),
                         with(in.y_t(), [](DLTensor& t) { t.shape = g_shape_y_rows; }), in.offsets);
       }},
      {"transposed y", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, in.x_t(),
                         with(in.y_t(), [](DLTensor& t) { t.strides = g_transposed; }), in.offsets);
       }},
      {"1-d y", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) {
         return ref_gemm(in, in.x_t(), with(in.y_t(), [](DLTensor& t) { t.ndim = 1; }), in.offsets);
       }},
      {"decreasing offsets", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) { return ref_gemm(in, in.x_t(), in.y_t(), decreasing); }},
      {"offsets ending before m", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) { return ref_gemm(in, in.x_t(), in.y_t(), short_end); }},
      {"offsets not starting at 0", "qmoe_ref_grouped_gemm", kInvalid,
       [](I& in) { return ref_gemm(in, in.x_t(), in.y_t(), late_start); }},
  };
}

TEST(CAbiErrors, BadInputsGiveTheirStatusAMessageAndWriteNothing) {
  Inputs in;
  const DLTensor w = in.w_t();
  ASSERT_EQ(qmoe_quantize(&w, "int4:g128", QMOE_QUANT_RTN, nullptr, &in.packed), QMOE_STATUS_OK);
  std::vector<float> tall_w = gaussian(2 * Inputs::kN * Inputs::kK, 1.0f, 34);
  int64_t tall_shape[2] = {2 * Inputs::kN, Inputs::kK};
  const DLTensor tall = tensor(tall_w.data(), tall_shape, 2, kF32);
  ASSERT_EQ(qmoe_quantize(&tall, "int4:g128", QMOE_QUANT_RTN, nullptr, &in.tall), QMOE_STATUS_OK);
  qmoe_packed_t* experts[2] = {in.packed, in.packed};
  ASSERT_EQ(qmoe_bank_create(experts, 2, &in.bank), QMOE_STATUS_OK);

  // The valid calls the table mutates succeed (so each case fails for its own reason).
  in.fill_sentinels();
  DLTensor out = in.out_t(), x = in.x_t(), y = in.y_t();
  ASSERT_EQ(qmoe_dequantize(in.packed, &out), QMOE_STATUS_OK);
  ASSERT_EQ(qmoe_ref_grouped_gemm(in.bank, &x, in.offsets, &y), QMOE_STATUS_OK) << last_error();
  qmoe_packed_t* gptq = nullptr;
  const DLTensor calib = in.calib_t();
  ASSERT_EQ(qmoe_quantize(&w, "int4:g128", QMOE_QUANT_GPTQ, &calib, &gptq), QMOE_STATUS_OK);
  qmoe_packed_destroy(gptq);

  const std::string marker = "previous-error-marker";
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.what);
    ASSERT_NE(qmoe_format_canonical(marker.c_str(), nullptr, 0, nullptr), QMOE_STATUS_OK);
    in.fill_sentinels();
    EXPECT_EQ(c.call(in), c.expect);
    const std::string message = last_error();
    const std::string prefix = std::string(c.function) + ": ";
    EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
    EXPECT_GT(message.size(), prefix.size() + 5) << message;
    EXPECT_EQ(message.find(marker), std::string::npos) << message;
    EXPECT_EQ(in.written(), "");
  }
  qmoe_bank_destroy(in.bank);
  qmoe_packed_destroy(in.tall);
  qmoe_packed_destroy(in.packed);
}

TEST(CAbiErrors, LastErrorIsPerThreadAndKeptAcrossSuccessfulCalls) {
  ASSERT_EQ(qmoe_format_canonical("int9:g128", nullptr, 0, nullptr), QMOE_STATUS_INVALID_ARGUMENT);
  const std::string mine = last_error();
  EXPECT_NE(mine.find("int9"), std::string::npos) << mine;
  std::string theirs;
  std::thread other([&] {
    EXPECT_STREQ(qmoe_last_error(), "");  // nothing failed on this thread yet
    (void)qmoe_format_bits_per_weight("int7:g64", 64, nullptr);
    theirs = last_error();
  });
  other.join();
  EXPECT_NE(theirs.find("qmoe_format_bits_per_weight"), std::string::npos) << theirs;
  EXPECT_EQ(last_error(), mine);
  double bits = 0;
  ASSERT_EQ(qmoe_format_bits_per_weight("int4:g128", 128, &bits), QMOE_STATUS_OK);
  EXPECT_EQ(last_error(), mine);
}

// An empty w or calib (a dimension of 0, data null as frameworks leave it) is named as
// empty, not reported as a null pointer or a missing calibration.
TEST(CAbiErrors, EmptyWeightsOrCalibrationAreNamedAsEmpty) {
  std::vector<float> w = gaussian(32 * 128, 1.0f, 41);
  int64_t w_shape[2] = {32, 128}, no_rows[2] = {0, 128}, no_cols[2] = {32, 0};
  qmoe_packed_t* packed = nullptr;
  for (int64_t* shape : {no_rows, no_cols}) {
    const DLTensor empty = tensor(nullptr, shape, 2, kF32);
    EXPECT_EQ(qmoe_quantize(&empty, "int4:g128", QMOE_QUANT_RTN, nullptr, &packed),
              QMOE_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("w is empty"), std::string::npos) << last_error();
  }
  const DLTensor wt = tensor(w.data(), w_shape, 2, kF32);
  const DLTensor calib = tensor(nullptr, no_rows, 2, kF32);
  EXPECT_EQ(qmoe_quantize(&wt, "int4:g128", QMOE_QUANT_GPTQ, &calib, &packed),
            QMOE_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("calib has no rows"), std::string::npos) << last_error();
  EXPECT_EQ(packed, nullptr);
}

TEST(CAbiOptions, InitWritesTheDefaultsAndTheStructSize) {
  qmoe_grouped_gemm_options_t o;
  std::memset(&o, 0x5A, sizeof(o));
  qmoe_grouped_gemm_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(qmoe_grouped_gemm_options_t));
  EXPECT_EQ(o.kernel, QMOE_KERNEL_AUTO);
  EXPECT_EQ(o.decode_max_tokens, QMOE_DEFAULT_DECODE_MAX_TOKENS);
  EXPECT_EQ(o.integer_decode, QMOE_INTEGER_DECODE_AUTO);
  EXPECT_EQ(o.offsets_precede_previous_kernel, 0);
  EXPECT_EQ(o.epilogue, QMOE_EPILOGUE_NONE);
  EXPECT_EQ(o.tile_kernel, QMOE_TILE_KERNEL_AUTO);
  // The C++ API's defaults, field by field.
  const qmoe::GroupedGemmArgs cpp;
  EXPECT_EQ(static_cast<int>(cpp.kernel), static_cast<int>(o.kernel));
  EXPECT_EQ(cpp.decode_max_tokens, o.decode_max_tokens);
  EXPECT_EQ(static_cast<int>(cpp.integer_decode), static_cast<int>(o.integer_decode));
  EXPECT_EQ(cpp.offsets_precede_previous_kernel, o.offsets_precede_previous_kernel != 0);
  EXPECT_EQ(static_cast<int>(cpp.epilogue), static_cast<int>(o.epilogue));
  EXPECT_EQ(static_cast<int>(cpp.tile_kernel), static_cast<int>(o.tile_kernel));
  static_assert(static_cast<int>(qmoe::TileKernel::kMmaSync) == QMOE_TILE_KERNEL_MMA_SYNC &&
                    static_cast<int>(qmoe::TileKernel::kWgmma) == QMOE_TILE_KERNEL_WGMMA,
                "the C and C++ tile kernel values agree");
  static_assert(
      static_cast<int>(qmoe::Epilogue::kSiluMulInterleaved) == QMOE_EPILOGUE_SILU_MUL_INTERLEAVED,
      "the C and C++ epilogue values agree");
  qmoe_grouped_gemm_options_init(nullptr);  // a no-op
}

TEST(CAbiGpu, WithoutADeviceEveryGpuCallIsUnsupported) {
  if (qmoe::gpu_available()) GTEST_SKIP() << "a CUDA device is visible";
  std::vector<float> w = gaussian(32 * 128, 1.0f, 40);
  int64_t w_shape[2] = {32, 128};
  const DLTensor wt = tensor(w.data(), w_shape, 2, kF32);
  qmoe_packed_t* packed = nullptr;
  ASSERT_EQ(qmoe_quantize(&wt, "int4:g128", QMOE_QUANT_RTN, nullptr, &packed), QMOE_STATUS_OK);
  qmoe_bank_t* bank = nullptr;
  ASSERT_EQ(qmoe_bank_create(&packed, 1, &bank), QMOE_STATUS_OK);
  qmoe_packed_destroy(packed);

  char sentinel = 0;
  auto* device_bank = reinterpret_cast<qmoe_device_bank_t*>(&sentinel);
  EXPECT_EQ(qmoe_device_bank_upload(bank, &device_bank), QMOE_STATUS_UNSUPPORTED);
  EXPECT_EQ(device_bank, reinterpret_cast<qmoe_device_bank_t*>(&sentinel));
  EXPECT_NE(last_error().find("CUDA"), std::string::npos) << last_error();

  // Well-formed tensors (the device pointers are never dereferenced) and a size query.
  int64_t x_shape[2] = {4, 128}, y_shape[2] = {4, 32}, o_shape[1] = {2};
  alignas(16) static uint16_t x[4 * 128], y[4 * 32];
  static int32_t offsets[2] = {0, 4};
  const DLTensor xt = tensor(x, x_shape, 2, kBF16, DLDevice{kDLCUDA, 0});
  DLTensor yt = tensor(y, y_shape, 2, kBF16, DLDevice{kDLCUDA, 0});
  const DLTensor ot = tensor(offsets, o_shape, 1, kI32, DLDevice{kDLCUDA, 0});
  size_t bytes = 999;
  EXPECT_EQ(qmoe_grouped_gemm(nullptr, &xt, &ot, &yt, QMOE_KERNEL_AUTO,
                              QMOE_DEFAULT_DECODE_MAX_TOKENS, nullptr, &bytes, nullptr),
            QMOE_STATUS_UNSUPPORTED);
  EXPECT_EQ(bytes, 999u);
  EXPECT_NE(last_error().find("qmoe_grouped_gemm: "), std::string::npos) << last_error();
  qmoe_grouped_gemm_options_t options;
  qmoe_grouped_gemm_options_init(&options);
  EXPECT_EQ(qmoe_grouped_gemm_ex(nullptr, &xt, &ot, &yt, &options, nullptr, &bytes, nullptr),
            QMOE_STATUS_UNSUPPORTED);
  EXPECT_EQ(bytes, 999u);
  EXPECT_NE(last_error().find("qmoe_grouped_gemm_ex: "), std::string::npos) << last_error();
  alignas(16) static unsigned char ws[256];
  EXPECT_EQ(qmoe_prepare_workspace(ws, sizeof(ws), nullptr), QMOE_STATUS_UNSUPPORTED);
  EXPECT_NE(last_error().find("qmoe_prepare_workspace: "), std::string::npos) << last_error();
  qmoe_bank_destroy(bank);
}

}  // namespace
