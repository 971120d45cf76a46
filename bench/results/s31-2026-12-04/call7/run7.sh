#!/usr/bin/env bash
# Session 31 call 7: the decode/tile boundary re-measured on HEAD (60b57e3's binaries): each row at
# means of ~6-20 tokens per expert run with --kernel auto, decode and prefill, 2 rounds in
# rotating order.
set -u
B=.carry/new/qmoe
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
mkdir -p $OUT/k
t0=$SECONDS
KS=(auto decode prefill)
for round in 1 2; do
  for spec in "mixtral-8x7b:24,32,40,48,64,80" "deepseek-v2-lite:64,85,107,128,171,213" \
              "qwen3-30b-a3b:96,128,160,192,256,320" "olmoe:48,64,80,96,128,160" \
              "deepseek-v3:192,256,320,384,512,640"; do
    IFS=: read -r shape toks <<< "$spec"
    for ((j = 0; j < 3; ++j)); do
      k=${KS[$(( (j + round) % 3 ))]}
      $B bench --kernel $k --shapes $shape --tokens $toks --formats bf16,int4:g128,int3:g128,int2:g128,int8:g128,mixed:rr --reps 10 --out $OUT/k/run > /dev/null 2>&1 || echo "fail $shape $k"
      mv $OUT/k/run/*.json $OUT/k/${shape}_${k}_$round.json; rm -rf $OUT/k/run
    done
  done
  echo "round $round ($((SECONDS-t0)) s)"
done
tar czf $OUT/k.tgz -C $OUT k && rm -rf $OUT/k
echo "total $((SECONDS-t0)) s"
