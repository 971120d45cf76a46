#!/usr/bin/env python3
"""Per-call kernel choice of kAuto (cuda/kernels/kernel_split.cuh) fitted to runs/*.json.

Each runs/<kernel>.json is `qmoe bench --kernel <kernel>` over the same rows (5 shapes x
T = 8..384 x int2/int4/int8/bf16, H200, commit cd233a3): prefill and decode alone, and
auto<N> = the per-expert threshold N. For each format and each boundary B, "decode for every
expert when m <= B * min(E, m), else the tile kernel" is scored by its summed time against
auto16 (the old default) and against the best of all runs per row.
usage: fit_split.py [DIR]   (default: this file's runs/)
"""
import glob
import json
import os
import sys

TOP = {"mixtral-8x7b": (8, 2), "deepseek-v2-lite": (64, 6), "qwen3-30b-a3b": (128, 8),
       "olmoe": (64, 8), "deepseek-v3": (256, 8)}
runs_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "runs")
times = {}
for path in glob.glob(os.path.join(runs_dir, "*.json")):
    kernel = os.path.basename(path)[:-5]
    for r in json.load(open(path))["rows"]:
        times.setdefault((r["shape"], r["tokens"], r["format"]), {})[kernel] = r["time_us"]
for fmt in sorted({k[2] for k in times}):
    print(fmt)
    for bound in [0, 4, 6, 8, 10, 12, 16, 10**9]:
        total = old = best = 0.0
        worst, worst_row = 0.0, None
        for key, t in times.items():
            if key[2] != fmt:
                continue
            experts, top_k = TOP[key[0]]
            m = key[1] * top_k
            choice = "decode" if m <= bound * min(experts, m) else "prefill"
            total += t[choice]
            old += t["auto16"]
            best += min(t.values())
            if t[choice] / t["auto16"] > worst:
                worst, worst_row = t[choice] / t["auto16"], key[:2]
        label = "tile always" if bound == 0 else "decode always" if bound > 1e6 else f"B = {bound}"
        print(f"  {label:14} summed time {total / old:.3f} of auto16 (best per row "
              f"{best / old:.3f}), worst row {worst:.2f}x {worst_row}")
