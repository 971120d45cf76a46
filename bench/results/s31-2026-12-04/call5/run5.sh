#!/usr/bin/env bash
# Session 31 call 5: the small shapes' down projection at T = 1-6 with its variant forced
# (QMOE_DIAG_VARIANT, a diagnostic build of c3832a3), 3 rounds in rotating order, kAuto beside.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
B=.carry/new/qmoe
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
mkdir -p $OUT/v
t0=$SECONDS
VS=(auto 1:1 1:2 2:1 2:2 4:1 4:2 4:4)
for round in 1 2 3; do
  for spec in "deepseek-v2-lite:11" "olmoe:8" "qwen3-30b-a3b:6"; do
    IFS=: read -r shape kt <<< "$spec"
    n=${#VS[@]}
    for ((j = 0; j < n; ++j)); do
      v=${VS[$(( (j + round * 3) % n ))]}
      if [ $v = auto ]; then env=""; else env="$kt:$v"; fi
      QMOE_DIAG_VARIANT=$env $B bench --shapes $shape --tokens 1,2,3,4,6 --formats int4:g128,int3:g128,int2:g128,int8:g128 --reps 15 --out $OUT/v/run > /dev/null 2>&1 || echo "fail $shape $v"
      mv $OUT/v/run/*.json $OUT/v/${shape}_${v/:/-}_$round.json; rm -rf $OUT/v/run
    done
  done
  echo "round $round ($((SECONDS-t0)) s)"
done
tar czf $OUT/v.tgz -C $OUT v && rm -rf $OUT/v
echo "total $((SECONDS-t0)) s"
