// The fixed codebooks of the vector formats (docs/formats.md §1), shared by the quantizers and
// the dispatcher: 2^(bits - 4) magnitude vectors of 4 fp16 values (entry m's dimension d at
// 4m + d) for a format of `bits` code bits a vector. The tables themselves are spec data
// (docs/formats/vq*_codebook.inc); the CPU reference includes them on its own.
#pragma once
#include <cstdint>

namespace qmoe::detail {

inline constexpr uint16_t kVq15Codebook[4 * 4] = {
#include "../../docs/formats/vq1.5_codebook.inc"
};
inline constexpr uint16_t kVq2Codebook[16 * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};
inline constexpr uint16_t kVq25Codebook[64 * 4] = {
#include "../../docs/formats/vq2.5_codebook.inc"
};
inline constexpr uint16_t kVq3Codebook[256 * 4] = {
#include "../../docs/formats/vq3_codebook.inc"
};

/// A code's top 4 bits are its signs (bit bits - 4 + d: dimension d negative), the rest the
/// magnitude index.
inline constexpr int kVectorSignBits = 4;

/// The magnitude table of a vector format with `bits` code bits (6, 8, 10, 12), or null.
inline const uint16_t* vq_codebook(int bits) {
  return bits == 6    ? kVq15Codebook
         : bits == 8  ? kVq2Codebook
         : bits == 10 ? kVq25Codebook
         : bits == 12 ? kVq3Codebook
                      : nullptr;
}

}  // namespace qmoe::detail
