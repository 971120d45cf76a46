#!/usr/bin/env bash
# Session 38's device call for branch s38-item-quant: vq2's codebook entry loaded and converted
# once per work item (ItemQuant), its scales staged as int2:g128:sym's (IntDecoder<2, 1>), and
# kernels without the formed-weight decoders (LUT, vector) for banks that hold none
# (with_decoder<kFormed>). Binaries travel packed in the ignored .carry/z, two archives (the
# carry limit, 64 MiB with the tree, holds two qmoe builds of different code beside the tests,
# not three), built here by build.sh:
#   s38a.txz: new/ (qmoe, qmoe_gpu_tests, libqmoe_c.so.1 of the branch; gpu preset: sm_90a +
#             compute_80 PTX) and vq/qmoe (main: 5d6ad79's device code, the nuq and vq2 decoders
#             in every kernel)
#   s38b.txz: new/qmoe and base/qmoe (session 34's device code, 0f47bc8: before those decoders)
# Device command (carry [".carry/z/s38a.txz"] or [".carry/z/s38b.txz"]):
#   tar xJf .carry/z/s38a.txz -C .carry && chmod +x .carry/*/* &&
#   QMOE_COMMIT=<branch commit> bash bench/results/s38-2026-12-05/run.sh PHASE
# Phases: check (s38a: GPU tests on sm_90a and on the compute_80 PTX, memcheck and synccheck),
# perf (s38a: a short bench of the formed formats; A/B of main against the branch on int and
# formed formats), all (check and perf), base (s38b: A/B of session 34's binary against the
# branch on int formats), sweep (either: the branch's full default sweep, for docs/results.md).
set -u
phase=${1:?check, perf, all, base or sweep}
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
ab() {  # ab NAME "BENCH ARGS" BASE_BIN NEW_BIN: 4 alternating rounds; table and runs to perf/
  OUT=$OUT/x timeout 200 bash scripts/gpu_ab.sh 4 "$2" "$3" "$4" >/dev/null 2>&1
  echo "ab $1 rc=$? ($((SECONDS - t0)) s)"
  cp "$OUT/x/ab/new.txt" "$OUT/perf/ab_$1.txt" && tail -2 "$OUT/perf/ab_$1.txt"
  cp "$OUT/x/ab.tgz" "$OUT/perf/ab_$1.tgz"
  rm -rf "${OUT:?}/x"
}
int_args="--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096"
int_args+=" --formats int4:g128,int2:g128,int3:g128,mixed:rr --reps 20"
if [[ $phase == perf || $phase == all ]]; then
  mkdir -p "$OUT/perf"
  timeout 60 .carry/new/qmoe bench --shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,16,4096 \
    --formats vq2,nuq2,nuq3,nuq4,int2:g128,int4:g128 --out "$OUT/perf" \
    --commit "${QMOE_COMMIT:-s38-item-quant}" >"$OUT/perf/bench.log" 2>&1
  echo "bench rc=$? ($((SECONDS - t0)) s)"
  ab int_main_vs_new "$int_args" .carry/vq/qmoe .carry/new/qmoe
  ab formed_main_vs_new \
    "--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096 --formats vq2,nuq2,nuq4 --reps 20" \
    .carry/vq/qmoe .carry/new/qmoe
fi
if [[ $phase == base ]]; then
  mkdir -p "$OUT/perf"
  ab int_base_vs_new "$int_args" .carry/base/qmoe .carry/new/qmoe
fi
if [[ $phase == sweep ]]; then
  mkdir -p "$OUT/sweep"
  timeout 500 .carry/new/qmoe bench --out "$OUT/sweep" --commit "${QMOE_COMMIT:-s38-item-quant}" \
    >"$OUT/sweep/bench.log" 2>&1
  echo "sweep rc=$? ($((SECONDS - t0)) s)"
  tail -4 "$OUT/sweep/bench.log"
fi
echo "total $((SECONDS - t0)) s"
