// NVML through dlopen: the handful of entry points the benchmark reads, declared by their
// documented C signatures (nvml.h is not part of the CUDA toolkit install here).
#include <cuda_runtime.h>
#include <dlfcn.h>

#include "bench/gpu_clock.hpp"

namespace qmoe::bench {

namespace {
constexpr int kNvmlSuccess = 0;
constexpr int kNvmlClockSm = 1;  // nvmlClockType_t NVML_CLOCK_SM
}  // namespace

GpuClock::~GpuClock() {
  if (library_ == nullptr) return;
  if (auto shutdown = reinterpret_cast<int (*)()>(dlsym(library_, "nvmlShutdown")))
    (void)shutdown();
  dlclose(library_);
}

void GpuClock::init() {
  library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library_ == nullptr) return;
  auto nvml_init = reinterpret_cast<int (*)()>(dlsym(library_, "nvmlInit_v2"));
  auto by_bus_id = reinterpret_cast<int (*)(const char*, void**)>(
      dlsym(library_, "nvmlDeviceGetHandleByPciBusId_v2"));
  get_clock_info_ = reinterpret_cast<GetClockInfo>(dlsym(library_, "nvmlDeviceGetClockInfo"));
  get_reasons_ =
      reinterpret_cast<GetReasons>(dlsym(library_, "nvmlDeviceGetCurrentClocksEventReasons"));
  if (get_reasons_ == nullptr)  // drivers before the rename
    get_reasons_ =
        reinterpret_cast<GetReasons>(dlsym(library_, "nvmlDeviceGetCurrentClocksThrottleReasons"));
  int cuda_device = 0;
  char bus_id[32] = {};
  if (nvml_init == nullptr || by_bus_id == nullptr || get_clock_info_ == nullptr ||
      nvml_init() != kNvmlSuccess || cudaGetDevice(&cuda_device) != cudaSuccess ||
      cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, cuda_device) != cudaSuccess ||
      by_bus_id(bus_id, &device_) != kNvmlSuccess)
    device_ = nullptr;
}

ClockSample GpuClock::sample() const {
  ClockSample s;
  if (device_ == nullptr) return s;
  unsigned int mhz = 0;
  if (get_clock_info_(device_, kNvmlClockSm, &mhz) == kNvmlSuccess)
    s.sm_mhz = static_cast<int>(mhz);
  unsigned long long reasons = 0;
  if (get_reasons_ != nullptr && get_reasons_(device_, &reasons) == kNvmlSuccess)
    s.reasons = reasons;
  return s;
}

}  // namespace qmoe::bench
