#!/usr/bin/env bash
# Session 30 call 2: what the parameter blocks cost the decode kernel at T = 1-16 (one binary:
# int4/int8/int2 with zeros (g128), without (g128:sym) and per-channel (pc), bf16 beside them).
set -u
export LD_LIBRARY_PATH=$PWD/.carry/new
B=.carry/new/qmoe
nvidia-smi --query-gpu=name,clocks.sm,power.draw,temperature.gpu --format=csv,noheader
for r in 1 2; do
  t0=$SECONDS
  $B bench --shapes mixtral-8x7b,deepseek-v3,qwen3-30b-a3b --tokens 1,4,16 --formats bf16,int4:g128,int4:g128:sym,int4:pc,int8:g128,int8:g128:sym,int8:pc,int2:g128,int2:g128:sym,int2:pc --reps 20 --out $OUT/diag$r > $OUT/diag$r.log 2>&1
  echo "round $r rc=$? ($((SECONDS-t0)) s)"
  python3 scripts/results_table.py $OUT/diag$r/*.json > $OUT/diag$r.txt; cp $OUT/diag$r/*.json $OUT/diag$r.json
done
cat $OUT/diag1.txt $OUT/diag2.txt
