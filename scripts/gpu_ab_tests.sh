#!/usr/bin/env bash
# The GPU tests of one side of an A/B run phase by phase (scripts/gpu_ab_phase.sh): carried
# prebuilt binaries (use_carry: unpacked once per warm machine), the GPU suite on their sm_90a
# code, compute-sanitizer memcheck over MEMCHECK_FILTER, and the decode and mixed-bank tests on
# the compute_80 PTX (the A100 path, JIT-compiled). Logs in $OUT/new; their summaries printed.
#   usage: [PTX_FILTER=...] scripts/gpu_ab_tests.sh ARCHIVE DIR MEMCHECK_FILTER
# PTX_FILTER: the PTX run's tests (default the decode and mixed-bank ones; '*Decode*' alone
# skips the GEMM kernels' JIT, which takes minutes).
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
if (($# != 3)); then
  sed -n '2,8p' "$0"
  exit 2
fi
use_carry "$1" "$2" || exit 1
tests=".carry/$2/qmoe_gpu_tests"
mkdir -p "$OUT/new"
timeout 200 "$tests" >"$OUT/new/tests_sm90.log" 2>&1
echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/new/tests_sm90.log"
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 "$tests" --gtest_filter="$3" \
  >"$OUT/new/memcheck.log" 2>&1
echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" "$OUT/new/memcheck.log"
# The PTX run JIT-compiles the GEMM kernels in the first test that launches them (the mixed-bank
# test: ~405 s on an H100, session 58, bench/results/s58-2026-12-07/tests/tests_ptx80.log), where
# a 150 s limit stopped it.
CUDA_FORCE_PTX_JIT=1 timeout 450 "$tests" --gtest_filter="${PTX_FILTER:-*Decode*:*MixedBank*:*Small}" \
  >"$OUT/new/tests_ptx80.log" 2>&1
echo "ptx80 rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/new/tests_ptx80.log"
