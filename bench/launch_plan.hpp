// bench/launch_plan.hpp — the work one CUDA graph replays: `launches` independent expert
// FFN GEMM pairs, each with its own random routing, its own activations and its own
// mapping of active experts onto pool slots, so that one replay streams more than the L2
// holds and no launch finds the previous launch's weights still cached.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "bench/device_memory.hpp"
#include "bench/options.hpp"
#include "bench/weight_pool.hpp"

namespace qmoe::bench {

/// One launch's routing: T tokens each to top_k distinct experts, uniform and seeded.
/// Rows are already sorted by expert, so only the counts matter.
struct LaunchRouting {
  std::vector<int32_t> offsets;  ///< E + 1 row offsets of the logical experts
  std::vector<int64_t> slot;     ///< E: the pool slot an active expert reads (own index if idle)
  int64_t weight_bytes = 0;      ///< packed bytes of the active slots, both projections
};

class LaunchPlan {
 public:
  /// Routes launches until one replay touches at least `graph_min_bytes` (weights plus
  /// activations) or `max_launches` is reached. Host only; upload() allocates.
  static LaunchPlan route(const MoeShape& shape, int64_t tokens, const WeightPool& pool,
                          int64_t graph_min_bytes, int max_launches, uint64_t seed);

  /// Device bytes upload() will allocate (activations, offsets, descriptors).
  int64_t device_bytes() const;
  /// Copies offsets and per-launch descriptor tables to the device and fills the inputs
  /// x and h_in with random bf16. Synchronous.
  Status upload(const WeightPool& pool, uint64_t seed, cudaStream_t stream);

  int launches() const { return static_cast<int>(routings_.size()); }
  int64_t tokens() const { return tokens_; }
  int64_t rows() const { return rows_; }  ///< M = T * top_k
  int32_t experts() const { return experts_; }
  const LaunchRouting& routing(int r) const { return routings_[static_cast<size_t>(r)]; }

  /// Average over launches of packed weight bytes of the active experts plus activation
  /// bytes (x, h, h_in, y): what one launch must move at least once.
  double bytes_per_launch() const;
  /// 2 * M * (2I * H + H * I).
  int64_t flops_per_launch() const;

  // Device pointers of launch r (valid after upload).
  const int32_t* offsets(int r) const;
  const ExpertDesc* w13_descs(int r) const;
  const ExpertDesc* w2_descs(int r) const;
  void* x(int r) const { return activation(r, 0); }     ///< [M, H] bf16, input of w13
  void* h(int r) const { return activation(r, 1); }     ///< [M, 2I] bf16, output of w13
  void* h_in(int r) const { return activation(r, 2); }  ///< [M, I] bf16, input of w2
  void* y(int r) const { return activation(r, 3); }     ///< [M, H] bf16, output of w2

 private:
  void* activation(int r, int which) const;
  int64_t activation_bytes() const;  // one launch, unpadded

  int64_t hidden_ = 0, intermediate_ = 0;
  int64_t tokens_ = 0, rows_ = 0;
  int32_t experts_ = 0;
  std::vector<LaunchRouting> routings_;
  int64_t act_offset_[5] = {};  // x, h, h_in, y offsets within a launch's block; [4] = block size
  DeviceBuffer activations_, offsets_dev_, descs_dev_;
};

}  // namespace qmoe::bench
