#!/usr/bin/env bash
# One GPU session in one call: (build if no prebuilt binaries were carried), GPU tests on the
# native sm_90 code, the benchmark, the same tests on the compute_80 PTX (the A100 path,
# JIT-compiled), compute-sanitizer memcheck + racecheck on the small cases, and the demo.
# Logs go to $OUT (default ./gpu_out); a short table is printed last.
#   usage: scripts/gpu_check.sh [--skip-bench] [--bench-args "..."] [--tests-filter F] [--pack]
# --pack leaves $OUT as one file, gpu_check.tgz (the device tool returns only a few files).
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
skip_bench=0
bench_args="--quick"
filter="*"
pack=0
while (($#)); do
  case "$1" in
    --skip-bench) skip_bench=1 ;;
    --bench-args) bench_args="$2"; shift ;;
    --tests-filter) filter="$2"; shift ;;
    --pack) pack=1 ;;
    *) echo "unknown option $1"; exit 2 ;;
  esac
  shift
done
declare -A result
step() {  # step NAME LOGFILE COMMAND...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  "$@" >"$OUT/$log" 2>&1
  local rc=$?
  result[$name]="rc=$rc $((SECONDS - t0))s"
  echo "== $name: rc=$rc ($((SECONDS - t0)) s), log $log"
  tail -n 25 "$OUT/$log"
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/device.txt"
if [[ ! -x $BIN/qmoe_gpu_tests ]]; then
  step build build.log bash -c "cmake --preset gpu && cmake --build --preset gpu -j 16"
fi
chmod +x "$BIN"/* 2>/dev/null
step gpu_tests_sm90 tests_sm90.log "$BIN/qmoe_gpu_tests" --gtest_filter="$filter"
# The benchmark runs second, before the minutes of PTX JIT and sanitizer runs.
if ((skip_bench == 0)); then
  # shellcheck disable=SC2086
  step bench bench.log "$BIN/qmoe" bench $bench_args --out "$OUT" --commit "${QMOE_COMMIT:-unknown}"
fi
step gpu_tests_ptx80 tests_ptx80.log env CUDA_FORCE_PTX_JIT=1 "$BIN/qmoe_gpu_tests" --gtest_filter="$filter"
step memcheck memcheck.log compute-sanitizer --tool memcheck --error-exitcode 3 "$BIN/qmoe_gpu_tests" --gtest_filter='*Small*:CAbiGpu.*'
step racecheck racecheck.log compute-sanitizer --tool racecheck --error-exitcode 3 "$BIN/qmoe_gpu_tests" --gtest_filter='*Small*'
step demo demo.log "$BIN/qmoe" demo
echo
echo "==================== summary ===================="
for k in "${!result[@]}"; do printf '%-18s %s\n' "$k" "${result[$k]}"; done | sort
grep -hE "^\[  (PASSED|FAILED) |tests? ran|ERROR SUMMARY" "$OUT"/tests_*.log "$OUT"/memcheck.log "$OUT"/racecheck.log 2>/dev/null
if ((pack)); then
  packed=$(mktemp)
  tar czf "$packed" -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv "$packed" "$OUT/gpu_check.tgz"
fi
