#!/usr/bin/env bash
# Session 31 call 1: choose_variant counts items over the expected active experts
# (E (1 - (1 - 1/E)^m)) instead of min(E, m). GPU suite of new, then A/B against HEAD (c4f8c5d).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
T=.carry/new/qmoe_gpu_tests
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
t0=$SECONDS
$T --gtest_filter='GpuKernels.*:DecodeVariant*:KernelSplit*' > $OUT/suite.txt 2>&1; echo "suite rc=$? ($((SECONDS-t0)) s)"
grep -E "^\[  FAILED|PASSED|tests ran" $OUT/suite.txt | tail -8
ab() { t1=$SECONDS; OUT=$OUT/$1 bash scripts/gpu_ab.sh 2 "$2 --reps 15" .carry/base/qmoe .carry/new/qmoe > $OUT/ab_$1_log.txt 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; rm -rf $OUT/$1; echo "ab $1 ($((SECONDS-t1)) s)"; cat $OUT/ab_$1.txt; }
ab s "--shapes deepseek-v2-lite,qwen3-30b-a3b,olmoe --tokens 6,8,16,24 --formats int4:g128,int2:g128"
ab m "--shapes mixtral-8x7b --tokens 3,4,6 --formats int4:g128,int2:g128"
ab d "--shapes deepseek-v3 --tokens 6,16,64 --formats int4:g128,int2:g128"
echo "total $((SECONDS-t0)) s"
