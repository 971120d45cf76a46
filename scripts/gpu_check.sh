#!/usr/bin/env bash
# One GPU session in one call: (build if no prebuilt binaries were carried), GPU tests on the
# native sm_90 code, the benchmark, the same tests on the compute_80 PTX (the A100 path,
# JIT-compiled), compute-sanitizer runs on the small cases, and the demo.
# Logs go to $OUT (default ./gpu_out); a short table is printed last.
#   usage: scripts/gpu_check.sh [options]   (--help prints this)
#     --skip-bench            no benchmark
#     --bench-args "..."      `qmoe bench` arguments (default --quick; "" = the full sweep)
#     --tests-filter F        gtest filter of the sm_90 run (default *)
#     --ptx-filter F          gtest filter of the compute_80 PTX run (default: --tests-filter's;
#                             "" skips the run: JIT-compiling every kernel takes minutes)
#     --sanitizers "T..."     compute-sanitizer tools (default "memcheck racecheck initcheck";
#                             "" = none)
#     --sanitize-filter F     gtest filter of every sanitizer run (default: each tool's own)
#     --skip-demo             no `qmoe demo`
#     --step-timeout S        stop any one step after S seconds (default 0: no limit)
#     --pack                  leave $OUT as one file, gpu_check.tgz (the device tool returns
#                             only a few files)
# Exit status: 0 when every step ran and passed, else 1.
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
skip_bench=0 skip_demo=0 pack=0 step_timeout=0
bench_args="--quick"
filter="*"
ptx_filter="" ptx_filter_set=0
sanitizers="memcheck racecheck initcheck"
sanitize_filter=""
need_value() {  # need_value OPTION NARGS: an option's value must follow it
  if (($2 < 2)); then
    echo "option $1 needs a value" >&2
    exit 2
  fi
}
while (($#)); do
  case "$1" in
    --help) sed -n '2,/^[^#]/p' "$0" | sed '$d'; exit 0 ;;
    --skip-bench) skip_bench=1 ;;
    --skip-demo) skip_demo=1 ;;
    --pack) pack=1 ;;
    --bench-args) need_value "$1" $#; bench_args="$2"; shift ;;
    --tests-filter) need_value "$1" $#; filter="$2"; shift ;;
    --ptx-filter) need_value "$1" $#; ptx_filter="$2" ptx_filter_set=1; shift ;;
    --sanitizers) need_value "$1" $#; sanitizers="$2"; shift ;;
    --sanitize-filter) need_value "$1" $#; sanitize_filter="$2"; shift ;;
    --step-timeout)
      need_value "$1" $#
      if [[ ! $2 =~ ^[0-9]+$ ]]; then
        echo "--step-timeout needs whole seconds, got '$2'" >&2
        exit 2
      fi
      step_timeout="$2"; shift ;;
    *) echo "unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
  shift
done
((ptx_filter_set)) || ptx_filter=$filter
# Each tool's default filter: memcheck and initcheck (reads of device memory nothing wrote;
# first run in session 51) also run the C ABI's GPU tests; racecheck, far slower, the small
# cases only.
sanitize_filter_of() {
  if [[ -n $sanitize_filter ]]; then
    echo "$sanitize_filter"
  elif [[ $1 == memcheck || $1 == initcheck ]]; then
    echo '*Small*:CAbiGpu.*'
  else
    echo '*Small*'
  fi
}
declare -A result
failed=0
step() {  # step NAME LOGFILE COMMAND...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  timeout "$step_timeout" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  ((rc != 0)) && failed=1
  local note=""
  ((rc == 124 && step_timeout > 0)) && note=" (timed out)"
  result[$name]="rc=$rc $((SECONDS - t0))s$note"
  echo "== $name: rc=$rc$note ($((SECONDS - t0)) s), log $log"
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
if [[ -n $ptx_filter ]]; then
  step gpu_tests_ptx80 tests_ptx80.log env CUDA_FORCE_PTX_JIT=1 "$BIN/qmoe_gpu_tests" \
    --gtest_filter="$ptx_filter"
fi
for tool in $sanitizers; do
  step "$tool" "$tool.log" compute-sanitizer --tool "$tool" --error-exitcode 3 \
    "$BIN/qmoe_gpu_tests" --gtest_filter="$(sanitize_filter_of "$tool")"
done
((skip_demo == 0)) && step demo demo.log "$BIN/qmoe" demo
echo
echo "==================== summary ===================="
for k in "${!result[@]}"; do printf '%-18s %s\n' "$k" "${result[$k]}"; done | sort
sanitizer_logs=()
for tool in $sanitizers; do sanitizer_logs+=("$OUT/$tool.log"); done
grep -hE "^\[  (PASSED|FAILED) |tests? ran|ERROR SUMMARY|RACECHECK SUMMARY" "$OUT"/tests_*.log \
  "${sanitizer_logs[@]}" 2>/dev/null
if ((pack)); then
  packed=$(mktemp)
  tar czf "$packed" -C "$OUT" . && find "$OUT" -mindepth 1 -delete && mv "$packed" "$OUT/gpu_check.tgz"
fi
exit "$failed"
