// Device buffers and the counter-hash fill kernel (no curand: a hash of the element index
// is reproducible, needs no state and writes at full bandwidth).
#include "bench/check.hpp"
#include "bench/device_memory.hpp"

namespace qmoe::bench {

namespace {

// splitmix64 finaliser: a bijective mix whose outputs pass BigCrush for counter inputs.
__device__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Two 16-bit values in one 32-bit word, each built from its half of the hash.
__device__ uint32_t pack_halves(uint32_t lo, uint32_t hi) {
  return (lo & 0xffffu) | (hi << 16);
}

__device__ uint32_t fp16_positive(uint32_t r) {
  // Exponent field 5..8 is 2^-10..2^-7 times a random mantissa in [1, 2): small enough that
  // (q - z) * s * x summed over K = 14336 stays far from bf16 overflow, never zero or subnormal.
  return ((5u + (r & 3u)) << 10) | ((r >> 2) & 0x3ffu);
}

__device__ uint32_t bf16_value(uint32_t r) {
  // Exponent field 120..123 is 2^-7..2^-4 times a mantissa in [1, 2), random sign.
  return ((r >> 15) & 1u) << 15 | ((120u + ((r >> 7) & 3u)) << 7) | (r & 0x7fu);
}

__device__ uint32_t make_word(uint32_t r, FillKind kind, uint32_t zero_mask) {
  switch (kind) {
    case FillKind::kCodes:
      return r;
    case FillKind::kZeros:
      return r & zero_mask;
    case FillKind::kFp16Positive:
      return pack_halves(fp16_positive(r), fp16_positive(r >> 16));
    case FillKind::kBf16:
      return pack_halves(bf16_value(r), bf16_value(r >> 16));
  }
  return 0;
}

__global__ void fill_kernel(uint4* p, int64_t vectors, FillKind kind, uint32_t zero_mask,
                            uint64_t seed) {
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < vectors; i += stride) {
    const uint64_t a = mix64(seed + 2 * static_cast<uint64_t>(i));
    const uint64_t b = mix64(seed + 2 * static_cast<uint64_t>(i) + 1);
    uint4 v;
    v.x = make_word(static_cast<uint32_t>(a), kind, zero_mask);
    v.y = make_word(static_cast<uint32_t>(a >> 32), kind, zero_mask);
    v.z = make_word(static_cast<uint32_t>(b), kind, zero_mask);
    v.w = make_word(static_cast<uint32_t>(b >> 32), kind, zero_mask);
    p[i] = v;
  }
}

// Grid-stride launch: enough blocks to fill every SM several times over, no more.
constexpr int kFillThreads = 256;
constexpr int kFillMaxBlocks = 4096;

}  // namespace

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

Status DeviceBuffer::allocate(int64_t bytes) {
  reset();
  if (bytes <= 0) return invalid_argument("DeviceBuffer::allocate: bytes must be positive");
  QMOE_CUDA_TRY(cudaMalloc(&ptr_, static_cast<size_t>(bytes)));
  bytes_ = bytes;
  return Status::ok();
}

Status DeviceBuffer::reserve(int64_t bytes) {
  if (ptr_ != nullptr && bytes_ >= bytes) return Status::ok();
  return allocate(bytes);
}

void DeviceBuffer::reset() {
  // Errors from cudaFree here would come from an earlier failure already reported.
  if (ptr_ != nullptr) (void)cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

Status fill_random(void* p, int64_t bytes, FillKind kind, int bits, uint64_t seed,
                   cudaStream_t stream) {
  if (reinterpret_cast<uintptr_t>(p) % 16 != 0 || bytes % 16 != 0 || bytes < 0)
    return invalid_argument("fill_random: pointer and size must be multiples of 16 bytes");
  if (bytes == 0) return Status::ok();
  if (kind == FillKind::kZeros && (bits < 1 || bits > 8))
    return invalid_argument("fill_random: zero points need 1..8 bits");
  const uint32_t byte_mask = kind == FillKind::kZeros ? (1u << bits) - 1u : 0xffu;
  const uint32_t zero_mask = byte_mask * 0x01010101u;
  const int64_t vectors = bytes / 16;
  const int64_t blocks_needed = (vectors + kFillThreads - 1) / kFillThreads;
  const int blocks =
      static_cast<int>(blocks_needed < kFillMaxBlocks ? blocks_needed : kFillMaxBlocks);
  // Scaling by the golden ratio puts regions with nearby seeds far apart in counter space.
  fill_kernel<<<blocks, kFillThreads, 0, stream>>>(static_cast<uint4*>(p), vectors, kind, zero_mask,
                                                   seed * 0x9e3779b97f4a7c15ull);
  QMOE_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace qmoe::bench
