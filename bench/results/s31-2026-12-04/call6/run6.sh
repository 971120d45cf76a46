#!/usr/bin/env bash
# Session 31 call 6: data for a refit of the decode launch model. Gate/up launches of the five
# shapes and the down launches of Mixtral and DeepSeek-V3 (call 5 has the small shapes' down
# launches), each forced to 8 variants (QMOE_DIAG_VARIANT, the diagnostic build of call 5),
# kAuto beside, 3 rounds in rotating order, token counts with mean <= 8.
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
B=.carry/new/qmoe
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
mkdir -p $OUT/v
t0=$SECONDS
VS=(auto 1:1 1:2 2:2 4:1 4:2 4:4 4:8)
for round in 1 2 3; do
  for spec in "mixtral-8x7b:32:1,2,3,4,8,16" "mixtral-8x7b:112:1,2,3,4,8,16" "deepseek-v3:56:1,2,4,8,16" \
              "deepseek-v3:16:1,2,4,8,16" "deepseek-v2-lite:16:1,2,3,4,8,16" "olmoe:16:1,2,3,4,8,16" \
              "qwen3-30b-a3b:16:1,2,3,4,8,16"; do
    IFS=: read -r shape kt toks <<< "$spec"
    n=${#VS[@]}
    for ((j = 0; j < n; ++j)); do
      v=${VS[$(( (j + round * 3) % n ))]}
      if [ $v = auto ]; then env=""; else env="$kt:$v"; fi
      QMOE_DIAG_VARIANT=$env $B bench --shapes $shape --tokens $toks --formats int4:g128,int3:g128,int2:g128,int8:g128 --reps 15 --out $OUT/v/run > /dev/null 2>&1 || echo "fail $shape $kt $v"
      mv $OUT/v/run/*.json $OUT/v/${shape}_${kt}_${v/:/-}_$round.json; rm -rf $OUT/v/run
    done
  done
  echo "round $round ($((SECONDS-t0)) s)"
done
tar czf $OUT/v.tgz -C $OUT v && rm -rf $OUT/v
echo "total $((SECONDS-t0)) s"
