#!/usr/bin/env bash
# The GPU check of the landed LUT commit (bef7d15), not run in session 39 (device time spent).
#   here:   bash bench/results/s39-2026-12-05/check_landed.sh pack
#           (builds sm_90a-only binaries in build-s39, ~30 min on 2 cores, and packs tests, lib
#           and qmoe into the ignored .carry/z/s39e.txz, ~28 MB: they share code, so xz -9 packs
#           the three in one block)
#   device: bash bench/results/s39-2026-12-05/check_landed.sh run   # carry [".carry/z/s39e.txz"]
#           (GPU tests on sm_90a, memcheck on the mixed-bank GEMM and dequantize, a short bench of
#           the nuq and int formats; no PTX run: the compute_80 path of the LUT logic passed in
#           27a5b1d's check)
set -euo pipefail
cd "$(dirname "$0")/../../.."
case ${1:?pack or run} in
  pack)
    cmake --preset gpu -B build-s39 -DCMAKE_CUDA_ARCHITECTURES=90a-real >/dev/null
    cmake --build build-s39 -j 2 --target qmoe_gpu_tests qmoe_cli
    mkdir -p .carry/n39b .carry/z
    cp build-s39/bin/qmoe_gpu_tests build-s39/bin/qmoe .carry/n39b/
    cp -L "$(find build-s39 -name libqmoe_c.so.1 | head -1)" .carry/n39b/
    strip .carry/n39b/*
    XZ_OPT="-9 -T1" tar cJf .carry/z/s39e.txz -C .carry n39b/qmoe_gpu_tests n39b/libqmoe_c.so.1 \
      n39b/qmoe
    ls -l .carry/z/s39e.txz ;;
  run)
    tar xJf .carry/z/s39e.txz -C .carry
    chmod +x .carry/n39b/*
    QMOE_BIN=.carry/n39b QMOE_COMMIT=bef7d15 bash scripts/gpu_check.sh \
      --bench-args "--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096 --formats nuq2,nuq3,nuq4,int2:g128,int4:g128" \
      --ptx-filter '' --sanitizers memcheck \
      --sanitize-filter 'GpuKernels.DequantIsBitIdenticalToCpuRef:GpuKernels.GroupedGemmMatchesReferenceMixedBank' \
      --skip-demo --step-timeout 200 --pack ;;
  *) echo "pack or run"; exit 2 ;;
esac
