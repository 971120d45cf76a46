#!/usr/bin/env python3
"""How the decode kernel's launch-variant model (grouped_gemv.cuh choose_variant) was fitted.

perlaunch/ holds `qmoe bench --kernel decode` runs (H200, 2026-12-02, 5 shapes x T = 1, 4, 16 x
int4/int2/int8:g128 and bf16) of a diagnostic build that forced (R strips per warp, K-split warps)
on the w13 launches only (w13_R-W.json) or on the w2 launches only (w2_R-W.json), the other
projection left to the model of commit 8dd4001 (base_1/2.json). A row is w13 + w2, so
row(w13 forced) - row(base) is what the forced choice costs that one launch.

This script scores candidate models by the summed measured change of the launches they pick
(negative = faster than the 8dd4001 model), next to the per-launch best of the forced grid.
    python3 fit_variants.py
"""
import collections
import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {  # hidden, intermediate, experts, top-k
    "mixtral-8x7b": (4096, 14336, 8, 2),
    "deepseek-v2-lite": (2048, 1408, 64, 6),
    "qwen3-30b-a3b": (2048, 768, 128, 8),
    "olmoe": (2048, 1024, 64, 8),
    "deepseek-v3": (7168, 2048, 256, 8),
}
GRID = 264  # 132 SMs x 2 blocks
CONFIGS = [(r, w) for r in (4, 2, 1) for w in (8, 4, 2, 1)]


def load(name):
    rows = json.load(open(os.path.join(HERE, "perlaunch", name + ".json")))["rows"]
    return {(r["shape"], r["tokens"], r["format"]): r["time_us"] for r in rows}


def cdiv(a, b):
    return -(-a // b)


def launch(shape, proj, tokens):
    hidden, inter, experts, topk = SHAPES[shape]
    n, k = (2 * inter, hidden) if proj == "w13" else (hidden, inter)
    m = tokens * topk
    active = min(m, experts)
    mean = cdiv(m, active)
    chunks = 2 if mean > 8 else 1
    return n, k, active, chunks, cdiv(mean, 8 * chunks)


def fit_strips(fmt):  # strips per warp the format's tile allows (two 8 KB ring stages)
    return 1 if fmt == "bf16" else 2 if fmt.startswith("int8") else 4


def min_tile_warps(k_tiles):
    w = 8
    while w > 1 and k_tiles < 8 * w:
        w //= 2
    return w


def model(n, k, active, chunks, token_blocks, fmt, item_cost, tile_cost, max_factor):
    """Same loops and tie-breaks as choose_variant; tile_cost[r] per tile at r strips."""
    k_tiles, strips = cdiv(k, 128), cdiv(n, 16)
    lo = min_tile_warps(k_tiles)
    hi = lo * max_factor
    best = None
    w = lo
    while w <= hi and w <= 8 and (w == lo or w <= k_tiles):
        for cap in (4, 2, 1):
            if cap * chunks > 4:
                continue
            r = min(cap, fit_strips(fmt))
            items = active * token_blocks * cdiv(strips, r * (8 // w))
            cost = cdiv(items, GRID) * (item_cost + cdiv(k_tiles, w) * r * tile_cost[r] * chunks)
            if best is None or cost < best[0]:
                best = (cost, (cap, w))
        w *= 2
    return best[1]


def main():
    b1, b2 = load("base_1"), load("base_2")
    base = {key: (b1[key] + b2[key]) / 2 for key in b1}
    delta = {}
    for proj in ("w13", "w2"):
        for r, w in CONFIGS:
            run = load(f"{proj}_{r}-{w}")
            for key in base:
                delta[(proj, key, (r, w))] = run[key] - base[key]

    def score(pick):
        total, per_row = 0.0, collections.defaultdict(float)
        for key in base:
            for proj in ("w13", "w2"):
                n, k, active, chunks, tb = launch(key[0], proj, key[1])
                cap, w = pick(n, k, active, chunks, tb, key[2])
                d = delta[(proj, key, (min(cap, 4 // chunks), w))]
                total += d
                per_row[key] += d
        return total, per_row

    oracle = 0.0
    for key in base:
        for proj in ("w13", "w2"):
            chunks = launch(key[0], proj, key[1])[3]
            oracle += min(delta[(proj, key, c)] for c in CONFIGS if c[0] * chunks <= 4)
    old = {1: 300, 2: 251, 4: 234}
    kept = {1: 280, 2: 280, 4: 234}
    print(f"per-launch best of the forced grid: {oracle:8.1f} us summed over the 60 rows")
    for label, f, tc, mf in [
        ("8dd4001 rule (K split fixed, F = 0)", 0, old, 1),
        ("rounds x (F + run R c_R), K split fixed", 1000, kept, 1),
        ("... K split up to 2x (kept: F = 1000, c = 234/280/280)", 1000, kept, 2),
        ("... K split up to 4x", 1000, kept, 4),
        ("... K split up to 2x, F = 1000, c = 234/251/300", 1000, old, 2),
    ]:
        total, per_row = score(lambda *a, f=f, tc=tc, mf=mf: model(*a, f, tc, mf))
        worst = max(per_row, key=lambda key: per_row[key] / base[key])
        print(f"{label:58s} {total:8.1f} us; worst row {per_row[worst] / base[worst]:+.3f} {worst}")
    _, per_row = score(lambda *a: model(*a, 1000, kept, 2))
    print("\npredicted change per row (kept model), time / base - 1:")
    for key in sorted(per_row, key=lambda key: per_row[key] / base[key]):
        print(f"  {key[0]:18s} T={key[1]:<3d} {key[2]:10s} {per_row[key] / base[key]:+.3f}")


if __name__ == "__main__":
    main()
