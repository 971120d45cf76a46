// Routing, slot rotation and activation buffers of the launches in one timed graph.
#include <algorithm>
#include <numeric>
#include <random>

#include "bench/check.hpp"
#include "bench/launch_plan.hpp"

namespace qmoe::bench {

namespace {

constexpr int64_t kBf16Bytes = 2;

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Tokens per expert of T tokens, each routed to k distinct experts drawn uniformly.
std::vector<int32_t> route_uniform(int64_t tokens, int32_t experts, int32_t top_k, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> counts(static_cast<size_t>(experts), 0);
  std::vector<int32_t> chosen(static_cast<size_t>(top_k));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int32_t j = 0; j < top_k; ++j) {
      int32_t e;
      do {
        e = static_cast<int32_t>(rng() % static_cast<uint64_t>(experts));
      } while (std::find(chosen.begin(), chosen.begin() + j, e) != chosen.begin() + j);
      chosen[static_cast<size_t>(j)] = e;
      ++counts[static_cast<size_t>(e)];
    }
  }
  return counts;
}

}  // namespace

LaunchPlan LaunchPlan::route(const MoeShape& shape, int64_t tokens, const WeightPool& pool,
                             int64_t graph_min_bytes, int max_launches, uint64_t seed) {
  LaunchPlan p;
  p.hidden_ = shape.hidden;
  p.intermediate_ = shape.intermediate;
  p.tokens_ = tokens;
  p.rows_ = tokens * shape.top_k;
  p.experts_ = shape.experts;
  const int64_t m = p.rows_, h = shape.hidden, i = shape.intermediate;
  const int64_t sizes[4] = {m * h, m * 2 * i, m * i, m * h};
  for (int b = 0; b < 4; ++b)
    p.act_offset_[b + 1] = p.act_offset_[b] + round_up(sizes[b] * kBf16Bytes, kSectionAlign);

  // Active experts take the next slots of one shuffled deck of all slots: a slot comes back
  // only after every other slot was used, i.e. after the whole pool (>= several L2) streamed.
  std::vector<int64_t> deck(static_cast<size_t>(pool.slots()));
  std::iota(deck.begin(), deck.end(), int64_t{0});
  std::mt19937_64 deck_rng(mix_seed(seed, static_cast<uint64_t>(deck.size())));
  std::shuffle(deck.begin(), deck.end(), deck_rng);
  size_t cursor = 0;

  int64_t graph_bytes = 0;
  while (p.launches() < max_launches && graph_bytes < graph_min_bytes) {
    const uint64_t launch_seed = mix_seed(
        mix_seed(seed, static_cast<uint64_t>(tokens) * 4096 + static_cast<uint64_t>(shape.experts)),
        static_cast<uint64_t>(p.launches()));
    const std::vector<int32_t> counts =
        route_uniform(tokens, shape.experts, shape.top_k, launch_seed);
    LaunchRouting r;
    r.offsets.assign(static_cast<size_t>(shape.experts) + 1, 0);
    r.slot.resize(static_cast<size_t>(shape.experts));
    for (int32_t e = 0; e < shape.experts; ++e) {
      const size_t ue = static_cast<size_t>(e);
      r.offsets[ue + 1] = r.offsets[ue] + counts[ue];
      r.slot[ue] = e;
      if (counts[ue] == 0) continue;
      r.slot[ue] = deck[cursor];
      cursor = (cursor + 1) % deck.size();
      r.weight_bytes += pool.slot_payload_bytes(r.slot[ue]);
    }
    graph_bytes += r.weight_bytes + p.activation_bytes();
    p.routings_.push_back(std::move(r));
  }
  return p;
}

int64_t LaunchPlan::activation_bytes() const {
  return (2 * rows_ * hidden_ + 3 * rows_ * intermediate_) * kBf16Bytes;
}

double LaunchPlan::bytes_per_launch() const {
  double weights = 0;
  for (const LaunchRouting& r : routings_) weights += static_cast<double>(r.weight_bytes);
  return weights / launches() + static_cast<double>(activation_bytes());
}

int64_t LaunchPlan::flops_per_launch() const {
  return 2 * rows_ * (2 * intermediate_ * hidden_ + hidden_ * intermediate_);
}

int64_t LaunchPlan::device_bytes() const {
  const int64_t l = launches();
  return act_offset_[4] * l +
         round_up(l * (experts_ + 1) * int64_t{sizeof(int32_t)}, kSectionAlign) +
         round_up(2 * l * experts_ * int64_t{sizeof(ExpertDesc)}, kSectionAlign);
}

Status LaunchPlan::upload(const WeightPool& pool, uint64_t seed, cudaStream_t stream) {
  const int64_t l = launches();
  QMOE_RETURN_IF_ERROR(activations_.allocate(act_offset_[4] * l));
  QMOE_RETURN_IF_ERROR(offsets_dev_.allocate(l * (experts_ + 1) * int64_t{sizeof(int32_t)}));
  QMOE_RETURN_IF_ERROR(descs_dev_.allocate(2 * l * experts_ * int64_t{sizeof(ExpertDesc)}));

  std::vector<int32_t> offsets;
  std::vector<ExpertDesc> descs(static_cast<size_t>(2 * l * experts_));
  for (int r = 0; r < l; ++r) {
    const LaunchRouting& route = routings_[static_cast<size_t>(r)];
    offsets.insert(offsets.end(), route.offsets.begin(), route.offsets.end());
    for (int32_t e = 0; e < experts_; ++e) {
      const size_t slot = static_cast<size_t>(route.slot[static_cast<size_t>(e)]);
      descs[static_cast<size_t>(r * experts_ + e)] = pool.w13.slot_descs[slot];
      descs[static_cast<size_t>((l + r) * experts_ + e)] = pool.w2.slot_descs[slot];
    }
    const uint64_t fill_seed = mix_seed(seed, static_cast<uint64_t>(r));
    QMOE_RETURN_IF_ERROR(fill_random(x(r), act_offset_[1] - act_offset_[0], FillKind::kBf16, 0,
                                     fill_seed * 2, stream));
    QMOE_RETURN_IF_ERROR(fill_random(h_in(r), act_offset_[3] - act_offset_[2], FillKind::kBf16, 0,
                                     fill_seed * 2 + 1, stream));
  }
  QMOE_CUDA_TRY(cudaMemcpyAsync(offsets_dev_.data(), offsets.data(),
                                offsets.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  QMOE_CUDA_TRY(cudaMemcpyAsync(descs_dev_.data(), descs.data(), descs.size() * sizeof(ExpertDesc),
                                cudaMemcpyHostToDevice, stream));
  QMOE_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::ok();
}

const int32_t* LaunchPlan::offsets(int r) const {
  return reinterpret_cast<const int32_t*>(offsets_dev_.data()) + int64_t{r} * (experts_ + 1);
}

const ExpertDesc* LaunchPlan::w13_descs(int r) const {
  return reinterpret_cast<const ExpertDesc*>(descs_dev_.data()) + int64_t{r} * experts_;
}

const ExpertDesc* LaunchPlan::w2_descs(int r) const {
  return reinterpret_cast<const ExpertDesc*>(descs_dev_.data()) +
         (int64_t{launches()} + r) * experts_;
}

void* LaunchPlan::activation(int r, int which) const {
  return activations_.data() + int64_t{r} * act_offset_[4] + act_offset_[which];
}

}  // namespace qmoe::bench
