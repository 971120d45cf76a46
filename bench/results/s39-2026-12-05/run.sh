#!/usr/bin/env bash
# Session 39's device calls for branch s39-lut-prmt (the LUT decoders' lookups by PRMT selectors,
# byte_perm as inline PTX). Binaries travel packed in the ignored .carry/z, one archive a call
# (the carry limit is 64 MiB and each stripped build is ~35 MB packed):
#   s39a.txz: n39/qmoe_gpu_tests, n39/libqmoe_c.so.1 (the branch; gpu preset: sm_90a + compute_80
#             PTX);  s39c.txz: m39/qmoe (main's device code, bf3d7e3: this session's sweep);
#   s39d.txz: n39/qmoe (the branch).
# Device command, on one warm machine in turn (the later phases use what the earlier extracted):
#   bash bench/results/s39-2026-12-05/run.sh check   # carry [".carry/z/s39a.txz"]
#   bash bench/results/s39-2026-12-05/run.sh race    # carry [".carry/z/s39c.txz"]
#   bash bench/results/s39-2026-12-05/run.sh ab      # carry [".carry/z/s39d.txz"]
# check: scripts/gpu_check.sh (GPU tests on sm_90a; dequantize, LUT and per-format tests on the
# compute_80 PTX; memcheck), packed as gpu_check.tgz. race: racecheck and memcheck on gpu_check's
# default filters (race.tgz). ab: main against the branch, 4 alternating rounds (ab.tgz,
# ab_table.txt).
set -u
phase=${1:?check, race or ab}
export CUDA_CACHE_MAXSIZE=4294967296
for a in .carry/z/*.txz; do tar xJf "$a" -C .carry; done
chmod +x .carry/*/*
case $phase in
  check)
    QMOE_BIN=.carry/n39 bash scripts/gpu_check.sh --skip-bench --skip-demo \
      --ptx-filter '*Dequant*:LutDecode.*:*PerFormat*' --sanitizers memcheck \
      --sanitize-filter 'GpuKernels.DequantIsBitIdenticalToCpuRef:GpuKernels.GroupedGemmMatchesReferenceMixedBank' \
      --step-timeout 300 --pack
    echo "gpu_check rc=$?" ;;
  race)
    OUT=$OUT/r QMOE_BIN=.carry/n39 bash scripts/gpu_check.sh --skip-bench --skip-demo \
      --tests-filter 'LutDecode.*' --ptx-filter '' --sanitizers "memcheck racecheck" \
      --step-timeout 200 >"$OUT/race.log" 2>&1
    echo "race rc=$?"
    tail -6 "$OUT/race.log"
    tar czf "$OUT/race.tgz" -C "$OUT" r && rm -rf "${OUT:?}/r" ;;
  ab)
    args="--shapes mixtral-8x7b,qwen3-30b-a3b,olmoe --tokens 1,4,16,4096"
    args+=" --formats nuq2,nuq3,nuq4,int2:g128,int4:g128 --reps 20"
    OUT=$OUT/x timeout 300 bash scripts/gpu_ab.sh 4 "$args" .carry/m39/qmoe .carry/n39/qmoe \
      >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"
    cp "$OUT/x/ab.tgz" "$OUT/" && cp "$OUT/x/ab/n39.txt" "$OUT/ab_table.txt" && rm -rf "${OUT:?}/x"
    tail -2 "$OUT/ab_table.txt" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
