#!/usr/bin/env python3
"""The one-strip variant's A/B from the bench logs (run in this folder, after unpacking the
calls' tgz): new = the one-strip variant at three blocks per SM (084096e), base = main's kernels
(d250354). Session 54 ran new 1, base 1, new 2 on one warm H100 (the machine was taken back
before base 2), so both new rounds are compared with base 1. Prints the table (ab_table.txt)."""
import os, re, statistics


def load(f):
    d = {}
    for l in open(f):
        m = re.match(r"^(\S+) (\S+) T=(\d+)\s+([\d.]+) us\s+floor\s+([\d.]+) us.*SM (\d+) MHz", l)
        if m:
            d[(m[1], int(m[3]), m[2])] = (float(m[4]), float(m[5]), int(m[6]))
    return d


for kind in ("auto", "digits"):
    names = [n for n in ("base_1", "new_1", "base_2", "new_2")
             if os.path.exists(f"{n.split('_')[0]}_{kind}_{n.split('_')[1]}.log")]
    runs = {n: load(f"{n.split('_')[0]}_{kind}_{n.split('_')[1]}.log") for n in names}
    news = [n for n in names if n.startswith("new")]
    print(f"== {kind}: new / base, H100; times in us; ratios of each new round to the base round"
          " before it")
    print(f"{'shape':18s} {'T':>4s} {'format':10s} " + " ".join(f"{n:>8s}" for n in names) +
          " " + " ".join(f"{'r' + n[-1]:>6s}" for n in news))
    ratios, t1 = [], []
    for k in sorted(runs["base_1"], key=lambda k: (k[0], k[2], k[1])):
        if not all(k in runs[n] for n in names):
            continue
        rs = []
        for n in news:
            base = runs["base_2"] if n == "new_2" and "base_2" in runs else runs["base_1"]
            rs.append(runs[n][k][0] / base[k][0])
        ratios += rs
        if k[1] == 1:
            t1 += rs
        print(f"{k[0]:18s} {k[1]:4d} {k[2]:10s} " + " ".join(f"{runs[n][k][0]:8.1f}" for n in names)
              + " " + " ".join(f"{r:6.3f}" for r in rs))
    if ratios:
        print(f"ratio new/base over {len(ratios)}: median {statistics.median(ratios):.3f} "
              f"min {min(ratios):.3f} max {max(ratios):.3f}")
    if t1:
        print(f"T = 1 rows: median {statistics.median(t1):.3f}")
    print()
