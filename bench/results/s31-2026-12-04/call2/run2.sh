#!/usr/bin/env bash
# Session 31 call 2: every decode-kernel variant forced per launch (QMOE_DIAG_VARIANT="KT:cap:warps",
# a diagnostic build of c4f8c5d), kAuto otherwise; the bench's decode rows (mean <= 8 tokens per
# expert) of the five shapes. Results: sweep_<shape>.tgz (one JSON per shape x forced launch x variant).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
B=.carry/new/qmoe
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
mkdir -p $OUT/sweep
t0=$SECONDS
# shape:tokens:w13_ktiles:w2_ktiles
for spec in "mixtral-8x7b:1,2,3,4,6,8,12,16,24,32:32:112" "deepseek-v2-lite:1,2,4,8,16,32,64:16:11" \
            "qwen3-30b-a3b:1,2,4,8,16,32,64,128:16:6" "olmoe:1,2,4,8,16,32,64:16:8" \
            "deepseek-v3:1,2,4,8,16,32,64,128,256:56:16"; do
  IFS=: read -r shape toks kt13 kt2 <<< "$spec"
  for rep in 1 2; do
    $B bench --shapes $shape --tokens $toks --formats int4:g128,int3:g128,int8:g128,int2:g128 --reps 10 --out $OUT/sweep/run > /dev/null 2>&1
    mv $OUT/sweep/run/*.json $OUT/sweep/${shape}_auto_$rep.json; rm -rf $OUT/sweep/run
  done
  for kt in $kt13 $kt2; do
    for w in 1 2 4 8; do
      for cap in 1 2 4 8; do
        if [ $cap = 8 ]; then F=int2:g128; else F=int4:g128,int3:g128,int8:g128,int2:g128; fi
        QMOE_DIAG_VARIANT=$kt:$cap:$w $B bench --shapes $shape --tokens $toks --formats $F --reps 10 --out $OUT/sweep/run > $OUT/sweep/last.log 2>&1
        rc=$?
        if [ $rc = 0 ]; then mv $OUT/sweep/run/*.json $OUT/sweep/${shape}_${kt}_${cap}_${w}.json; else echo "fail $shape $kt $cap $w rc=$rc"; tail -2 $OUT/sweep/last.log; fi
        rm -rf $OUT/sweep/run
      done
    done
    echo "$shape kt=$kt done ($((SECONDS-t0)) s)"
  done
  rm -f $OUT/sweep/last.log
  tar czf $OUT/sweep_$shape.tgz -C $OUT sweep && rm -rf $OUT/sweep && mkdir -p $OUT/sweep
done
echo "total $((SECONDS-t0)) s"
