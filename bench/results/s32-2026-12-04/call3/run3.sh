#!/usr/bin/env bash
# Session 32 call 3: the mma.sync tile kernel (the A100 path) with two strips per warp for banks
# of 2/3/4/8-bit codes. (1) the GPU tests of the new build on sm_90a and on its compute_80 PTX
# (where the tile kernel is the mma.sync one); (2) A/B of the prefill rows on the PTX-only builds
# (base = 1ee12b3, w2 = the change), `--kernel prefill`, 2 rounds; (3) memcheck of the small
# tests on the PTX; (4) ncu of one launch of each build's tile kernel.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu --format=csv,noheader | tee $OUT/device.txt
t0=$SECONDS
.carry/new/qmoe_gpu_tests > $OUT/tests_sm90.log 2>&1
echo "tests sm90 rc=$? ($((SECONDS-t0)) s)"; tail -3 $OUT/tests_sm90.log
CUDA_FORCE_PTX_JIT=1 timeout 300 .carry/new/qmoe_gpu_tests > $OUT/tests_ptx80.log 2>&1
echo "tests ptx80 rc=$? ($((SECONDS-t0)) s)"; tail -3 $OUT/tests_ptx80.log; grep FAILED $OUT/tests_ptx80.log | head
for b in base w2; do .carry/$b/qmoe bench --kernel prefill --shapes olmoe --tokens 1024 --formats int4:g128,int2:g128,int3:g128,int8:g128,bf16 --reps 5 --out $OUT/jit > /dev/null 2>&1; done; rm -rf $OUT/jit
OUT=$OUT/p bash scripts/gpu_ab.sh 2 "--kernel prefill --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b,deepseek-v3 --tokens 1024,4096 --formats int4:g128,int2:g128,int3:g128,int8:g128,bf16 --reps 10" .carry/base/qmoe .carry/w2/qmoe
cp $OUT/p/ab/w2.txt $OUT/ab_prefill.txt; rm -rf $OUT/p
echo "ab ($((SECONDS-t0)) s)"
CUDA_FORCE_PTX_JIT=1 timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/new/qmoe_gpu_tests --gtest_filter='*Small*' > $OUT/memcheck_ptx80.log 2>&1
echo "memcheck ptx80 rc=$? ($((SECONDS-t0)) s)"; grep -E "ERROR SUMMARY|PASSED|FAILED" $OUT/memcheck_ptx80.log | tail -3
for b in base w2; do
  timeout 90 ncu --clock-control none --set full --import-source no -k "regex:grouped_gemm_tc" --launch-count 1 -o $OUT/ncu_$b -f .carry/$b/qmoe bench --kernel prefill --shapes mixtral-8x7b --tokens 4096 --formats int4:g128 --reps 5 --out $OUT/nb > /dev/null 2>&1
  ncu -i $OUT/ncu_$b.ncu-rep --page details > $OUT/ncu_$b.txt 2>&1; rm -rf $OUT/ncu_$b.ncu-rep $OUT/nb
  grep -E "Duration|Compute \(SM\) Throughput|Issue Slots Busy|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|Executed Ipc A" $OUT/ncu_$b.txt | head -8
done
echo "total $((SECONDS-t0)) s"
