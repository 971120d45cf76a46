// bench/report.hpp — the results file schema (DESIGN.md §5) as JSON and CSV, and the
// summary table.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "qmoe/status.hpp"

namespace qmoe::bench {

struct ResultRow {
  std::string op = "grouped_gemm";
  std::string shape;
  int64_t tokens = 0;
  std::string format;
  std::string kernel;
  double time_us = 0;
  double floor_us = 0;
  double baseline_us = -1;  ///< < 0: no baseline measured (written as null / empty)
  int64_t bytes = 0;        ///< packed weight bytes of the active experts + activations
  int64_t flops = 0;
  int sm_mhz = -1;             ///< SM clock right after the timed replays; -1: not read
  uint64_t clock_reasons = 0;  ///< NVML clocks-event reasons then (0x4: software power cap)

  bool has_baseline() const { return baseline_us > 0; }
  double pct_of_floor() const { return 100.0 * floor_us / time_us; }
  double speedup_vs_bf16() const { return baseline_us / time_us; }
};

struct RunInfo {
  std::string device;
  std::string date;  ///< yyyy-mm-dd, UTC
  std::string commit;
  double copy_gb_per_s = 0;  ///< read + written per second (measure_copy_bandwidth)
  double read_gb_per_s = 0;  ///< read per second (measure_read_bandwidth)
  double bf16_tflop_per_s = 0;
};

/// "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3".
std::string device_slug(const std::string& name);
/// Today's date in UTC, yyyy-mm-dd.
std::string utc_date();

/// Writes {"device","date","commit","copy_GBps","read_GBps","bf16_TFLOPs","rows":[...]}.
Status write_json(const std::string& path, const RunInfo& info, const std::vector<ResultRow>& rows);
/// The rows as CSV, plus pct_of_floor (100 * floor / time) and speedup_vs_bf16 columns.
Status write_csv(const std::string& path, const std::vector<ResultRow>& rows);
/// shape, T, format, time_us, floor_us, %floor, baseline_us, speed-up.
void print_table(const std::vector<ResultRow>& rows);

}  // namespace qmoe::bench
