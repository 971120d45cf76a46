#!/usr/bin/env bash
# Session 51's device calls, on a two-GPU machine (nvidia-h100-x2) so that the C ABI's
# one-device-per-bank test runs (it skips on one GPU). Binaries travel packed in the ignored
# .carry/z (carry limit 64 MiB), built in build-gpu (gpu preset: sm_90a SASS + compute_80 PTX,
# Release, QMOE_BUILD_TESTS=ON):
#   s51.txz = t51/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (strip, tar, xz -9: ~54 MB).
#   check: bash bench/results/s51-2026-12-06/run.sh check   # carry [".carry/z/s51.txz"]
#     every GPU test on sm_90a (session 50's review fixes with the bad-argument test's fix, the
#     C ABI bank's device check), memcheck of the bad-argument, device and first-offset tests,
#     the demo, `qmoe bench --quick` (logs: check/).
#   ptx: bash bench/results/s51-2026-12-06/run.sh ptx       # the same, on the warm machine
#     the changed tests on the compute_80 PTX (the trap and the shared-memory check are in the
#     mma.sync path too); JIT-compiling takes minutes, hence a call of its own (logs: ptx/).
set -u
phase=${1:?check|ptx|sanit|timers|last}
export CUDA_CACHE_MAXSIZE=4294967296
[[ -x .carry/t51/qmoe || ! -f .carry/z/s51.txz ]] || tar xJf .carry/z/s51.txz -C .carry
export QMOE_BIN=.carry/t51
export LD_LIBRARY_PATH=$PWD/.carry/t51${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi -L
case $phase in
  check)
    QMOE_COMMIT=s51 bash scripts/gpu_check.sh --step-timeout 200 --ptx-filter '' \
      --sanitizers memcheck --sanitize-filter '*RejectsBad*:*BadArguments*:*UploadedTo*:*FirstOffset*' |
      tail -25
    grep -E "UploadedTo|c_abi  (other|home)" "$OUT"/*.log | head -8 ;;
  ptx)
    CUDA_FORCE_PTX_JIT=1 timeout 540 .carry/t51/qmoe_gpu_tests \
      --gtest_filter='*RejectsBad*:*DeathTest*:*BadArguments*:*UploadedTo*' >"$OUT/tests_ptx80.log" 2>&1
    echo "ptx rc=$?"
    grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|tests? ran|SKIPPED \]" "$OUT/tests_ptx80.log" | head -12 ;;
esac
# sanit (added after check and ptx ran): the sanitizers the suite had not run or not lately, on
# the small cases: initcheck (never run before: reads of device memory nothing wrote),
# synccheck, racecheck; each with its own step limit (logs: sanit/).
if [[ $phase == sanit ]]; then
  # tool|filter|seconds; SANIT_STEPS picks some (the first call's loop split at the filter's ':':
  # initcheck did not run then).
  set -f
  for t in ${SANIT_STEPS:-initcheck|*Small*:CAbiGpu.*|240 synccheck|*Small*|120 racecheck|*Small*|180}; do
    IFS='|' read -r tool filter limit <<<"$t"
    timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 3 .carry/t51/qmoe_gpu_tests \
      --gtest_filter="$filter" >"$OUT/$tool.log" 2>&1
    echo "$tool rc=$?"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$OUT/$tool.log" | head -5
  done
fi
# timers: the decode kernel's phases on the H100 (the next measurement of notes/
# decode_pipeline_plan.md, session 50): a diagnostic build (timers/diag.patch on feac251:
# per-block %globaltimer stamps at entry, the PDL wait's return, the schedule's end, warp 0's first
# stage landed, the first item's end and exit; the benchmark prints the last two launches of each
# row's last graph replay; the stamps add ~0.5-3 us per layer, session 21). carry
# [".carry/z/s51d.txz"] (t51d/qmoe_diag: with main's qmoe beside it the archive was 74 MB, over
# the carry limit, so no plain run of the same rows in this call). Logs: timers/.
# last: initcheck again with the graph test's fix (its warm-up run read x before any upload:
#   the first initcheck's 17024 reports), then the GPU check of main's binaries. Binaries
#   t51m/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} of main at a14d986 (s51m.txz; s51e.txz, the
#   tests and the library of c4577b1, was packed for it first; with qmoe_diag beside them an
#   archive was 75 MB). carry [".carry/z/s51m.txz"]; then timers on the warm machine.
#   bench/results older than s51 left out of the tree (carry limit). Did not run in session 51.
if [[ $phase == timers ]]; then
  [[ -x .carry/t51d/qmoe_diag ]] || tar xJf .carry/z/s51d.txz -C .carry
  rows="--shapes all --tokens 1,4,16 --formats int4:g128,int8:g128,int2:g128 --reps 20"
  # shellcheck disable=SC2086
  timeout "${TIMERS_LIMIT:-280}" .carry/t51d/qmoe_diag bench $rows --out "$OUT/diag" >"$OUT/diag.log" 2>&1
  echo "diag rc=$?"
  grep -E "^(mixtral|qwen3|deepseek|olmoe).*int4" "$OUT/diag.log" | head -15
fi
if [[ $phase == last ]]; then
  tar xJf .carry/z/s51m.txz -C .carry
  export LD_LIBRARY_PATH=$PWD/.carry/t51m${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  timeout 150 compute-sanitizer --tool initcheck --error-exitcode 3 --print-limit 1000 \
    .carry/t51m/qmoe_gpu_tests --gtest_filter='*Small*:CAbiGpu.*' >"$OUT/initcheck.log" 2>&1
  echo "initcheck rc=$?"
  grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/initcheck.log" | head -5
  QMOE_BIN=.carry/t51m QMOE_COMMIT=a14d986 bash scripts/gpu_check.sh --step-timeout 200 \
    --ptx-filter '' --sanitizers memcheck | tail -12
fi
