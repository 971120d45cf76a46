#!/usr/bin/env bash
# Session 35's device calls, one phase per call (each under the 600 s limit). Binaries, packed in
# the ignored .carry/z (carry [".carry/z"]):
#   lut.txz -> .carry/lut: gpu-preset (sm_90a + compute_80 PTX) qmoe, qmoe_gpu_tests and
#              libqmoe_c.so.1 of branch s35-lut (the LUT (nuq) device decoder)
#   ab.txz  -> .carry/base/qmoe (main at f400cd1, built here the same way), .carry/lut/qmoe
# Device command:
#   for z in .carry/z/*.txz; do tar xJf $z -C .carry; done && chmod +x .carry/*/* &&
#   bash bench/results/s35-2026-12-05/run.sh PHASE
# Phases:
#   sweep   the full default sweep of s35-lut (docs/results.md's tables predate session 34's two
#           kernel changes)
#   lut     scripts/gpu_check.sh on .carry/lut: GPU tests on sm_90a and the compute_80 PTX (nuq
#           in every per-format test, a mixed bank with nuq), memcheck, racecheck, demo, and a
#           short bench of nuq2/3/4 beside int2/int4
#   ab      base against lut on int formats, decode and prefill rows: the registry's three new
#           decoder cases and the decode kernel's item count for LUT decoders touch every kernel
set -u
phase=${1:?sweep, lut, ab or final}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS
case $phase in
  sweep)
    LD_LIBRARY_PATH=$PWD/.carry/lut timeout 580 .carry/lut/qmoe bench --out "$OUT" \
      --commit "${QMOE_COMMIT:-s35-lut}" >"$OUT/bench.log" 2>&1
    echo "sweep rc=$? ($((SECONDS - t0)) s)"
    tail -4 "$OUT/bench.log"
    ;;
  lut)
    QMOE_BIN=.carry/lut QMOE_COMMIT=${QMOE_COMMIT:-lut} OUT=$OUT/check timeout 580 \
      bash scripts/gpu_check.sh --pack --bench-args "--shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 1,16,256,4096 --formats nuq2,nuq3,nuq4,int2:g128,int4:g128" 2>&1 |
      grep -E "^== |PASSED|FAILED|ERROR SUMMARY|hazard" | head -40
    echo "lut ($((SECONDS - t0)) s)"
    ;;
  ab)
    OUT=$OUT/x timeout 560 bash scripts/gpu_ab.sh 2 \
      "--shapes mixtral-8x7b,qwen3-30b-a3b,deepseek-v2-lite --tokens 1,4,16,64,4096 --formats int4:g128,int2:g128,int8:g128,mixed:rr --reps 20" \
      .carry/base/qmoe .carry/lut/qmoe >/dev/null 2>&1
    echo "ab rc=$? ($((SECONDS - t0)) s)"
    cp "$OUT/x/ab/lut.txt" "$OUT/ab_lut.txt" && tail -4 "$OUT/ab_lut.txt"
    cp "$OUT/x/ab.tgz" "$OUT/ab_raw.tgz" 2>/dev/null
    rm -rf "${OUT:?}/x"
    ;;
  final)
    # After the lut phase: its 4 failing tests were the test's random banks (no LUT tables in
    # random_logical), fixed; the lookup back to 7fe0a8b's (the byte planes of 8e3f5fe put
    # spills into every int k-loop of the decode kernel, sass/); all.txz -> .carry/lut (that
    # build, stripped) and .carry/base (main at f400cd1).
    export LD_LIBRARY_PATH=$PWD/.carry/lut
    timeout 150 .carry/lut/qmoe_gpu_tests >"$OUT/tests_sm90.log" 2>&1
    echo "tests sm90 rc=$? ($((SECONDS - t0)) s)"
    grep -E "^\[  (PASSED|FAILED)" "$OUT/tests_sm90.log" | head
    OUT=$OUT/x timeout 200 bash scripts/gpu_ab.sh 2 \
      "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,16,4096 --formats int4:g128,int2:g128,mixed:rr --reps 20" \
      .carry/base/qmoe .carry/lut/qmoe >/dev/null 2>&1
    echo "ab rc=$? ($((SECONDS - t0)) s)"
    cp "$OUT/x/ab/lut.txt" "$OUT/ab_lut.txt" && tail -3 "$OUT/ab_lut.txt"
    rm -rf "${OUT:?}/x"
    timeout 60 .carry/lut/qmoe bench --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b \
      --tokens 1,16,256,4096 --formats nuq2,nuq3,nuq4 --out "$OUT" \
      --commit "${QMOE_COMMIT:-s35-lut}" >"$OUT/bench_nuq.log" 2>&1
    echo "bench nuq rc=$? ($((SECONDS - t0)) s)"
    CUDA_FORCE_PTX_JIT=1 timeout 200 .carry/lut/qmoe_gpu_tests \
      --gtest_filter='*PerFormat*:*MixedBank*:*Dequant*:LutDecode*' >"$OUT/tests_ptx80.log" 2>&1
    echo "tests ptx80 rc=$? ($((SECONDS - t0)) s)"
    grep -E "^\[  (PASSED|FAILED)" "$OUT/tests_ptx80.log" | head
    timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/lut/qmoe_gpu_tests \
      --gtest_filter='GpuKernels.DequantIsBitIdenticalToCpuRef' >"$OUT/memcheck.log" 2>&1
    echo "memcheck rc=$? ($((SECONDS - t0)) s)"
    grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck.log" | tail -2
    ;;
esac
echo "total $((SECONDS - t0)) s"
