#!/usr/bin/env bash
# Session 30 call 5: the tile kernel's scale / zero loads with 32-bit entries, unpredicated.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
T=.carry/new/qmoe_gpu_tests
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
t0=$SECONDS
$T --gtest_filter='GpuKernels.*:Wgmma*' > $OUT/suite.txt 2>&1; echo "suite rc=$? ($((SECONDS-t0)) s)"
grep -E "^\[  FAILED|PASSED|tests ran" $OUT/suite.txt | tail -8
F=int2:g128,int3:g128,int4:g128,int8:g128
ab() { OUT=$OUT/$1 bash scripts/gpu_ab.sh 4 "$2 --formats $F --reps 15" .carry/base/qmoe .carry/new/qmoe > $OUT/ab_$1_log.txt 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; cat $OUT/ab_$1.txt; }
ab m "--shapes mixtral-8x7b --tokens 64,128,256,512,4096"
ab o "--shapes olmoe,deepseek-v2-lite,qwen3-30b-a3b --tokens 256,512"
ab d "--shapes deepseek-v3 --tokens 1024,4096"
