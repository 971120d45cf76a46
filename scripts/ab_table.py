#!/usr/bin/env python3
"""A/B table of two binaries' `qmoe bench` results, taken in one device call.

usage: scripts/ab_table.py BASE1 NEW1 [BASE2 NEW2 ...]
Each argument is a bench output directory or its JSON; pass the runs in the order they ran
(alternating base and new). Per (shape, tokens, format) row: the median time of each side,
new / base, both % of the floor, and the raw times; last line the median, min and max ratio.
"""
import glob
import json
import statistics
import sys


def load(path):
    if not path.endswith(".json"):
        path = glob.glob(path + "/*.json")[0]
    with open(path) as f:
        return {(r["shape"], r["tokens"], r["format"]): r for r in json.load(f)["rows"]}


def main(paths):
    if len(paths) < 2 or len(paths) % 2:
        sys.exit(__doc__)
    runs = [load(p) for p in paths]
    bases, news = runs[0::2], runs[1::2]
    keys = sorted(set(bases[0]) & set(news[0]))
    print("%-17s %5s %-11s %9s %9s %8s %6s %6s %s" %
          ("shape", "T", "format", "base_us", "new_us", "new/base", "%flB", "%flN", "raw times"))
    ratios = []
    for k in keys:
        b = [r[k]["time_us"] for r in bases if k in r]
        n = [r[k]["time_us"] for r in news if k in r]
        floor = bases[0][k]["floor_us"]
        rb, rn = statistics.median(b), statistics.median(n)
        ratios.append(rn / rb)
        print("%-17s %5d %-11s %9.1f %9.1f %8.3f %5.0f%% %5.0f%% %s" %
              (k[0], k[1], k[2], rb, rn, rn / rb, 100 * floor / rb, 100 * floor / rn,
               " ".join("%.1f" % x for x in b + n)))
    print("median new/base %.3f, min %.3f, max %.3f" %
          (statistics.median(ratios), min(ratios), max(ratios)))


if __name__ == "__main__":
    main(sys.argv[1:])
