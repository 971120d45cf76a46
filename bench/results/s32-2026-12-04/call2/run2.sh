#!/usr/bin/env bash
# Session 32 call 2: the A100 code path (compute_80 PTX builds, JIT on the H200). kAuto's default
# there: pbase = the per-expert threshold of 16 (two launches), p12 / p14 = one kernel per call,
# the decode kernel up to a mean of 12 / 14 tokens per active expert, the tile kernel above.
# (a) each kernel alone at means 13-15 (call 1 has 4-32); (b) A/B pbase, p12, p14 at T = 1 and
# means 4-24, 2 rounds.
set -u
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
export CUDA_CACHE_MAXSIZE=4294967296
t0=$SECONDS
mkdir -p $OUT/k
# JIT the PTX once per binary into the cache before anything is timed.
for b in pbase p12 p14; do .carry/$b/qmoe bench --shapes olmoe --tokens 1,256 --formats int4:g128,int2:g128,int8:g128,bf16 --reps 5 --out $OUT/jit > /dev/null 2>&1; done
rm -rf $OUT/jit
echo "jit ($((SECONDS-t0)) s)"
for k in decode prefill; do
  for spec in "mixtral-8x7b:52,56,60" "deepseek-v2-lite:139,149,160" "qwen3-30b-a3b:208,224,240" \
              "olmoe:104,112,120" "deepseek-v3:416,448,480"; do
    IFS=: read -r shape toks <<< "$spec"
    .carry/pbase/qmoe bench --kernel $k --shapes $shape --tokens $toks --formats int4:g128,int2:g128,int8:g128,bf16 --reps 10 --out $OUT/k/run > /dev/null 2>&1 || echo "fail $shape $k"
    mv $OUT/k/run/*.json $OUT/k/${shape}_$k.json; rm -rf $OUT/k/run
  done
done
tar czf $OUT/k.tgz -C $OUT k && rm -rf $OUT/k
echo "boundary ($((SECONDS-t0)) s)"
for spec in "mixtral-8x7b:1,16,32,48,56,64,96" "deepseek-v2-lite:1,43,85,128,149,171,256" \
            "qwen3-30b-a3b:1,64,128,192,224,256,384" "olmoe:1,32,64,96,112,128,192" \
            "deepseek-v3:1,128,256,384,448,512,768"; do
  IFS=: read -r shape toks <<< "$spec"
  OUT=$OUT/ab_$shape bash scripts/gpu_ab.sh 2 "--shapes $shape --tokens $toks --formats int4:g128,int8:g128,bf16 --reps 10" .carry/pbase/qmoe .carry/p12/qmoe .carry/p14/qmoe > /dev/null 2>&1
  cp $OUT/ab_$shape/ab/p12.txt $OUT/ab12_$shape.txt; cp $OUT/ab_$shape/ab/p14.txt $OUT/ab14_$shape.txt
  rm -rf $OUT/ab_$shape
  echo "$shape ($((SECONDS-t0)) s)"; tail -1 $OUT/ab12_$shape.txt; tail -1 $OUT/ab14_$shape.txt
done
tar czf $OUT/ab.tgz -C $OUT $(cd $OUT && ls ab1*.txt) && rm -f $OUT/ab1*.txt
echo "total $((SECONDS-t0)) s"
