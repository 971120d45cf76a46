#!/usr/bin/env python3
"""Registers and spill bytes per kernel instantiation from `nvcc -Xptxas -v` logs, side by side.

    scripts/ptxas_spills.py [--kernel SUBSTRING] NAME LOG [NAME LOG ...]

One row per entry function whose mangled name contains SUBSTRING (default grouped_gemv_kernel),
named by its demangled template arguments; one column per log: registers / spill stores / spill
loads (bytes). Spill counts say nothing about where the spills sit (a loop or once per item):
compare them before spending device time on a change that moves registers (session 56).
"""
import argparse
import re
import subprocess


def load(path, kernel):
    rows = {}
    lines = open(path, encoding="utf-8").read().splitlines()
    fn = None
    for i, line in enumerate(lines):
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            fn = m.group(1)
        if "Used" in line and fn and kernel in fn:
            spill = lines[i - 1]
            stores = int(re.search(r"(\d+) bytes spill stores", spill).group(1))
            loads = int(re.search(r"(\d+) bytes spill loads", spill).group(1))
            regs = int(re.search(r"Used (\d+) registers", line).group(1))
            name = subprocess.run(["c++filt", fn], capture_output=True, text=True).stdout.strip()
            m = re.search(r"<(.*)>", name)
            rows[m.group(1) if m else name] = (regs, stores, loads)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernel", default="grouped_gemv_kernel")
    ap.add_argument("pairs", nargs="+", help="NAME LOG pairs")
    a = ap.parse_args()
    if len(a.pairs) % 2:
        ap.error("give NAME LOG pairs")
    names, paths = a.pairs[0::2], a.pairs[1::2]
    tables = [load(p, a.kernel) for p in paths]
    width = max([len(n) for n in names] + [16]) + 2
    key_width = max([len(k) for k in tables[0]] + [8]) + 2
    print(f"{a.kernel}: registers / spill stores / spill loads (bytes)")
    print(f"{'variant':{key_width}s}" + "".join(f"{n:>{width}s}" for n in names))
    for k in tables[0]:
        cells = ["%d/%d/%d" % t[k] if k in t else "-" for t in tables]
        print(f"{k:{key_width}s}" + "".join(f"{c:>{width}s}" for c in cells))


if __name__ == "__main__":
    main()
