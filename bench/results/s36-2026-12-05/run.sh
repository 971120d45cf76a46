#!/usr/bin/env bash
# Session 36 left branch s36-vq-dev (session 35's nuq device decoder plus session 36's vq2 device
# decoder, merged with main) untested on a GPU: no device was lent. This is its device call,
# one phase per call (each under the 600 s limit), for a later session. Binaries travel packed
# in the ignored .carry/z (carry [".carry/z/s36.txz"]):
#   vq/   qmoe, qmoe_gpu_tests, libqmoe_c.so.1 of the branch (gpu preset: sm_90a + compute_80 PTX)
#   base/ qmoe of main at the branch's merge base (the same preset)
# Built here by bench/results/s36-2026-12-05/build.sh; rebuild them if the branch moves.
# Device command:
#   tar xJf .carry/z/s36.txz -C .carry && chmod +x .carry/*/* &&
#   QMOE_COMMIT=<branch commit> bash bench/results/s36-2026-12-05/run.sh PHASE
# Phases (one call each: each fits the 600 s limit):
#   check  GPU tests on sm_90a (nuq and vq2 in every per-format test, mixed banks with them),
#          the same on the compute_80 PTX for the per-format, mixed-bank and dequantize tests,
#          memcheck and synccheck (vq2's shuffles need whole warps) of the dequantize and GEMM
#          tests
#   perf   a short bench of vq2 and nuq2/4 beside int2/int4, and an A/B of main against the
#          branch on int formats (both decoders add cases to every kernel's switch)
# Land the branch (fast-forward main to it) when every test passes and the A/B shows no int
# regression; then results.md gets the bench rows.
set -u
phase=${1:?check or perf}
export CUDA_CACHE_MAXSIZE=4294967296
export LD_LIBRARY_PATH=$PWD/.carry/vq
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS
case $phase in
  check)
    timeout 150 .carry/vq/qmoe_gpu_tests >"$OUT/tests_sm90.log" 2>&1
    echo "tests sm90 rc=$? ($((SECONDS - t0)) s)"
    grep -E "^\[  (PASSED|FAILED)" "$OUT/tests_sm90.log" | head
    CUDA_FORCE_PTX_JIT=1 timeout 150 .carry/vq/qmoe_gpu_tests \
      --gtest_filter='*PerFormat*:*MixedBank*:*Dequant*:*Decode*' >"$OUT/tests_ptx80.log" 2>&1
    echo "tests ptx80 rc=$? ($((SECONDS - t0)) s)"
    grep -E "^\[  (PASSED|FAILED)" "$OUT/tests_ptx80.log" | head
    for tool in memcheck synccheck; do
      timeout 120 compute-sanitizer --tool $tool --error-exitcode 3 .carry/vq/qmoe_gpu_tests \
        --gtest_filter='GpuKernels.DequantIsBitIdenticalToCpuRef:GpuKernels.GroupedGemmMatchesReferenceMixedBank' \
        >"$OUT/$tool.log" 2>&1
      echo "$tool rc=$? ($((SECONDS - t0)) s)"
      grep -E "ERROR SUMMARY" "$OUT/$tool.log" | tail -1
    done
    ;;
  perf)
    timeout 90 .carry/vq/qmoe bench --shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,16,4096 \
      --formats vq2,nuq2,nuq4,int2:g128,int4:g128 --out "$OUT" \
      --commit "${QMOE_COMMIT:-s36-vq-dev}" >"$OUT/bench.log" 2>&1
    echo "bench rc=$? ($((SECONDS - t0)) s)"
    OUT=$OUT/x timeout 400 bash scripts/gpu_ab.sh 2 \
      "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,16,4096 --formats int4:g128,int2:g128,mixed:rr --reps 20" \
      .carry/base/qmoe .carry/vq/qmoe >/dev/null 2>&1
    echo "ab rc=$? ($((SECONDS - t0)) s)"
    cp "$OUT/x/ab/vq.txt" "$OUT/ab_vq.txt" && tail -3 "$OUT/ab_vq.txt"
    rm -rf "${OUT:?}/x"
    ;;
esac
echo "total $((SECONDS - t0)) s"
