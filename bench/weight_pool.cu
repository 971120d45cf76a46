// Planning and on-device generation of expert weight pools.
#include "bench/check.hpp"
#include "bench/weight_pool.hpp"
#include "cuda/decode/registry.cuh"

namespace qmoe::bench {

namespace {

Status plan_projection(const BankFormat& format, int32_t experts, int32_t copies, int64_t n,
                       int64_t k, ProjectionPool* p) {
  p->n = n;
  p->k = k;
  p->slot_layouts.clear();
  p->slot_descs.clear();
  int64_t offset = 0;
  for (int64_t slot = 0; slot < int64_t{experts} * copies; ++slot) {
    const FormatSpec& f = format.for_expert(slot % experts);
    PackedLayout L;
    QMOE_RETURN_IF_ERROR(packed_layout(f, n, k, &L));
    p->slot_layouts.push_back(L);
    p->slot_descs.push_back(make_expert_desc(f, L, offset));
    offset += round_up(L.total_bytes, kSectionAlign);
  }
  p->blob_bytes = offset;
  return Status::ok();
}

// DeviceBankView::format_mask: bit i set where some slot uses decoder i (cuda/ owns the ids).
Status format_mask_of(const std::vector<ExpertDesc>& descs, uint32_t* mask) {
  *mask = 0;
  for (const ExpertDesc& d : descs) {
    const int id = dev::decoder_id(d);
    if (id < 0) return unsupported("no device decoder for a format of this bank");
    *mask |= 1u << id;
  }
  return Status::ok();
}

// Distinct seeds per (projection, slot, section) so no two regions repeat each other.
uint64_t region_seed(uint64_t seed, int projection, int64_t slot, int section) {
  return ((seed * 2 + static_cast<uint64_t>(projection)) * 1000003u + static_cast<uint64_t>(slot)) *
             4u +
         static_cast<uint64_t>(section);
}

Status fill_projection(const BankFormat& format, int32_t experts, uint64_t seed, int projection,
                       cudaStream_t stream, ProjectionPool* p) {
  QMOE_RETURN_IF_ERROR(p->blob.allocate(p->blob_bytes));
  for (size_t slot = 0; slot < p->slot_descs.size(); ++slot) {
    const FormatSpec& f = format.for_expert(static_cast<int64_t>(slot) % experts);
    const PackedLayout& L = p->slot_layouts[slot];
    const ExpertDesc& d = p->slot_descs[slot];
    uint8_t* base = p->blob.data();
    // Sections start 256-byte aligned and are followed by at least their 16-byte round-up.
    const FillKind code_kind = f.kind != FormatKind::kDense    ? FillKind::kCodes
                               : f.dense_dtype == DType::kBF16 ? FillKind::kBf16
                                                               : FillKind::kFp16Positive;
    QMOE_RETURN_IF_ERROR(fill_random(base + d.codes_offset, round_up(L.codes_bytes, 16), code_kind,
                                     0, region_seed(seed, projection, slot, 0), stream));
    if (f.kind == FormatKind::kDense) continue;
    QMOE_RETURN_IF_ERROR(fill_random(base + d.scales_offset, round_up(L.scales_bytes, 16),
                                     FillKind::kFp16Positive, 0,
                                     region_seed(seed, projection, slot, 1), stream));
    if (L.zeros_bytes > 0)
      QMOE_RETURN_IF_ERROR(fill_random(base + d.zeros_offset, round_up(L.zeros_bytes, 16),
                                       FillKind::kZeros, f.bits,
                                       region_seed(seed, projection, slot, 2), stream));
  }
  return Status::ok();
}

}  // namespace

Status plan_weight_pool(const MoeShape& shape, const BankFormat& format, int64_t min_bytes,
                        WeightPool* out) {
  WeightPool pool;
  pool.format = format;
  pool.experts = shape.experts;
  for (pool.copies = 1;; ++pool.copies) {
    QMOE_RETURN_IF_ERROR(plan_projection(format, shape.experts, pool.copies, 2 * shape.intermediate,
                                         shape.hidden, &pool.w13));
    QMOE_RETURN_IF_ERROR(plan_projection(format, shape.experts, pool.copies, shape.hidden,
                                         shape.intermediate, &pool.w2));
    if (pool.device_bytes() >= min_bytes) break;
  }
  QMOE_RETURN_IF_ERROR(format_mask_of(pool.w13.slot_descs, &pool.format_mask));
  *out = std::move(pool);
  return Status::ok();
}

Status fill_weight_pool(uint64_t seed, cudaStream_t stream, WeightPool* pool) {
  QMOE_RETURN_IF_ERROR(fill_projection(pool->format, pool->experts, seed, 0, stream, &pool->w13));
  QMOE_RETURN_IF_ERROR(fill_projection(pool->format, pool->experts, seed, 1, stream, &pool->w2));
  QMOE_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::ok();
}

}  // namespace qmoe::bench
