#!/usr/bin/env bash
# Session 48's device calls (H100). Binaries travel packed in the ignored .carry/z (carry limit
# 64 MiB), built in build-s42 (gpu preset: sm_90a SASS + compute_80 PTX, Release):
#   s47b.txz (session 47) = t47b/{qmoe, ...}: main's kernels (3037091's);
#   s48a.txz = t48/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}: the 256-token tile multiplying short
#     token blocks at wgmma N = 64 / 128 by a branch per wgmma (not kept: notes/wgmma_ws_plan.md);
#   s48c.txz = t48c/{...}: branch s48-shortn (the one-strip tail launch, launch_with_tail;
#     tail_strips). (s48b, the same launch before tail_strips was factored out, never ran: no
#     device could be had for a while.)
#   device: bash bench/results/s48-2026-12-06/run.sh base   # carry [".carry/z/s47b.txz"]
#           bash bench/results/s48-2026-12-06/run.sh new    # carry [".carry/z/s48a.txz"], after base
#           bash bench/results/s48-2026-12-06/run.sh tail   # carry [".carry/z/s48c.txz"], after base
#           bash bench/results/s48-2026-12-06/run.sh fix    # carry [".carry/z/s48d.txz"]
#           bash bench/results/s48-2026-12-06/run.sh sweep  # carry [".carry/z/s48d.txz"]
# base: unpacks t47b/qmoe and nothing else.
# new (same warm machine): every GPU test of t48; then an A/B of the two qmoe binaries
# (4 alternating rounds) on the rows the 256-token tile takes (T = 1024-16384, every shape, int2/3/
# 4/8 and mixed:rr). Results: narrow/.
# tail: the same for t48c (results: tail/).
# tail's run of t48c failed one test: the new one-strip tail test's 256-token case had K = 4160,
# which int2:g128 does not divide (the bank was refused before any kernel ran); its 128-token case
# passed. s48d.txz = t48d/{...}: the same build with that K at 4224 (the kernels' source
# unchanged; the wgmma units were compiled again).
# fix: the 256-token tile and tail tests of t48d, memcheck of the tail tests, and a bench of int4
# at T = 1024 and 4096 on every shape with its cuBLAS baseline (prefill/).
# Then one call typed in by hand on the same warm machine (fix/racecheck_onestrip.log):
#   compute-sanitizer --tool racecheck .carry/t48d/qmoe_gpu_tests --gtest_filter='*OneStripTail*'
# sweep: the full default sweep of t48d (main's kernels at 6a53706) with its plot (sweep/).
# Between new and tail no machine could be started for ~50 minutes (7 failed starts, about a
# third of the session's device time).
set -u
phase=${1:?base|new|tail|fix|sweep}
export CUDA_CACHE_MAXSIZE=4294967296
# ab BUILD ARCHIVE: every GPU test of .carry/BUILD (unpacked from .carry/z/ARCHIVE), then the
# A/B of its qmoe against t47b/qmoe.
ab() {
  tar xJf ".carry/z/$2" -C .carry
  export LD_LIBRARY_PATH=$PWD/.carry/$1
  nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
  timeout 200 .carry/$1/qmoe_gpu_tests >"$OUT/tests.log" 2>&1
  echo "tests rc=$?"; tail -3 "$OUT/tests.log"
  grep -E "256TokenTile|Tail|FAILED" "$OUT/tests.log" | head -8
  [[ -x .carry/t47b/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
  bash scripts/gpu_ab.sh 4 "--shapes all --tokens 1024,4096,16384 --formats int4:g128,int8:g128,int3:g128,int2:g128,mixed:rr --reps 10" \
    .carry/t47b/qmoe .carry/$1/qmoe >"$OUT/ab.log" 2>&1
  echo "ab rc=$?"; tail -80 "$OUT/ab/$1.txt"
  rm -rf "$OUT/ab"
}
case $phase in
  base)
    tar xJf .carry/z/s47b.txz -C .carry t47b/qmoe && ls -l .carry/t47b ;;
  new) ab t48 s48a.txz ;;
  tail) ab t48c s48c.txz ;;
  fix)
    tar xJf .carry/z/s48d.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t48d
    timeout 120 .carry/t48d/qmoe_gpu_tests --gtest_filter='*256TokenTile*:*Tail*' >"$OUT/tests.log" 2>&1
    echo "tests rc=$?"; grep -E "^\[ +(OK|FAILED|PASSED) |Failure" "$OUT/tests.log" | head -12
    timeout 150 compute-sanitizer --tool memcheck .carry/t48d/qmoe_gpu_tests \
      --gtest_filter='*Tail*' >"$OUT/memcheck.log" 2>&1
    echo "memcheck rc=$?"; tail -2 "$OUT/memcheck.log"
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    timeout 90 .carry/t48d/qmoe bench --shapes all --tokens 1024,4096 --formats int4:g128 \
      --commit s48-tail-f4397a6 --out "$OUT/prefill" >"$OUT/prefill.log" 2>&1
    echo "bench rc=$?"; tail -14 "$OUT/prefill.log" ;;
  sweep)
    [[ -x .carry/t48d/qmoe ]] || tar xJf .carry/z/s48d.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t48d
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    timeout 200 .carry/t48d/qmoe bench --commit s48-tail-6a53706 --out "$OUT/sweep" >"$OUT/sweep.log" 2>&1
    echo "sweep rc=$?"; tail -2 "$OUT/sweep.log"
    python3 scripts/plot_results.py "$OUT"/sweep/*.json && echo plotted
    python3 scripts/targets_table.py "$OUT"/sweep/*.json ;;
esac
