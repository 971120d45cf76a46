// cuda/decode/registry.cuh — the one place that maps an expert's descriptor to its device
// decoder. Decoder ids are the bit positions of DeviceBankView::format_mask.
// Adding a format: one id, and one entry each in decoder_id, decoder_tile_bytes, with_decoder.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/decode/dense.cuh"
#include "cuda/decode/int.cuh"
#include "qmoe/packed.hpp"

namespace qmoe::dev {

enum DecoderId : int {
  kDecoderDenseBF16 = 0,
  kDecoderDenseFP16 = 1,
  kDecoderInt2 = 2,
  kDecoderInt3 = 3,
  kDecoderInt4 = 4,
  kDecoderInt8 = 5,
  kNumDecoders = 6,
};

/// Decoder of an expert, or -1 for a descriptor no decoder handles.
__host__ __device__ inline int decoder_id(const ExpertDesc& d) {
  if (d.kind == static_cast<uint8_t>(FormatKind::kDense) && d.bits == 16) {
    if (d.dense_dtype == static_cast<uint8_t>(DType::kBF16)) return kDecoderDenseBF16;
    if (d.dense_dtype == static_cast<uint8_t>(DType::kFP16)) return kDecoderDenseFP16;
    return -1;
  }
  if (d.kind != static_cast<uint8_t>(FormatKind::kInt)) return -1;
  switch (d.bits) {
    case 2:
      return kDecoderInt2;
    case 3:
      return kDecoderInt3;
    case 4:
      return kDecoderInt4;
    case 8:
      return kDecoderInt8;
    default:
      return -1;
  }
}

/// Bytes of one 16x128 code tile of decoder id (what ExpertDesc::tile_bytes says); 0 if unknown.
__host__ __device__ constexpr int decoder_tile_bytes(int id) {
  constexpr int kBytes[kNumDecoders] = {DenseDecoder<__nv_bfloat16>::kTileBytes,
                                        DenseDecoder<__half>::kTileBytes,
                                        IntDecoder<2>::kTileBytes,
                                        IntDecoder<3>::kTileBytes,
                                        IntDecoder<4>::kTileBytes,
                                        IntDecoder<8>::kTileBytes};
  return id >= 0 && id < kNumDecoders ? kBytes[id] : 0;
}

/// The largest tile of the decoders in a format mask (bit i = decoder i); 0 for none.
__host__ __device__ constexpr int max_tile_bytes(uint32_t format_mask) {
  int bytes = 0;
  for (int id = 0; id < kNumDecoders; ++id)
    if (((format_mask >> id) & 1u) != 0 && decoder_tile_bytes(id) > bytes)
      bytes = decoder_tile_bytes(id);
  return bytes;
}

/// Calls f(Decoder{}) with the decoder of id; nothing for an unknown id. The id is uniform
/// per work item, so the switch never diverges inside a warp.
template <class F>
__device__ __forceinline__ void with_decoder(int id, F&& f) {
  switch (id) {
    case kDecoderDenseBF16:
      f(DenseDecoder<__nv_bfloat16>{});
      break;
    case kDecoderDenseFP16:
      f(DenseDecoder<__half>{});
      break;
    case kDecoderInt2:
      f(IntDecoder<2>{});
      break;
    case kDecoderInt3:
      f(IntDecoder<3>{});
      break;
    case kDecoderInt4:
      f(IntDecoder<4>{});
      break;
    case kDecoderInt8:
      f(IntDecoder<8>{});
      break;
    default:
      break;
  }
}

}  // namespace qmoe::dev
