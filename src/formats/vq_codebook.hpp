// The fixed codebook of the vector format vq2 (docs/formats.md §1), shared by the quantizers
// and the dispatcher: 16 magnitude vectors of 4 fp16 values, entry m's dimension d at 4m + d.
// The table itself is spec data (docs/formats/vq2_codebook.inc); the CPU reference includes it
// on its own.
#pragma once
#include <cstdint>

namespace qmoe::detail {

inline constexpr int kVq2Magnitudes = 16;
inline constexpr int kVq2MagnitudeBits = 4;  ///< a code's low bits; bit 4 + d is d's sign
inline constexpr uint16_t kVq2Codebook[kVq2Magnitudes * 4] = {
#include "../../docs/formats/vq2_codebook.inc"
};

}  // namespace qmoe::detail
