// bench/weight_pool.hpp — random expert banks generated on the device, in physical slots.
// A pool holds `copies` copies of a bank's E experts; slot s = copy * E + e has the format
// of expert e. Copies exist only so that small banks still span several times the L2:
// a launch plan maps each launch's active experts onto slots (launch_plan.hpp).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "bench/device_memory.hpp"
#include "bench/options.hpp"
#include "qmoe/packed.hpp"

namespace qmoe::bench {

/// The slots of one projection (w13: [2I, H], or w2: [H, I]) in one device allocation.
struct ProjectionPool {
  int64_t n = 0, k = 0;
  std::vector<PackedLayout> slot_layouts;
  std::vector<ExpertDesc> slot_descs;  ///< offsets relative to blob
  int64_t blob_bytes = 0;
  DeviceBuffer blob;

  /// Packed bytes of a slot that a GEMM reads: codes + scales + zeros.
  int64_t payload_bytes(int64_t slot) const {
    const PackedLayout& L = slot_layouts[static_cast<size_t>(slot)];
    return L.codes_bytes + L.scales_bytes + L.zeros_bytes;
  }
};

struct WeightPool {
  BankFormat format;
  int32_t experts = 0;
  int32_t copies = 0;
  ProjectionPool w13, w2;
  uint32_t format_mask = 0;  ///< DeviceBankView::format_mask of every slot's format

  int64_t slots() const { return int64_t{experts} * copies; }
  int64_t slot_payload_bytes(int64_t slot) const {
    return w13.payload_bytes(slot) + w2.payload_bytes(slot);
  }
  int64_t device_bytes() const { return w13.blob_bytes + w2.blob_bytes; }
};

/// Lays out a pool with the fewest copies (>= 1) that span at least `min_bytes` of device
/// memory (layouts, descriptors, bytes) without touching the device, so its size can be
/// checked against free memory first. Errors: kInvalidArgument for a format that cannot
/// hold the shape (e.g. K not divisible by the group size), kUnsupported for a format
/// without a device decoder.
Status plan_weight_pool(const MoeShape& shape, const BankFormat& format, int64_t min_bytes,
                        WeightPool* out);

/// Allocates a planned pool and fills it on `stream` with valid random codes, scales,
/// zeros and dense weights. Synchronous. Errors: kCudaError (e.g. out of memory).
Status fill_weight_pool(uint64_t seed, cudaStream_t stream, WeightPool* pool);

}  // namespace qmoe::bench
