// bench/gpu_clock.hpp — the SM clock and the clock-limit reasons of the benchmark's GPU, read
// through NVML after each measurement: under the board's power cap an issue-bound kernel
// slows with the SM clock (docs/results.md, "Run-to-run spread"), so each row records it.
#pragma once
#include <cstdint>

namespace qmoe::bench {

struct ClockSample {
  int sm_mhz = -1;       ///< -1: not available (no NVML, or the query failed)
  uint64_t reasons = 0;  ///< NVML's clocks-event reasons bitmask (0x4: software power cap)
};

/// NVML is loaded at run time (dlopen of the driver's libnvidia-ml.so.1), so the benchmark
/// needs no NVML at build time and still runs, recording nothing, where it is missing.
class GpuClock {
 public:
  GpuClock() = default;
  ~GpuClock();
  GpuClock(const GpuClock&) = delete;
  GpuClock& operator=(const GpuClock&) = delete;

  /// Binds to the current CUDA device (by PCI bus id). Never fails: without NVML, or if
  /// any step fails, sample() reports "not available".
  void init();
  bool available() const { return device_ != nullptr; }
  ClockSample sample() const;

 private:
  using GetClockInfo = int (*)(void*, int, unsigned int*);
  using GetReasons = int (*)(void*, unsigned long long*);
  void* library_ = nullptr;
  void* device_ = nullptr;
  GetClockInfo get_clock_info_ = nullptr;
  GetReasons get_reasons_ = nullptr;
};

}  // namespace qmoe::bench
