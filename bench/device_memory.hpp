// bench/device_memory.hpp — owning device buffers and on-device random fills. Banks of
// tens of GB are generated here on the GPU: quantizing them on the CPU would take minutes,
// and the timing does not depend on the values as long as they are valid and finite.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "qmoe/status.hpp"

namespace qmoe::bench {

/// Move-only owner of one cudaMalloc allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  /// Frees any previous allocation, then allocates `bytes` (> 0).
  Status allocate(int64_t bytes);
  /// Keeps the allocation if it already holds `bytes`, else reallocates.
  Status reserve(int64_t bytes);
  void reset();

  uint8_t* data() const { return static_cast<uint8_t*>(ptr_); }
  int64_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
};

/// What a filled region holds. Every kind yields valid values for its role.
enum class FillKind : uint8_t {
  kCodes,         ///< uniformly random bytes: every byte pattern is a valid packed code
  kZeros,         ///< uint8 zero points, each < 2^bits
  kFp16Positive,  ///< fp16, positive, finite, in [2^-10, 2^-6): scales, fp16 dense weights
  kBf16,          ///< bf16 values, random sign, |v| in [2^-7, 2^-3): dense weights, activations
};

/// Fills [p, p + bytes) on `stream` with values of `kind` from a counter hash of `seed`.
/// p must be 16-byte aligned and bytes a multiple of 16. `bits` is used by kZeros only.
Status fill_random(void* p, int64_t bytes, FillKind kind, int bits, uint64_t seed,
                   cudaStream_t stream);

/// Rounds up to a multiple of `align` (a power of two or not).
constexpr int64_t round_up(int64_t v, int64_t align) {
  return (v + align - 1) / align * align;
}

}  // namespace qmoe::bench
