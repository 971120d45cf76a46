#!/usr/bin/env python3
"""Decode kernel alone against the tile kernel alone around kAuto's per-call boundary.

<shape>-decode.json / <shape>-prefill.json: `qmoe bench --shapes <shape> --tokens ...
--formats int4:g128,int3:g128,int2:g128,int8:g128 --reps 15 --kernel decode|prefill` at 53383bf
(one device call, H200), token counts chosen for means of 4, 6, 8, 10, 12 tokens per active
expert. Prints tile/decode time per row; kAuto's default picks one of the two per call
(cuda/kernels/kernel_split.cuh), so each row's time under the rule is one of these.
usage: compare.py [DIR]   (default: this file's folder)
"""
import glob
import json
import os
import sys

EXPERTS = {"mixtral-8x7b": (8, 2), "deepseek-v2-lite": (64, 6), "qwen3-30b-a3b": (128, 8),
           "olmoe": (64, 8), "deepseek-v3": (256, 8)}
here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
times = {}
for path in glob.glob(os.path.join(here, "*.json")):
    kernel = "decode" if path.endswith("-decode.json") else "prefill"
    for r in json.load(open(path))["rows"]:
        times.setdefault((r["format"], r["shape"], r["tokens"]), {})[kernel] = r
for key in sorted(times):
    fmt, shape, tokens = key
    experts, top_k = EXPERTS[shape]
    m = tokens * top_k
    t = times[key]
    pct = {k: 100 * t[k]["floor_us"] / t[k]["time_us"] for k in t}
    print(f"{fmt:10} {shape:17} T={tokens:4} mean={m / min(experts, m):5.1f}  "
          f"tile/decode {t['prefill']['time_us'] / t['decode']['time_us']:.2f}  "
          f"(decode {pct['decode']:.0f} %, tile {pct['prefill']:.0f} % of the floor)")
