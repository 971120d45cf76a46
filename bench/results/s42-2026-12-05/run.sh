#!/usr/bin/env bash
# Session 42's device calls, prepared without a device (none was lent in session 42): branch
# s42-tcq-tile (tcq on the mma.sync tile kernel: weights formed as RNE_fp16(v s) against the
# rotated x; kAuto's trellis split) on top of main (session 41's review fixes, not yet run on a
# GPU either). Binaries travel packed in the ignored .carry/z (the carry limit is 64 MiB):
#   s42t.txz: t42/qmoe_gpu_tests, t42/libqmoe_c.so.1, t42/qmoe (gpu preset: sm_90a SASS +
#             compute_80 PTX), built from the branch in build-s42.
#   here:   bash bench/results/s42-2026-12-05/run.sh pack
#   device: bash bench/results/s42-2026-12-05/run.sh check    # carry [".carry/z/s42t.txz"]
#           bash bench/results/s42-2026-12-05/run.sh kernels  # same machine, right after check
#           bash bench/results/s42-2026-12-05/run.sh lean     # check's tests alone (little time)
# check: scripts/gpu_check.sh: every GPU test on sm_90a; the trellis, chain and dequantize tests
# on the compute_80 PTX (the A100 path); memcheck on the small, trellis, chain, graph and C ABI
# tests; racecheck on the two small trellis tests; a bench of tcq beside int4 at decode to
# prefill sizes (kAuto: the trellis split); the demo. Packed as gpu_check.tgz.
# kernels: the same rows with each kernel forced (decode, prefill) and the split at 32 (check's
# bench is kAuto: the split at 16 above a mean of 16), to fit trellis_split's bounds
# (kernel_split.cuh): kernels.tgz.
# A later session's script may run these phases for its own build: RUN_TAG names its archive
# (.carry/z/s<tag>t.txz) and binaries (.carry/t<tag>), RUN_BRANCH the commit label, RUN_FORMATS
# the bench's formats, RUN_PTX_FILTER check's tests on the compute_80 PTX ('' for none: their JIT
# compile took 285 s on an H100 in session 43).
set -u
export CUDA_CACHE_MAXSIZE=4294967296
phase=${1:?pack, check, lean or kernels}
tag=${RUN_TAG:-42}
branch=${RUN_BRANCH:-s42-tcq-tile}
rows="--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 16,64,256,1024,4096 --formats ${RUN_FORMATS:-tcq2,tcq3.5,tcq4,int4:g128}"
case $phase in
  pack)
    set -e
    mkdir -p .carry/t$tag .carry/z
    cp build-s42/bin/qmoe_gpu_tests build-s42/bin/qmoe .carry/t$tag/
    cp -L "$(find build-s42 -name libqmoe_c.so.1 | head -1)" .carry/t$tag/
    strip .carry/t$tag/*
    XZ_OPT="-9 -T2" tar cJf .carry/z/s${tag}t.txz -C .carry t$tag/qmoe_gpu_tests t$tag/libqmoe_c.so.1 \
      t$tag/qmoe
    ls -l .carry/z/ ;;
  check)
    tar xJf .carry/z/s${tag}t.txz -C .carry && chmod +x .carry/t$tag/*
    QMOE_BIN=.carry/t$tag QMOE_COMMIT=$branch timeout 560 bash scripts/gpu_check.sh \
      --bench-args "$rows --reps 10" \
      --ptx-filter "${RUN_PTX_FILTER-*Trellis*:TrellisDecode.*:*DequantIsBitIdenticalToCpuRefSmall:*WaitsForThePreviousKernelSmall}" \
      --sanitizers memcheck \
      --sanitize-filter '*Small*:*Trellis*:*GroupedGemmIsGraphCapturable:CAbiGpu.*' \
      --step-timeout 200 --pack
    echo "gpu_check rc=$?"
    LD_LIBRARY_PATH=.carry/t$tag${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 150 \
      compute-sanitizer --tool racecheck --error-exitcode 1 .carry/t$tag/qmoe_gpu_tests \
      --gtest_filter='*TrellisDecodersMatchReferenceSmall:*TrellisTileKernelMatchesReference' \
      >"$OUT/racecheck_trellis.log" 2>&1
    echo "racecheck rc=$?"
    grep -E "RACECHECK SUMMARY|PASSED|FAILED" "$OUT/racecheck_trellis.log" | tail -4 ;;
  lean)
    # The check's tests alone, for a call with little device time left: every GPU test on
    # sm_90a, memcheck on the two small trellis tests.
    tar xJf .carry/z/s${tag}t.txz -C .carry && chmod +x .carry/t$tag/*
    QMOE_BIN=.carry/t$tag QMOE_COMMIT=$branch timeout 400 bash scripts/gpu_check.sh \
      --skip-bench --skip-demo --ptx-filter '' --sanitizers memcheck \
      --sanitize-filter '*TrellisDecodersMatchReferenceSmall:*TrellisTileKernelMatchesReference' \
      --step-timeout 240 --pack
    echo "gpu_check rc=$?" ;;
  kernels)
    [[ -x .carry/t$tag/qmoe ]] || { echo "no .carry/t$tag: run check on this machine first"; exit 2; }
    mkdir -p "$OUT/kernels"
    for k in decode prefill auto:32; do
      timeout 150 .carry/t$tag/qmoe bench $rows --reps 10 --kernel "$k" \
        --out "$OUT/kernels/${k/:/}" >"$OUT/kernels/${k/:/}.log" 2>&1
      echo "bench --kernel $k rc=$?"
    done
    tar czf "$OUT/kernels.tgz" -C "$OUT" kernels && rm -rf "${OUT:?}/kernels"
    ls -l "$OUT" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
