#!/usr/bin/env python3
"""Session 53's A/B from the bench logs (run in this folder, after unpacking the calls' tgz):
new = the one-strip variant at three blocks per SM, base = main's kernels (d250354). Rounds 1
and 2 alternate new and base on one warm H100. Prints ab_table.txt."""
import re, statistics


def load(f):
    d = {}
    for l in open(f):
        m = re.match(r"^(\S+) (\S+) T=(\d+)\s+([\d.]+) us\s+floor\s+([\d.]+) us.*SM (\d+) MHz", l)
        if m:
            d[(m[1], int(m[3]), m[2])] = (float(m[4]), float(m[5]), int(m[6]))
    return d


for kind in ("auto", "digits"):
    ratios, t1 = [], []
    print(f"== {kind}: new / base, H100, per round; times in us")
    print(f"{'shape':18s} {'T':>4s} {'format':10s} {'base1':>8s} {'new1':>8s} {'base2':>8s} "
          f"{'new2':>8s} {'r1':>6s} {'r2':>6s}")
    runs = [load(f"{s}_{kind}_{r}.log") for s, r in (("base", 1), ("new", 1), ("base", 2), ("new", 2))]
    b1, n1, b2, n2 = runs
    for k in sorted(b1, key=lambda k: (k[0], k[2], k[1])):
        if not all(k in x for x in (n1, b2, n2)):
            continue
        r1, r2 = n1[k][0] / b1[k][0], n2[k][0] / b2[k][0]
        ratios += [r1, r2]
        if k[1] == 1:
            t1 += [r1, r2]
        print(f"{k[0]:18s} {k[1]:4d} {k[2]:10s} {b1[k][0]:8.1f} {n1[k][0]:8.1f} {b2[k][0]:8.1f} "
              f"{n2[k][0]:8.1f} {r1:6.3f} {r2:6.3f}")
    if ratios:
        print(f"ratio new/base over {len(ratios)}: median {statistics.median(ratios):.3f} "
              f"min {min(ratios):.3f} max {max(ratios):.3f}")
    if t1:
        print(f"T = 1 rows: median {statistics.median(t1):.3f}")
    print()
