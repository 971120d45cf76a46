#!/usr/bin/env bash
# Session 30 call 6: the lean scale/zero loads on the two-block tiles only (A/B against b98105c),
# then the full check of that build (tests sm_90a + PTX, memcheck, racecheck, demo, sweep).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
F=int2:g128,int3:g128,int4:g128,int8:g128
ab() { OUT=$OUT/$1 bash scripts/gpu_ab.sh 4 "$2 --formats $F --reps 15" .carry/base/qmoe .carry/new/qmoe > $OUT/ab_$1_log.txt 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; rm -rf $OUT/$1; cat $OUT/ab_$1.txt; }
ab m "--shapes mixtral-8x7b --tokens 64,128,256,512"
ab o "--shapes olmoe,deepseek-v2-lite,qwen3-30b-a3b --tokens 256,512"
ab d "--shapes deepseek-v3 --tokens 1024"
QMOE_BIN=.carry/new QMOE_COMMIT=${COMMIT:-unknown} OUT=$OUT/check bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | tail -12
tar xzf $OUT/check/gpu_check.tgz -C $OUT/check ./nvidia-h200-2026-12-04.json ./nvidia-h200-2026-12-04.csv 2>/dev/null
