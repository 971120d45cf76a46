#!/usr/bin/env bash
# Session 30 call 3: full check of b98105c (tests sm_90a + PTX, memcheck, racecheck, demo, sweep),
# then a probe: the same int8 format twice in one run (does a row move with its pool's placement?).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
QMOE_BIN=.carry/new QMOE_COMMIT=b98105c OUT=$OUT/check bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | tail -22
tar xzf $OUT/check/gpu_check.tgz -C $OUT/check ./nvidia-h200-2026-12-04.json ./nvidia-h200-2026-12-04.csv 2>/dev/null
cp $OUT/check/nvidia-h200-2026-12-04.json $OUT/sweep.json; cp $OUT/check/nvidia-h200-2026-12-04.csv $OUT/sweep.csv
.carry/new/qmoe bench --shapes mixtral-8x7b,deepseek-v3 --tokens 1,4 --formats int8:g128:sym,int8:g128,int8:g128:sym,int8:g128 --reps 20 --out $OUT/probe > $OUT/probe.log 2>&1
grep -E "int8" $OUT/probe.log | grep -v baseline
