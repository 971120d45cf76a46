#!/usr/bin/env bash
# Session 31 call 4: full GPU check of c3832a3 (tests on sm_90a and the compute_80 PTX, memcheck,
# racecheck, demo, the full benchmark sweep), then the A/B of call 3 again with the final rule.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
t0=$SECONDS
QMOE_BIN=.carry/new QMOE_COMMIT=c3832a3 OUT=$OUT/check bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | grep -E "^== |PASSED|FAILED|ERROR SUMMARY|hazard" | head -40
echo "check ($((SECONDS-t0)) s)"
F=int4:g128,int3:g128,int2:g128,int8:g128,mixed:rr
ab() { t1=$SECONDS; OUT=$OUT/$1 bash scripts/gpu_ab.sh 4 "$2 --formats $F --reps 20" .carry/base/qmoe .carry/new/qmoe > /dev/null 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; rm -rf $OUT/$1; echo "ab $1 ($((SECONDS-t1)) s)"; tail -3 $OUT/ab_$1.txt; }
ab m "--shapes mixtral-8x7b --tokens 1,2,4,16"
ab o "--shapes olmoe --tokens 4,8,16,32,64"
ab d "--shapes deepseek-v3 --tokens 1,2,4"
ab s "--shapes deepseek-v2-lite,qwen3-30b-a3b --tokens 1,4,16"
echo "total $((SECONDS-t0)) s"
