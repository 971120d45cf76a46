// cuda/decode/registry.cuh — the one place that maps an expert's descriptor to its device
// decoder. Decoder ids are the bit positions of DeviceBankView::format_mask.
// Adding a format: its ids, and one entry each in decoder_id, decoder_tile_bytes, with_decoder.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/decode/dense.cuh"
#include "cuda/decode/int.cuh"
#include "qmoe/packed.hpp"

namespace qmoe::dev {

/// Ids: 0 dense bf16, 1 dense fp16, then the int decoders, bits-major (2, 3, 4, 8), groups
/// per tile minor (1, 2, 4).
enum DecoderId : int {
  kDecoderDenseBF16 = 0,
  kDecoderDenseFP16 = 1,
  kFirstIntDecoder = 2,
  kNumDecoders = kFirstIntDecoder + 4 * 3,
};

/// Decoder of an expert, or -1 for a descriptor no decoder handles.
__host__ __device__ inline int decoder_id(const ExpertDesc& d) {
  if (d.kind == static_cast<uint8_t>(FormatKind::kDense) && d.bits == 16) {
    if (d.dense_dtype == static_cast<uint8_t>(DType::kBF16)) return kDecoderDenseBF16;
    if (d.dense_dtype == static_cast<uint8_t>(DType::kFP16)) return kDecoderDenseFP16;
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
  if (id < kFirstIntDecoder || id >= kNumDecoders) return 0;
  const int bits_index = (id - kFirstIntDecoder) / 3;
  return bits_index == 0   ? IntDecoder<2, 1>::kTileBytes
         : bits_index == 1 ? IntDecoder<3, 1>::kTileBytes
         : bits_index == 2 ? IntDecoder<4, 1>::kTileBytes
                           : IntDecoder<8, 1>::kTileBytes;
}

/// The largest tile of the decoders in a format mask (bit i = decoder i); 0 for none.
__host__ __device__ constexpr int max_tile_bytes(uint32_t format_mask) {
  int bytes = 0;
  for (int id = 0; id < kNumDecoders; ++id)
    if (((format_mask >> id) & 1u) != 0 && decoder_tile_bytes(id) > bytes)
      bytes = decoder_tile_bytes(id);
  return bytes;
}

/// The smallest tile of the decoders in a format mask; 0 for none.
__host__ __device__ constexpr int min_tile_bytes(uint32_t format_mask) {
  int bytes = 0;
  for (int id = 0; id < kNumDecoders; ++id)
    if (((format_mask >> id) & 1u) != 0 && (bytes == 0 || decoder_tile_bytes(id) < bytes))
      bytes = decoder_tile_bytes(id);
  return bytes;
}

/// f(IntDecoder<BITS, GPT>{}) for GPT = 1, 2, 4 by gpt_index 0, 1, 2.
template <int BITS, class F>
__device__ __forceinline__ void with_int_decoder(int gpt_index, F&& f) {
  switch (gpt_index) {
    case 0:
      f(IntDecoder<BITS, 1>{});
      break;
    case 1:
      f(IntDecoder<BITS, 2>{});
      break;
    case 2:
      f(IntDecoder<BITS, 4>{});
      break;
    default:
      break;
  }
}

/// Calls f(Decoder{}) with the decoder of id; nothing for an unknown id. The id is uniform
/// per work item, so the switch never diverges inside a warp.
template <class F>
__device__ __forceinline__ void with_decoder(int id, F&& f) {
  if (id == kDecoderDenseBF16) return f(DenseDecoder<__nv_bfloat16>{});
  if (id == kDecoderDenseFP16) return f(DenseDecoder<__half>{});
  if (id < kFirstIntDecoder || id >= kNumDecoders) return;
  const int int_index = id - kFirstIntDecoder;
  switch (int_index / 3) {
    case 0:
      return with_int_decoder<2>(int_index % 3, f);
    case 1:
      return with_int_decoder<3>(int_index % 3, f);
    case 2:
      return with_int_decoder<4>(int_index % 3, f);
    case 3:
      return with_int_decoder<8>(int_index % 3, f);
    default:
      return;
  }
}

/// Calls f(Decoder{}, params) for expert e of a descriptor table: its decoder and sections.
template <class F>
__device__ __forceinline__ void with_expert_decoder(const uint8_t* blob, const ExpertDesc* descs,
                                                    int e, F&& f) {
  const ExpertDesc desc = descs[e];
  const ExpertParams ep = expert_params(blob, desc);
  with_decoder(decoder_id(desc), [&](auto decoder) { f(decoder, ep); });
}

}  // namespace qmoe::dev
