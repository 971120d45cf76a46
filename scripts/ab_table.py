#!/usr/bin/env python3
"""A/B table of two binaries' `qmoe bench` results, taken in one device call or in
alternating calls on one warm machine (scripts/gpu_ab_phase.sh).

usage: scripts/ab_table.py BASE1 NEW1 [BASE2 NEW2 ...]
Each argument is a bench output directory, its JSON, or the bench's log (its per-row lines:
time, floor and SM clock, where a device call could not bring the JSON back); pass the runs in
the order they ran
(alternating base and new). Per (shape, tokens, format) row: the median time of each side,
new / base, both % of the floor, the median SM clock of each side (MHz after the timed
replays; '-' where the run did not record it) and the raw times; last lines the median, min
and max ratio, and how many rows ran at clocks more than 5 % apart (the board's power cap
moves the clock by up to ~30 % within a sweep, so such rows compare clocks as much as code).
"""
import glob
import json
import re
import statistics
import sys

# A row of the bench's log: "<shape> <format> T=<tokens>  <time> us  floor  <floor> us (...)
# ... SM <mhz> MHz)" (report.cu).
LOG_ROW = re.compile(r"^(\S+) (\S+) T=(\d+)\s+([\d.]+) us\s+floor\s+([\d.]+) us.*SM (\d+) MHz")


def load(path):
    if path.endswith(".log"):
        rows = {}
        with open(path) as f:
            for line in f:
                m = LOG_ROW.match(line)
                if m:
                    rows[(m[1], int(m[3]), m[2])] = {
                        "time_us": float(m[4]), "floor_us": float(m[5]), "sm_mhz": int(m[6])}
        return rows
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
    print("%-17s %5s %-11s %9s %9s %8s %6s %6s %5s %5s %s" %
          ("shape", "T", "format", "base_us", "new_us", "new/base", "%flB", "%flN", "MHzB",
           "MHzN", "raw times"))
    ratios = []
    clock_apart = 0
    for k in keys:
        b = [r[k]["time_us"] for r in bases if k in r]
        n = [r[k]["time_us"] for r in news if k in r]
        floor = bases[0][k]["floor_us"]
        rb, rn = statistics.median(b), statistics.median(n)
        ratios.append(rn / rb)
        mb, mn = median_clock(bases, k), median_clock(news, k)
        if mb and mn and abs(mn / mb - 1) > 0.05:
            clock_apart += 1
        print("%-17s %5d %-11s %9.1f %9.1f %8.3f %5.0f%% %5.0f%% %5s %5s %s" %
              (k[0], k[1], k[2], rb, rn, rn / rb, 100 * floor / rb, 100 * floor / rn,
               "%d" % mb if mb else "-", "%d" % mn if mn else "-",
               " ".join("%.1f" % x for x in b + n)))
    print("median new/base %.3f, min %.3f, max %.3f" %
          (statistics.median(ratios), min(ratios), max(ratios)))
    print("rows with SM clocks more than 5 %% apart: %d of %d" % (clock_apart, len(keys)))


def median_clock(runs, key):
    """Median SM clock (MHz) of a row over runs, or None where no run recorded it."""
    mhz = [r[key].get("sm_mhz") for r in runs if key in r]
    mhz = [m for m in mhz if m is not None and m >= 0]
    return statistics.median(mhz) if mhz else None


if __name__ == "__main__":
    main(sys.argv[1:])
