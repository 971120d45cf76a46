#!/usr/bin/env bash
# Session 32 call 4: the full GPU check of the session's last commit (scripts/gpu_check.sh: GPU
# tests on sm_90a and on the compute_80 PTX, the default sweep, memcheck, racecheck, demo), then
# the default sweep on the PTX-only build of the same commit (the A100 code path on the H200).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
export CUDA_CACHE_MAXSIZE=4294967296
t0=$SECONDS
QMOE_BIN=.carry/new OUT=$OUT/check bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | tail -22
echo "check ($((SECONDS-t0)) s)"
timeout 170 .carry/ptx/qmoe bench --out $OUT/ptx --commit "${QMOE_COMMIT:-unknown}-ptx80" > $OUT/ptx_bench.log 2>&1
echo "ptx bench rc=$? ($((SECONDS-t0)) s)"
tar czf $OUT/ptx.tgz -C $OUT ptx && rm -rf $OUT/ptx
echo "total $((SECONDS-t0)) s"
