// `qmoe bench`: the sweep over shapes x formats x token counts, and its output.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include "bench/bench.hpp"
#include "bench/check.hpp"
#include "bench/gpu_clock.hpp"
#include "bench/gpu_context.hpp"
#include "bench/grouped_gemm_runs.hpp"
#include "bench/launch_plan.hpp"
#include "bench/options.hpp"
#include "bench/report.hpp"
#include "bench/timing.hpp"
#include "bench/weight_pool.hpp"

namespace qmoe::bench {

namespace {

// Every pool spans, and every graph replay streams, at least this many L2 sizes: a weight
// is re-read only after 4x L2 of other data, so it comes from HBM (CUTLASS's guide: >= 2x).
constexpr int64_t kL2Multiple = 4;
// Bounds the graph at tiny per-launch bytes (Qwen3 int2 at T = 1 needs ~20 launches).
constexpr int kMaxLaunchesPerGraph = 64;
// Kept free beyond what a measurement allocates: cuBLAS and CUDA context needs, workspace.
constexpr int64_t kMemoryHeadroomBytes = int64_t{1} << 30;
// Replays behind the copy bandwidth and tensor rate.
constexpr int kRateReps = 20;
// Any fixed value: a run is reproducible, and equal across formats (same routings).
constexpr uint64_t kSeed = 0x716d6f65;

double gib(int64_t bytes) {
  return static_cast<double>(bytes) / (1 << 30);
}

class Sweep {
 public:
  explicit Sweep(const BenchOptions& opt) : opt_(opt) {}

  Status init() {
    QMOE_RETURN_IF_ERROR(ctx_.init());
    clock_.init();
    info_.device = ctx_.device_name();
    info_.date = utc_date();
    info_.commit = opt_.commit;
    std::printf("device %s, L2 %.0f MiB, SM clock per row: %s\n", info_.device.c_str(),
                static_cast<double>(ctx_.l2_bytes()) / (1 << 20),
                clock_.available() ? "NVML" : "not available (no NVML)");
    QMOE_RETURN_IF_ERROR(measure_copy_bandwidth(ctx_, kRateReps, &info_.copy_gb_per_s));
    double worst_read = 0;
    QMOE_RETURN_IF_ERROR(
        measure_read_bandwidth(ctx_, kRateReps, &info_.read_gb_per_s, &worst_read));
    QMOE_RETURN_IF_ERROR(measure_bf16_tensor_rate(ctx_, kRateReps, &info_.bf16_tflop_per_s));
    std::printf(
        "copy %.0f GB/s (read + write), read %.0f GB/s (worst of 4 buffers %.0f), bf16 cuBLAS "
        "%.0f TFLOP/s\n",
        info_.copy_gb_per_s, info_.read_gb_per_s, worst_read, info_.bf16_tflop_per_s);
    return Status::ok();
  }

  // The bf16 pool goes first: it holds the baseline's weights (and the bf16 format's), and
  // it is freed before any quantized pool is made, so the peak is one pool at a time.
  Status run_shape(const MoeShape& shape) {
    baseline_us_.clear();
    BankFormat bf16;
    QMOE_RETURN_IF_ERROR(parse_bank_format("bf16", &bf16));
    const bool bf16_rows = std::any_of(opt_.formats.begin(), opt_.formats.end(),
                                       [&](const BankFormat& f) { return f.name == bf16.name; });
    QMOE_RETURN_IF_ERROR(run_format(shape, bf16, /*baseline=*/true, bf16_rows));
    for (const BankFormat& f : opt_.formats)
      if (f.name != bf16.name) QMOE_RETURN_IF_ERROR(run_format(shape, f, false, true));
    return Status::ok();
  }

  Status write_results() {
    if (rows_.empty()) return Status::ok();
    // Report order: shape as given, then tokens, then formats in the order measured.
    auto shape_rank = [&](const std::string& name) {
      for (size_t i = 0; i < opt_.shapes.size(); ++i)
        if (name == opt_.shapes[i].name) return i;
      return opt_.shapes.size();
    };
    std::stable_sort(rows_.begin(), rows_.end(), [&](const ResultRow& a, const ResultRow& b) {
      const size_t ra = shape_rank(a.shape), rb = shape_rank(b.shape);
      return ra != rb ? ra < rb : a.tokens < b.tokens;
    });
    print_table(rows_);
    std::error_code ec;
    std::filesystem::create_directories(opt_.out_dir, ec);
    if (ec) return invalid_argument("cannot create '" + opt_.out_dir + "': " + ec.message());
    const std::string stem = opt_.out_dir + "/" + device_slug(info_.device) + "-" + info_.date;
    QMOE_RETURN_IF_ERROR(write_json(stem + ".json", info_, rows_));
    QMOE_RETURN_IF_ERROR(write_csv(stem + ".csv", rows_));
    std::printf("\nwrote %s.json and %s.csv\n", stem.c_str(), stem.c_str());
    return Status::ok();
  }

 private:
  // False (and a note on stdout) when `bytes` more would not fit in free device memory.
  Status fits(int64_t bytes, const std::string& what, bool* ok) const {
    int64_t free = 0;
    QMOE_RETURN_IF_ERROR(ctx_.free_bytes(&free));
    *ok = bytes + kMemoryHeadroomBytes <= free;
    if (!*ok)
      std::printf("skip %s: needs %.1f GiB, %.1f GiB free\n", what.c_str(), gib(bytes), gib(free));
    return Status::ok();
  }

  Status run_format(const MoeShape& shape, const BankFormat& format, bool baseline,
                    bool qmoe_rows) {
    const int64_t rotate_bytes = kL2Multiple * ctx_.l2_bytes();
    const std::string what = std::string(shape.name) + " " + format.name;
    WeightPool pool;
    const Status planned = plan_weight_pool(shape, format, rotate_bytes, &pool);
    if (planned.code() == StatusCode::kUnsupported) {
      std::printf("skip %s: %s\n", what.c_str(), planned.to_string().c_str());
      return Status::ok();
    }
    QMOE_RETURN_IF_ERROR(planned);
    bool ok = false;
    QMOE_RETURN_IF_ERROR(fits(pool.device_bytes(), what + " bank", &ok));
    if (!ok) return Status::ok();
    QMOE_RETURN_IF_ERROR(fill_weight_pool(kSeed, ctx_.stream(), &pool));

    for (int64_t tokens : opt_.tokens) {
      const std::string label = what + " T=" + std::to_string(tokens);
      LaunchPlan plan =
          LaunchPlan::route(shape, tokens, pool, rotate_bytes, kMaxLaunchesPerGraph, kSeed);
      QMOE_RETURN_IF_ERROR(fits(plan.device_bytes(), label + " activations", &ok));
      if (!ok) continue;
      QMOE_RETURN_IF_ERROR(plan.upload(pool, kSeed, ctx_.stream()));
      if (baseline) QMOE_RETURN_IF_ERROR(measure_baseline(plan, pool, label));
      if (qmoe_rows) QMOE_RETURN_IF_ERROR(measure_qmoe(shape, format, plan, pool, label));
    }
    return Status::ok();
  }

  Status measure_baseline(const LaunchPlan& plan, const WeightPool& pool,
                          const std::string& label) {
    double loop_us = 0, grouped_us = 0;
    bool grouped = false;
    QMOE_RETURN_IF_ERROR(time_cublas_expert_loop(ctx_, pool, plan, opt_.reps, &loop_us));
    // The grouped call is the newer, optional half of the baseline: if it fails (e.g. it
    // cannot be captured), the loop still stands; a real device fault fails the next call.
    const Status grouped_status =
        time_cublas_grouped_batched(ctx_, pool, plan, opt_.reps, &grouped, &grouped_us);
    grouped = grouped && grouped_status.is_ok();
    baseline_us_[plan.tokens()] = grouped ? std::min(loop_us, grouped_us) : loop_us;
    std::printf("%-44s cuBLAS loop %9.1f us, grouped ", (label + " baseline").c_str(), loop_us);
    if (grouped)
      std::printf("%9.1f us", grouped_us);
    else if (!grouped_status.is_ok())
      std::printf("failed (%s)", grouped_status.to_string().c_str());
    else
      std::printf("not supported");
    std::printf("  (%d launches/graph)\n", plan.launches());
    std::fflush(stdout);
    return Status::ok();
  }

  Status measure_qmoe(const MoeShape& shape, const BankFormat& format, const LaunchPlan& plan,
                      const WeightPool& pool, const std::string& label) {
    double us = 0;
    const Status st = time_qmoe_grouped_gemm(ctx_, pool, plan, opt_, &workspace_, &us);
    if (st.code() == StatusCode::kUnsupported) {
      std::printf("%-44s skipped: %s\n", label.c_str(), st.to_string().c_str());
      return Status::ok();
    }
    QMOE_RETURN_IF_ERROR(st);
    const ClockSample clock = clock_.sample();
    ResultRow row;
    row.sm_mhz = clock.sm_mhz;
    row.clock_reasons = clock.reasons;
    row.shape = shape.name;
    row.tokens = plan.tokens();
    row.format = format.name;
    row.kernel =
        opt_.kernel_name +
        (opt_.integer_decode == IntegerDecode::kAuto ? "" : "+int-" + opt_.integer_decode_name) +
        (opt_.tile_kernel == TileKernel::kAuto ? "" : "+" + opt_.tile_kernel_name) +
        (opt_.epilogue == LayerEpilogue::kNone ? "" : "+" + opt_.epilogue_name);
    row.time_us = us;
    const double bytes = plan.bytes_per_launch();
    row.bytes = static_cast<int64_t>(bytes + 0.5);
    row.flops = plan.flops_per_launch();
    // The floor's bandwidth is the best HBM rate measured (a weight stream reads: the read
    // rate, unless the copy was faster). bytes / (GB/s) is in ns; flops / (TFLOP/s) in ps.
    const double hbm_gb_per_s = std::max(info_.copy_gb_per_s, info_.read_gb_per_s);
    row.floor_us = std::max(bytes / hbm_gb_per_s * 1e-3,
                            static_cast<double>(row.flops) / info_.bf16_tflop_per_s * 1e-6);
    const auto base = baseline_us_.find(plan.tokens());
    if (base != baseline_us_.end()) row.baseline_us = base->second;
    std::printf("%-44s %9.1f us  floor %9.1f us (%5.1f%%)", label.c_str(), row.time_us,
                row.floor_us, row.pct_of_floor());
    if (row.has_baseline()) std::printf("  %5.2fx vs bf16", row.speedup_vs_bf16());
    std::printf("  (%d launches/graph", plan.launches());
    if (row.sm_mhz >= 0) std::printf(", SM %d MHz", row.sm_mhz);
    std::printf(")\n");
    std::fflush(stdout);
    rows_.push_back(row);
    return Status::ok();
  }

  const BenchOptions& opt_;
  GpuContext ctx_;
  GpuClock clock_;
  RunInfo info_;
  std::vector<ResultRow> rows_;
  std::map<int64_t, double> baseline_us_;  // per token count, for the current shape
  DeviceBuffer workspace_;
};

Status run_sweep(const BenchOptions& opt, Sweep* sweep) {
  QMOE_RETURN_IF_ERROR(sweep->init());
  for (const MoeShape& shape : opt.shapes) QMOE_RETURN_IF_ERROR(sweep->run_shape(shape));
  return Status::ok();
}

}  // namespace

int run_cli(int argc, char** argv) {
  BenchOptions opt;
  const Status parsed = parse_options(argc, argv, &opt);
  if (!parsed.is_ok()) {
    std::fprintf(stderr, "qmoe bench: %s\n(see qmoe bench --help)\n", parsed.message().c_str());
    return 2;
  }
  if (opt.help) {
    print_usage(stdout);
    return 0;
  }
  if (opt.dry_run) {
    print_plan(opt, stdout);
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  Sweep sweep(opt);
  const Status st = run_sweep(opt, &sweep);
  // Whatever was measured before a failure is still written: device time is precious.
  const Status written = sweep.write_results();
  std::printf("total %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!st.is_ok()) {
    std::fprintf(stderr, "qmoe bench: aborted: %s\n", st.to_string().c_str());
    return 1;
  }
  if (!written.is_ok()) {
    std::fprintf(stderr, "qmoe bench: %s\n", written.to_string().c_str());
    return 1;
  }
  return 0;
}

}  // namespace qmoe::bench
