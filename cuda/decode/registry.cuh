// cuda/decode/registry.cuh — the one place that maps an expert's descriptor to its device
// decoder. Decoder ids are the bit positions of DeviceBankView::format_mask.
// Adding a format: its ids, and one entry each in decoder_id, decoder_tile_bytes,
// decoder_quant_bytes, with_decoder.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/decode/dense.cuh"
#include "cuda/decode/int.cuh"
#include "cuda/decode/lut.cuh"
#include "cuda/decode/trellis.cuh"
#include "cuda/decode/vector.cuh"
#include "qmoe/packed.hpp"

namespace qmoe::dev {

/// Ids: 0 dense bf16, 1 dense fp16, then the int decoders, bits-major (2, 3, 4, 8), groups
/// per tile minor (1, 2, 4), then the LUT decoders (nuq2, nuq3, nuq4), the vector ones
/// (vq1.5, vq2, vq2.5, vq3) and the trellis ones (tcq2, tcq3, tcq4, tcq1.5, tcq2.5, tcq3.5).
enum DecoderId : int {
  kDecoderDenseBF16 = 0,
  kDecoderDenseFP16 = 1,
  kFirstIntDecoder = 2,
  kFirstLutDecoder = kFirstIntDecoder + 4 * 3,
  kFirstVectorDecoder = kFirstLutDecoder + 3,
  kDecoderVq2 = kFirstVectorDecoder + 1,
  kFirstTrellisDecoder = kFirstVectorDecoder + 4,
  kNumDecoders = kFirstTrellisDecoder + 6,
};
static_assert(kNumDecoders <= 32, "decoder ids are the bits of a 32-bit format mask");

/// Code bits a step and values a state of trellis decoder i = id - kFirstTrellisDecoder (tcq2,
/// tcq3, tcq4, then tcq1.5, tcq2.5, tcq3.5). Selects, not tables (see decoder_tile_bytes).
__host__ __device__ constexpr int trellis_step_bits(int i) {
  return i < 3 ? 2 + i : 2 * (i - 3) + 3;
}
__host__ __device__ constexpr int trellis_values(int i) {
  return i < 3 ? 1 : 2;
}

/// Decoder of an expert, or -1 for a descriptor no decoder handles.
__host__ __device__ inline int decoder_id(const ExpertDesc& d) {
  if (d.kind == static_cast<uint8_t>(FormatKind::kDense) && d.bits == 16) {
    if (d.dense_dtype == static_cast<uint8_t>(DType::kBF16)) return kDecoderDenseBF16;
    if (d.dense_dtype == static_cast<uint8_t>(DType::kFP16)) return kDecoderDenseFP16;
    return -1;
  }
  if (d.kind == static_cast<uint8_t>(FormatKind::kLut))
    return d.bits >= 2 && d.bits <= 4 ? kFirstLutDecoder + d.bits - 2 : -1;
  if (d.kind == static_cast<uint8_t>(FormatKind::kVector))
    return (d.bits == 6 || d.bits == 8 || d.bits == 10 || d.bits == 12) && d.groups_pad >= 1 &&
                   d.group_size == kTileCols
               ? kFirstVectorDecoder + (d.bits - 6) / 2
               : -1;
  if (d.kind == static_cast<uint8_t>(FormatKind::kTrellis)) {
    // tcq3 and tcq1.5 both take 3 bits a step: the tile size tells one value a state (256 b
    // bytes) from two (128 b).
    if (d.groups_pad < 1 || d.group_size != kTileCols) return -1;
    const int values = d.tile_bytes == 256 * d.bits ? 1 : d.tile_bytes == 128 * d.bits ? 2 : 0;
    if (values == 1 && d.bits >= 2 && d.bits <= 4) return kFirstTrellisDecoder + d.bits - 2;
    if (values == 2 && (d.bits == 3 || d.bits == 5 || d.bits == 7))
      return kFirstTrellisDecoder + 3 + (d.bits - 3) / 2;
    return -1;
  }
  if (d.kind != static_cast<uint8_t>(FormatKind::kInt)) return -1;
  const int bits_index = d.bits == 2 ? 0 : d.bits == 3 ? 1 : d.bits == 4 ? 2 : d.bits == 8 ? 3 : -1;
  const int gpt = groups_per_tile(d);
  if (bits_index < 0 || gpt == 0) return -1;
  return kFirstIntDecoder + 3 * bits_index + (gpt == 1 ? 0 : gpt == 2 ? 1 : 2);
}

/// Bytes of one 16x128 code tile of decoder id (what ExpertDesc::tile_bytes says); 0 if unknown.
/// Selects, not a table: a run-time-indexed constant array would live in local memory.
__host__ __device__ constexpr int decoder_tile_bytes(int id) {
  if (id == kDecoderDenseBF16) return DenseDecoder<__nv_bfloat16>::kTileBytes;
  if (id == kDecoderDenseFP16) return DenseDecoder<__half>::kTileBytes;
  if (id >= kFirstTrellisDecoder && id < kNumDecoders)  // 16 rows of 16 b / V bytes
    return 256 * trellis_step_bits(id - kFirstTrellisDecoder) /
           trellis_values(id - kFirstTrellisDecoder);
  if (id >= kFirstVectorDecoder && id < kFirstTrellisDecoder)  // 64 bytes per code bit
    return id == kFirstVectorDecoder       ? VectorDecoder<6>::kTileBytes
           : id == kDecoderVq2             ? VectorDecoder<8>::kTileBytes
           : id == kFirstVectorDecoder + 2 ? VectorDecoder<10>::kTileBytes
                                           : VectorDecoder<12>::kTileBytes;
  if (id >= kFirstLutDecoder && id < kFirstVectorDecoder)  // the int<b> code tiles
    return id == kFirstLutDecoder       ? LutDecoder<2>::kTileBytes
           : id == kFirstLutDecoder + 1 ? LutDecoder<3>::kTileBytes
                                        : LutDecoder<4>::kTileBytes;
  if (id < kFirstIntDecoder || id >= kFirstLutDecoder) return 0;
  const int bits_index = (id - kFirstIntDecoder) / 3;
  return bits_index == 0   ? IntDecoder<2, 1>::kTileBytes
         : bits_index == 1 ? IntDecoder<3, 1>::kTileBytes
         : bits_index == 2 ? IntDecoder<4, 1>::kTileBytes
                           : IntDecoder<8, 1>::kTileBytes;
}

/// Decoders with the integer-mma decode (IntDecoder::kImmaMap >= 0: every int format, any
/// group), per bit width.
constexpr uint32_t kImmaInt2Mask = 0x7u << kFirstIntDecoder;
constexpr uint32_t kImmaInt3Mask = 0x7u << (kFirstIntDecoder + 3);
constexpr uint32_t kImmaInt4Mask = 0x7u << (kFirstIntDecoder + 6);
constexpr uint32_t kImmaInt8Mask = 0x7u << (kFirstIntDecoder + 9);
static_assert(IntDecoder<2, 1>::kImmaMap >= 0 && IntDecoder<3, 1>::kImmaMap >= 0 &&
                  IntDecoder<4, 1>::kImmaMap >= 0 && IntDecoder<8, 1>::kImmaMap >= 0,
              "kImmaInt{2,3,4,8}Mask name the decoders with an integer-mma decode");

/// The trellis decoders: the decode kernel (its formed instantiation) and the tile kernels (their
/// trellis instantiations) run them, multiplying the rotated x (x_rotate.cuh). The wgmma
/// kernel's trellis launch takes them alone, beside a launch for the bank's other experts
/// (tile_launches, kernel_split.cuh; grouped_gemm.cu).
constexpr uint32_t kTrellisDecoderMask = 0x3Fu << kFirstTrellisDecoder;
/// Decoders that form their weights from tables (LUT, vector) or multiply the rotated x
/// (trellis): with_decoder<kFormed>.
constexpr uint32_t kFormedDecoderMask = (0x7Fu << kFirstLutDecoder) | kTrellisDecoderMask;
static_assert(kNumDecoders == kFirstLutDecoder + 13, "kFormedDecoderMask: nuq2/3/4, vq* and tcq*");
/// Whether a kernel instantiation with (formed) or without the formed-weight decoders runs
/// decoder id (with_decoder<kFormed>); `trellis`: the kernel runs the trellis decoders (the
/// decode kernel, and the tile kernels' trellis instantiations).
__host__ __device__ constexpr bool holds_decoder(bool formed, int id, bool trellis = false) {
  if (((kTrellisDecoderMask >> id) & 1u) != 0) return formed && trellis;
  return formed || ((kFormedDecoderMask >> id) & 1u) == 0;
}

/// Bytes of the parameter block the decode kernel stages with each code tile of decoder id
/// (IntDecoder::kQuantBytes, LutDecoder::kQuantBytes; the vector formats int2:g128's, their
/// scales being laid out alike; none for dense tiles); 0 if unknown.
__host__ __device__ constexpr int decoder_quant_bytes(int id) {
  if (id >= kFirstTrellisDecoder && id < kNumDecoders) return TrellisDecoder<2, 1>::kQuantBytes;
  if (id >= kFirstVectorDecoder && id < kFirstTrellisDecoder) return VectorDecoder<8>::kQuantBytes;
  if (id >= kFirstLutDecoder && id < kFirstVectorDecoder)  // a strip's 16 tables
    return id == kFirstLutDecoder       ? LutDecoder<2>::kQuantBytes
           : id == kFirstLutDecoder + 1 ? LutDecoder<3>::kQuantBytes
                                        : LutDecoder<4>::kQuantBytes;
  if (id < kFirstIntDecoder || id >= kFirstLutDecoder) return 0;
  const int gpt_index = (id - kFirstIntDecoder) % 3;
  return gpt_index == 0   ? IntDecoder<2, 1>::kQuantBytes
         : gpt_index == 1 ? IntDecoder<2, 2>::kQuantBytes
                          : IntDecoder<2, 4>::kQuantBytes;
}
static_assert(IntDecoder<8, 4>::kQuantBytes == IntDecoder<2, 4>::kQuantBytes &&
                  DenseDecoder<__nv_bfloat16>::kQuantBytes == 0 &&
                  VectorDecoder<6>::kQuantBytes == IntDecoder<2, 1>::kQuantBytes &&
                  VectorDecoder<12>::kQuantBytes == IntDecoder<2, 1>::kQuantBytes &&
                  TrellisDecoder<7, 2>::kQuantBytes == IntDecoder<2, 1>::kQuantBytes,
              "parameter blocks depend on the groups per tile alone");

/// What the decode kernel stages per strip and k-tile of decoder id: code tile and parameter
/// block (grouped_gemv.cuh ring_strips).
__host__ __device__ constexpr int decoder_strip_bytes(int id) {
  return decoder_tile_bytes(id) + decoder_quant_bytes(id);
}

/// The largest (largest = true) or smallest bytes(id) over the decoders in a format mask (bit
/// i = decoder i); 0 for none.
template <int (*Bytes)(int)>
constexpr int mask_bytes(uint32_t format_mask, bool largest) {
  int bytes = 0;
  for (int id = 0; id < kNumDecoders; ++id) {
    if (((format_mask >> id) & 1u) == 0) continue;
    const int b = Bytes(id);
    if (bytes == 0 || (largest ? b > bytes : b < bytes)) bytes = b;
  }
  return bytes;
}
/// The largest code tile of the decoders in a format mask; 0 for none.
constexpr int max_tile_bytes(uint32_t format_mask) {
  return mask_bytes<decoder_tile_bytes>(format_mask, true);
}

/// Calls f(Decoder{}) with the decoder of id; nothing for an unknown id. The id is uniform
/// per work item, so the switch never diverges inside a warp. One flat switch: each jump on
/// the way to a decoder's code lands on cold code once per work item, and a short launch runs
/// one or two items per block. ncu (Qwen3 down projection at one token per expert, decode
/// kernel): the nested switch this replaced (bits, then groups per tile) reached int4:g128's
/// code in four jumps, its three stops 8 % of the stall samples ("no instruction"); ptxas makes
/// this one a compare tree, two jumps. A/B (bench/results/s13-2026-12-02/flat-dispatch): decode
/// at T = 1 0.98-0.99x on the small shapes, the tile kernels on Qwen3 at T = 1024-4096 0.90-0.97x.
/// kFormed: with the decoders that form their weights from tables (kFormedDecoderMask: LUT,
/// vector). A kernel compiled without them (kFormed false, the launcher's choice for banks
/// without such experts) traps on their ids. Why: their table registers make ptxas allocate the
/// whole kernel differently, and the int formats ran ~2 % slower in the kernels that held them
/// (bench/results/s37-2026-12-05/perf/ab_vq.txt; in the decode kernel, ptxas sm_90a: <bf16, 4, 1>
/// spill loads 28 -> 212 bytes). They sit in a second switch, after the int decoders' one.
/// kTrellis: with the trellis decoders too (the decode kernel's formed instantiation and the tile
/// kernels' trellis ones; they need the rotated x, which only those take). Any kernel
/// traps on a decoder id it does not hold: a silent skip would leave its outputs unwritten.
template <bool kFormed = true, bool kTrellis = false, class F>
__device__ __forceinline__ void with_decoder(int id, F&& f) {
  switch (id) {
    case kDecoderDenseBF16:
      return f(DenseDecoder<__nv_bfloat16>{});
    case kDecoderDenseFP16:
      return f(DenseDecoder<__half>{});
    case kFirstIntDecoder + 0:
      return f(IntDecoder<2, 1>{});
    case kFirstIntDecoder + 1:
      return f(IntDecoder<2, 2>{});
    case kFirstIntDecoder + 2:
      return f(IntDecoder<2, 4>{});
    case kFirstIntDecoder + 3:
      return f(IntDecoder<3, 1>{});
    case kFirstIntDecoder + 4:
      return f(IntDecoder<3, 2>{});
    case kFirstIntDecoder + 5:
      return f(IntDecoder<3, 4>{});
    case kFirstIntDecoder + 6:
      return f(IntDecoder<4, 1>{});
    case kFirstIntDecoder + 7:
      return f(IntDecoder<4, 2>{});
    case kFirstIntDecoder + 8:
      return f(IntDecoder<4, 4>{});
    case kFirstIntDecoder + 9:
      return f(IntDecoder<8, 1>{});
    case kFirstIntDecoder + 10:
      return f(IntDecoder<8, 2>{});
    case kFirstIntDecoder + 11:
      return f(IntDecoder<8, 4>{});
    default:
      break;
  }
  if constexpr (kFormed) {
    switch (id) {
      case kFirstLutDecoder + 0:
        return f(LutDecoder<2>{});
      case kFirstLutDecoder + 1:
        return f(LutDecoder<3>{});
      case kFirstLutDecoder + 2:
        return f(LutDecoder<4>{});
      case kFirstVectorDecoder + 0:
        return f(VectorDecoder<6>{});
      case kFirstVectorDecoder + 1:
        return f(VectorDecoder<8>{});
      case kFirstVectorDecoder + 2:
        return f(VectorDecoder<10>{});
      case kFirstVectorDecoder + 3:
        return f(VectorDecoder<12>{});
      default:
        break;
    }
  }
  if constexpr (kFormed && kTrellis) {
    switch (id) {
      case kFirstTrellisDecoder + 0:
        return f(TrellisDecoder<2, 1>{});
      case kFirstTrellisDecoder + 1:
        return f(TrellisDecoder<3, 1>{});
      case kFirstTrellisDecoder + 2:
        return f(TrellisDecoder<4, 1>{});
      case kFirstTrellisDecoder + 3:
        return f(TrellisDecoder<3, 2>{});
      case kFirstTrellisDecoder + 4:
        return f(TrellisDecoder<5, 2>{});
      case kFirstTrellisDecoder + 5:
        return f(TrellisDecoder<7, 2>{});
      default:
        return;
    }
  }
  if (id >= kFirstLutDecoder && id < kNumDecoders) __trap();
}
static_assert(kNumDecoders == kFirstTrellisDecoder + 6 &&
                  kFirstTrellisDecoder == kFirstVectorDecoder + 4 &&
                  kFirstVectorDecoder == kFirstLutDecoder + 3 &&
                  kFirstLutDecoder == kFirstIntDecoder + 12,
              "with_decoder has a case per decoder id");

/// Descriptor e of a device table, every field read by one of five independent 8-byte loads.
/// Why: read field by field as the code needs them (decoder_id's kind, bits, groups_pad,
/// group_size; expert_params' zeros_offset only where not symmetric), ptxas issued each load
/// behind the branch on the previous field: four dependent global loads per expert in the
/// schedule build and two per work item (SASS of the decode kernel), each a memory latency
/// that every warp of the block waits out before its first weight copy.
__device__ __forceinline__ ExpertDesc load_desc(const ExpertDesc* descs, int e) {
  static_assert(sizeof(ExpertDesc) == 40 && alignof(ExpertDesc) == 8, "five 8-byte words");
  const auto* src = reinterpret_cast<const unsigned long long*>(descs + e);
  unsigned long long words[5];
#pragma unroll
  for (int i = 0; i < 5; ++i) words[i] = __ldg(src + i);
  return bit_cast<ExpertDesc>(words);
}

/// Calls f(Decoder{}, params) for an expert's descriptor: its decoder and sections. The caller
/// reads the descriptor: load_desc where an item is short (the decode kernel: the item's
/// loads wait out one memory latency instead of two), descs[e] in the tile kernels (the
/// fields loaded as used: with load_desc ptxas spilled in the 128-token wgmma kernel, and
/// Qwen3 int4 at T = 4096 ran 1.06x the time on the H200).
/// With `id` = decoder_id(desc) known already (kept by the schedule build), the switch need
/// not wait for the descriptor's loads; only the sections do.
template <bool kFormed = true, bool kTrellis = false, class F>
__device__ __forceinline__ void with_expert_decoder(const uint8_t* blob, const ExpertDesc& desc,
                                                    int id, F&& f) {
  const ExpertParams ep = expert_params(blob, desc);
  with_decoder<kFormed, kTrellis>(id, [&](auto decoder) { f(decoder, ep); });
}
template <bool kFormed = true, bool kTrellis = false, class F>
__device__ __forceinline__ void with_expert_decoder(const uint8_t* blob, const ExpertDesc& desc,
                                                    F&& f) {
  with_expert_decoder<kFormed, kTrellis>(blob, desc, decoder_id(desc), static_cast<F&&>(f));
}

}  // namespace qmoe::dev
