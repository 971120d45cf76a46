#!/usr/bin/env bash
# Session 31 call 3: choose_variant also considers half the rule's warps where that gives one
# round of items filling >= 3/4 of the grid (nominal and expected active experts). GPU suite of
# new, then A/B against HEAD (c4f8c5d), 4 rounds.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
T=.carry/new/qmoe_gpu_tests
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
t0=$SECONDS
$T --gtest_filter='GpuKernels.*:DecodeVariant*:KernelSplit*' > $OUT/suite.txt 2>&1; echo "suite rc=$? ($((SECONDS-t0)) s)"
grep -E "^\[  FAILED|PASSED|tests ran" $OUT/suite.txt | tail -8
F=int4:g128,int3:g128,int2:g128,int8:g128,mixed:rr
ab() { t1=$SECONDS; OUT=$OUT/$1 bash scripts/gpu_ab.sh 4 "$2 --formats $F --reps 20" .carry/base/qmoe .carry/new/qmoe > $OUT/ab_$1_log.txt 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; rm -rf $OUT/$1 $OUT/ab_$1_log.txt; echo "ab $1 ($((SECONDS-t1)) s)"; cat $OUT/ab_$1.txt; }
ab m "--shapes mixtral-8x7b --tokens 1,2,4,16"
ab o "--shapes olmoe --tokens 4,8,16,32,64"
ab d "--shapes deepseek-v3 --tokens 1,2,4"
ab s "--shapes deepseek-v2-lite,qwen3-30b-a3b --tokens 1,4,16"
echo "total $((SECONDS-t0)) s"
