"""The gate/up launch's first-item start, two diagnostic logs side by side (gate_up_start.txt).

    python3 compare.py diagbase.log diag.log

Each log: `qmoe bench` of a diagnostic build (diag.patch), whose `diag` lines precede each row's
line: per launch (w13 = gate/up, w2 = down) the medians over its blocks of the cycle stamps.
Prints, per row both logs ran, the layer time and the gate/up launch's medians as base/new.
"""
import re
import sys

STAMPS = ("sched->item", "item->issued", "issued->fill")


def parse(path):
    rows, launches = {}, []
    for line in open(path, encoding="utf-8"):
        if line.startswith("diag qmoe"):
            launches.append({"launch": re.search(r"(w13|w2 )", line).group(1).strip()})
        elif line.startswith("diag   cyc") and launches:
            m = re.search(r"cyc (\S+ ?\S*)\s+min\s+(-?\d+) med\s+(-?\d+)", line)
            launches[-1][m.group(1).strip()] = int(m.group(3))
        elif "baseline" in line:
            launches = []
        elif re.match(r"^\S+ \S+ T=\d+ ", line):
            gate_up = [x for x in launches[-2:] if x["launch"] == "w13"]
            rows[" ".join(line.split()[:3])] = (gate_up[0] if gate_up else None,
                                                re.search(r"(\d+\.\d) us", line).group(1))
            launches = []
    return rows


base, new = parse(sys.argv[1]), parse(sys.argv[2])
print("median cycles over blocks with an item (thread 0), gate/up launch (w13); main's loop "
      "(s55-diag) vs the warm unit (s56-diag), one H100, same call order")
print(f"{'row':34s} {'layer us':>15s}" + "".join(f" {s:>13s}" for s in STAMPS) +
      f" {'warm unit':>9s}")
for key, (b, t_base) in base.items():
    if key not in new or b is None or new[key][0] is None:
        continue
    n, t_new = new[key]
    cells = "".join(f" {f'{b.get(s, -1):>5d}/{n.get(s, -1):<5d}':>13s}" for s in STAMPS)
    print(f"{key:34s} {t_base:>7s}/{t_new:<7s}{cells} {n.get('warm unit', -1):>9d}")
