#!/usr/bin/env bash
# Session 32 call 1: (a) the GPU tests of the new build (sm_90a); (b) A/B of adaptive_split's
# two-block condition counting the 32-token tile's 128-row items (base = bb0d715, new = the
# patch), Mixtral at means 8-11 and every shape at means ~8-10; (c) the default sweep on the
# compute_80 PTX build (the A100 code path, JIT on the H200).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
t0=$SECONDS
.carry/new/qmoe_gpu_tests --gtest_filter='KernelSplit*:DecodeVariant*:GpuKernels*:GroupedGemm*' > $OUT/tests.log 2>&1
echo "tests rc=$? ($((SECONDS-t0)) s)"; grep -E "PASSED|FAILED" $OUT/tests.log | tail -5
OUT=$OUT/m bash scripts/gpu_ab.sh 4 "--shapes mixtral-8x7b --tokens 32,33,34,36,38,40,42,44 --formats int4:g128,int3:g128,int2:g128,int8:g128,mixed:rr --reps 20" .carry/base/qmoe .carry/new/qmoe
cp $OUT/m/ab/new.txt $OUT/ab_mixtral.txt
OUT=$OUT/s bash scripts/gpu_ab.sh 2 "--shapes deepseek-v2-lite,qwen3-30b-a3b,olmoe,deepseek-v3 --tokens 96,107,128,160,320 --formats int4:g128,int2:g128 --reps 10" .carry/base/qmoe .carry/new/qmoe
cp $OUT/s/ab/new.txt $OUT/ab_others.txt
rm -rf $OUT/m $OUT/s
echo "ab done ($((SECONDS-t0)) s)"
export CUDA_CACHE_MAXSIZE=4294967296
timeout 420 .carry/ptx/qmoe bench --out $OUT/ptx --commit "${QMOE_COMMIT:-unknown}-ptx80" > $OUT/ptx_bench.log 2>&1
echo "ptx bench rc=$? ($((SECONDS-t0)) s)"; tail -5 $OUT/ptx_bench.log
# The A100 path's decode / tile boundary (kUnmeasuredDecodeMax = 16 per expert): each kernel
# alone and kAuto at means of ~4-32 tokens per active expert.
for k in auto decode prefill; do
  for spec in "mixtral-8x7b:16,32,48,64,96,128" "deepseek-v2-lite:43,85,128,171,256,341" \
              "qwen3-30b-a3b:64,128,192,256,384,512" "olmoe:32,64,96,128,192,256" "deepseek-v3:128,256,384,512,768,1024"; do
    IFS=: read -r shape toks <<< "$spec"
    timeout 120 .carry/ptx/qmoe bench --kernel $k --shapes $shape --tokens $toks --formats int4:g128,int2:g128,int8:g128,bf16 --reps 10 --out $OUT/ptx/k > /dev/null 2>&1 || echo "fail $shape $k"
    mv $OUT/ptx/k/*.json $OUT/ptx/${shape}_$k.json; rm -rf $OUT/ptx/k
  done
done
echo "ptx boundary ($((SECONDS-t0)) s)"
tar czf $OUT/ptx.tgz -C $OUT ptx && rm -rf $OUT/ptx
echo "total $((SECONDS-t0)) s"
