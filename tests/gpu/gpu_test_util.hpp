// Helpers the GPU suites share: checked CUDA calls, an owning device buffer, and the check of
// a kernel's 16-bit output against the float64 CPU reference.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "qmoe/format.hpp"
#include "qmoe/numeric.hpp"

/// A failed CUDA runtime call is a fatal test failure naming the call.
#define CUDA_CHECK(expr)                                         \
  do {                                                           \
    const cudaError_t cuda_check_err_ = (expr);                  \
    ASSERT_EQ(cuda_check_err_, cudaSuccess)                      \
        << #expr << ": " << cudaGetErrorString(cuda_check_err_); \
  } while (0)

namespace qmoe::gpu_test {

constexpr double kMaxNmse = 1e-5;     // docs: bf16 activations, fp32 accumulation vs float64
constexpr uint16_t kPoison = 0xFFFF;  // NaN in bf16 and in fp16

/// Owning device allocation (tests only).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }
  cudaError_t alloc(size_t bytes) {
    bytes_ = bytes;
    return cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// A stream the test owns, destroyed with it.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  // Non-blocking: nothing orders it with the legacy default stream, so work the library
  // enqueued elsewhere would not be covered by synchronising this one.
  cudaError_t create() { return cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// How far a kernel output is from the reference.
struct OutputError {
  double nmse = 0;         ///< the worst expert's sum (y - ref)^2 / sum ref^2 over its rows
  int worst_expert = -1;   ///< that expert (-1: no expert has rows)
  int64_t non_finite = 0;  ///< elements of the reference's rows that are NaN or Inf (poison)
  int64_t touched = 0;     ///< elements past the reference's that no longer hold kPoison

  /// NaN never passes: a NaN nmse fails the comparison.
  bool ok() const { return non_finite == 0 && touched == 0 && nmse <= kMaxNmse; }
};

/// y (activation type act, poisoned before the run, n columns) against ref, which covers y's
/// first ref.size() elements: rows [0, offsets[E]). The NMSE is taken per expert (its rows
/// offsets[e] .. offsets[e+1]) and the worst one reported, so a small expert's error cannot
/// hide in a large one's sum. The elements after ref's must still hold kPoison.
inline OutputError output_error(DType act, const std::vector<uint16_t>& y,
                                const std::vector<double>& ref, int64_t n,
                                const std::vector<int32_t>& offsets) {
  OutputError e;
  for (size_t ex = 0; ex + 1 < offsets.size(); ++ex) {
    double err2 = 0, ref2 = 0;
    for (size_t i = static_cast<size_t>(offsets[ex] * n);
         i < static_cast<size_t>(offsets[ex + 1] * n); ++i) {
      const double v = act == DType::kBF16 ? bf16_to_float(y[i]) : fp16_to_float(y[i]);
      if (!std::isfinite(v)) ++e.non_finite;
      err2 += (v - ref[i]) * (v - ref[i]);
      ref2 += ref[i] * ref[i];
    }
    if (offsets[ex + 1] == offsets[ex]) continue;
    const double nmse = ref2 > 0 ? err2 / ref2 : err2;
    // A NaN nmse must win the comparison (std::max would drop it).
    if (e.worst_expert < 0 || !(nmse <= e.nmse)) {
      e.nmse = nmse;
      e.worst_expert = static_cast<int>(ex);
    }
  }
  for (size_t i = ref.size(); i < y.size(); ++i)
    if (y[i] != kPoison) ++e.touched;
  return e;
}

/// The values Epilogue::kSiluMulInterleaved is checked against: SiLU(g) * u in float64 for the
/// product gate_up [rows, n] of a bank whose rows interleave gate and up by 8 (column 16 s + j
/// the gate and 16 s + 8 + j the up of output 8 s + j), [rows, n / 2]. Where `rounded_product`
/// (a call with a tile-kernel launch: its product goes through the workspace in the activation
/// type, docs/dispatch.md §8) g and u are first rounded to act. Unrounded otherwise, as every
/// kernel output is checked: the rounded h of ref::silu_and_mul_interleaved would count the
/// reference's own rounding as the kernel's error (two bf16 roundings alone reach an NMSE of
/// ~1e-5).
inline std::vector<double> gated_values(const std::vector<double>& gate_up, int64_t rows, int64_t n,
                                        DType act, bool rounded_product) {
  auto in_act = [&](double v) {
    if (!rounded_product) return v;
    const float f = static_cast<float>(v);
    return static_cast<double>(act == DType::kBF16 ? bf16_to_float(float_to_bf16(f))
                                                   : fp16_to_float(float_to_fp16(f)));
  };
  std::vector<double> h(static_cast<size_t>(rows * (n / 2)));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n / 2; ++c) {
      const int64_t gate = (c / 8) * 16 + c % 8;
      const double g = in_act(gate_up[static_cast<size_t>(r * n + gate)]);
      const double u = in_act(gate_up[static_cast<size_t>(r * n + gate + 8)]);
      h[static_cast<size_t>(r * (n / 2) + c)] = g / (1.0 + std::exp(-g)) * u;
    }
  return h;
}

}  // namespace qmoe::gpu_test
