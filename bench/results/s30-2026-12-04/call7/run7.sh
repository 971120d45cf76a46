#!/usr/bin/env bash
# Session 30 call 7: the lean scale / zero loads in the 256-token tile too (against de9dbff).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
T=.carry/new/qmoe_gpu_tests
t0=$SECONDS
$T --gtest_filter='GpuKernels.*:Wgmma*' > $OUT/suite.txt 2>&1; echo "suite rc=$? ($((SECONDS-t0)) s)"
grep -E "^\[  FAILED|PASSED|tests ran" $OUT/suite.txt | tail -8
ab() { OUT=$OUT/$1 bash scripts/gpu_ab.sh 4 "$2 --reps 10" .carry/base/qmoe .carry/new/qmoe > $OUT/ab_$1_log.txt 2>&1; cp $OUT/$1/ab/new.txt $OUT/ab_$1.txt; rm -rf $OUT/$1; cat $OUT/ab_$1.txt; }
ab m "--shapes mixtral-8x7b --tokens 1024,4096 --formats int2:g128,int3:g128,int4:g128"
ab o "--shapes deepseek-v2-lite,olmoe --tokens 16384 --formats int3:g128,int4:g128"
