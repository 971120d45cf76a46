// ExpertBank: E packed experts of one projection and their contiguous device image.
#include <cstring>
#include <utility>

#include "qmoe/packed.hpp"
#include "src/formats/status_guard.hpp"

namespace qmoe {

namespace {
int64_t align_up(int64_t v) {
  return (v + kSectionAlign - 1) / kSectionAlign * kSectionAlign;
}
}  // namespace

ExpertDesc make_expert_desc(const FormatSpec& f, const PackedLayout& L, int64_t base) {
  ExpertDesc d{};
  d.codes_offset = static_cast<uint64_t>(base + L.codes_offset);
  d.scales_offset = static_cast<uint64_t>(base + L.scales_offset);
  d.zeros_offset = static_cast<uint64_t>(base + L.zeros_offset);
  d.kind = static_cast<uint8_t>(f.kind);
  d.dense_dtype = static_cast<uint8_t>(f.dense_dtype);
  d.bits = static_cast<uint8_t>(f.bits);
  d.symmetric = f.symmetric ? 1 : 0;
  d.group_size = static_cast<int32_t>(f.group_len(L.k));
  d.groups_pad = static_cast<int32_t>(L.groups_pad);
  d.tile_bytes = static_cast<int32_t>(L.tile_bytes);
  return d;
}

Status ExpertBank::create(std::vector<PackedMatrix> experts, ExpertBank* out) {
  if (out == nullptr) return invalid_argument("ExpertBank::create: null output");
  if (experts.empty()) return invalid_argument("ExpertBank::create: no experts");
  const int64_t n = experts[0].n(), k = experts[0].k();
  for (size_t e = 0; e < experts.size(); ++e) {
    const PackedMatrix& m = experts[e];
    if (m.n() != n || m.k() != k)
      return invalid_argument("ExpertBank::create: expert " + std::to_string(e) + " is [" +
                              std::to_string(m.n()) + ", " + std::to_string(m.k()) +
                              "], expert 0 is [" + std::to_string(n) + ", " + std::to_string(k) +
                              "]");
    // The kernels trust the descriptors built from format + layout: both must be exactly
    // what packed_layout says for this format and shape, and the blob exactly that long.
    PackedLayout expect;
    Status st = packed_layout(m.format, n, k, &expect);
    if (!st.is_ok())
      return invalid_argument("ExpertBank::create: expert " + std::to_string(e) + ": " +
                              st.message());
    const PackedLayout& L = m.layout;
    const bool layout_ok =
        L.n_pad == expect.n_pad && L.k_pad == expect.k_pad && L.groups_pad == expect.groups_pad &&
        L.tile_bytes == expect.tile_bytes && L.codes_bytes == expect.codes_bytes &&
        L.scales_bytes == expect.scales_bytes && L.zeros_bytes == expect.zeros_bytes &&
        L.codes_offset == expect.codes_offset && L.scales_offset == expect.scales_offset &&
        L.zeros_offset == expect.zeros_offset && L.total_bytes == expect.total_bytes;
    if (!layout_ok || static_cast<int64_t>(m.blob.size()) != expect.total_bytes)
      return invalid_argument("ExpertBank::create: expert " + std::to_string(e) + " (" +
                              m.format.to_string() +
                              ") has a layout or blob size that does not match its format");
  }
  out->experts_ = std::move(experts);
  out->n_ = n;
  out->k_ = k;
  return Status::ok();
}

int64_t ExpertBank::image_bytes() const {
  int64_t total = 0;
  for (const PackedMatrix& m : experts_) total += align_up(m.layout.total_bytes);
  return total;
}

Status ExpertBank::build_image(std::vector<uint8_t>* blob, std::vector<ExpertDesc>* descs) const {
  if (blob == nullptr || descs == nullptr)
    return invalid_argument("ExpertBank::build_image: null output");
  return detail::run_catching("ExpertBank::build_image", [&]() -> Status {
    std::vector<uint8_t> image(static_cast<size_t>(image_bytes()), 0);
    std::vector<ExpertDesc> table;
    table.reserve(experts_.size());
    int64_t offset = 0;
    for (const PackedMatrix& m : experts_) {
      std::memcpy(image.data() + offset, m.blob.data(), m.blob.size());
      table.push_back(make_expert_desc(m.format, m.layout, offset));
      offset += align_up(m.layout.total_bytes);
    }
    *blob = std::move(image);
    *descs = std::move(table);
    return Status::ok();
  });
}

}  // namespace qmoe
