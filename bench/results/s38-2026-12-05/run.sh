#!/usr/bin/env bash
# Session 38's device call for branch s38-item-quant: vq2's codebook entry loaded and converted
# once per work item (ItemQuant), its scales staged as int2:g128:sym's (IntDecoder<2, 1>), and
# decode kernels without the formed-weight decoders (LUT, vector) for banks that hold none
# (with_decoder<kFormed>). Binaries travel packed in the ignored .carry/z (carry
# [".carry/z/s38.txz"], built here by build.sh):
#   new/  qmoe, qmoe_gpu_tests, libqmoe_c.so.1 of the branch (gpu preset: sm_90a + compute_80 PTX)
#   vq/   qmoe of main (5d6ad79's device code: the nuq and vq2 decoders in every kernel)
#   base/ qmoe of session 34's device code (0f47bc8: before them)
# Device command:
#   tar xJf .carry/z/s38.txz -C .carry && chmod +x .carry/*/* &&
#   QMOE_COMMIT=<branch commit> bash bench/results/s38-2026-12-05/run.sh all
# Phases: check (GPU tests on sm_90a and on the compute_80 PTX, memcheck and synccheck), perf (a
# short bench of the formed formats; A/B of base, main and the branch on int formats, and of
# main against the branch on the formed ones), all (both), sweep (the full default sweep of the
# branch's binary, for docs/results.md).
set -u
phase=${1:?check, perf, all or sweep}
export CUDA_CACHE_MAXSIZE=4294967296
export LD_LIBRARY_PATH=$PWD/.carry/new
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS
if [[ $phase == check || $phase == all ]]; then
  mkdir -p "$OUT/check"
  timeout 150 .carry/new/qmoe_gpu_tests >"$OUT/check/tests_sm90.log" 2>&1
  echo "tests sm90 rc=$? ($((SECONDS - t0)) s)"
  grep -E "^\[  (PASSED|FAILED)" "$OUT/check/tests_sm90.log" | head
  CUDA_FORCE_PTX_JIT=1 timeout 170 .carry/new/qmoe_gpu_tests \
    --gtest_filter='*PerFormat*:*MixedBank*:*Dequant*:*Decode*' >"$OUT/check/tests_ptx80.log" 2>&1
  echo "tests ptx80 rc=$? ($((SECONDS - t0)) s)"
  grep -E "^\[  (PASSED|FAILED)" "$OUT/check/tests_ptx80.log" | head
  for tool in memcheck synccheck; do
    timeout 90 compute-sanitizer --tool $tool --error-exitcode 3 .carry/new/qmoe_gpu_tests \
      --gtest_filter='GpuKernels.DequantIsBitIdenticalToCpuRef:GpuKernels.GroupedGemmMatchesReferenceMixedBank' \
      >"$OUT/check/$tool.log" 2>&1
    echo "$tool rc=$? ($((SECONDS - t0)) s)"
    grep -E "ERROR SUMMARY" "$OUT/check/$tool.log" | tail -1
  done
fi
if [[ $phase == perf || $phase == all ]]; then
  mkdir -p "$OUT/perf"
  timeout 60 .carry/new/qmoe bench --shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,16,4096 \
    --formats vq2,nuq2,nuq3,nuq4,int2:g128,int4:g128 --out "$OUT/perf" \
    --commit "${QMOE_COMMIT:-s38-item-quant}" >"$OUT/perf/bench.log" 2>&1
  echo "bench rc=$? ($((SECONDS - t0)) s)"
  OUT=$OUT/x timeout 200 bash scripts/gpu_ab.sh 4 \
    "--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096 --formats int4:g128,int2:g128,int3:g128,mixed:rr --reps 20" \
    .carry/base/qmoe .carry/vq/qmoe .carry/new/qmoe >/dev/null 2>&1
  echo "ab int rc=$? ($((SECONDS - t0)) s)"
  for n in vq new; do cp "$OUT/x/ab/$n.txt" "$OUT/perf/ab_int_base_vs_$n.txt" && tail -2 "$OUT/perf/ab_int_base_vs_$n.txt"; done
  cp "$OUT/x/ab.tgz" "$OUT/perf/ab_int.tgz"  # every run: main against the branch is computed here
  rm -rf "${OUT:?}/x"
  OUT=$OUT/x timeout 150 bash scripts/gpu_ab.sh 4 \
    "--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096 --formats vq2,nuq2,nuq4 --reps 20" \
    .carry/vq/qmoe .carry/new/qmoe >/dev/null 2>&1
  echo "ab formed rc=$? ($((SECONDS - t0)) s)"
  cp "$OUT/x/ab/new.txt" "$OUT/perf/ab_formed_main_vs_new.txt" && tail -2 "$OUT/perf/ab_formed_main_vs_new.txt"
  cp "$OUT/x/ab.tgz" "$OUT/perf/ab_formed.tgz"
  rm -rf "${OUT:?}/x"
fi
if [[ $phase == sweep ]]; then
  mkdir -p "$OUT/sweep"
  timeout 500 .carry/new/qmoe bench --out "$OUT/sweep" --commit "${QMOE_COMMIT:-s38-item-quant}" \
    >"$OUT/sweep/bench.log" 2>&1
  echo "sweep rc=$? ($((SECONDS - t0)) s)"
  tail -4 "$OUT/sweep/bench.log"
fi
echo "total $((SECONDS - t0)) s"
