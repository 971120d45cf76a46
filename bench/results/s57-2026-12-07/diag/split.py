"""Session 57's diag: the first item's start split per launch (median cycles over blocks with an
item, thread 0), from diag.log (run.sh diag). A row's diag blocks precede its result line."""
import re
import sys

FIELDS = ["sched->item", "sched->lookup", "lookup->desc", "desc->switch", "switch->item",
          "item->issued", "issued->fill"]
rows, pending = [], []
launch = None
for line in open(sys.argv[1] if len(sys.argv) > 1 else "diag.log"):
    m = re.match(r"diag qmoe (w13|w2 ) grid=\d+ units=(\d+) early=(\d) R\*1000\+gw=(\d+)", line)
    if m:
        launch = {"name": m.group(1).strip(), "units": m.group(2), "early": m.group(3),
                  "rgw": m.group(4)}
        pending.append(launch)
        continue
    m = re.match(r"diag   cyc (\S+)\s+min\s+(-?\d+) med\s+(-?\d+) max", line)
    if m and launch is not None:
        launch[m.group(1)] = int(m.group(3))
        continue
    m = re.match(r"(\S+) (\S+) T=(\d+)\s+(\d+\.\d+) us", line)
    if m and pending:
        for lc in pending[-2:]:
            rows.append((f"{m.group(1)} {m.group(2)} T={m.group(3)}", m.group(4), lc))
        pending = []
print("median cycles (thread 0, blocks with an item), first item of each block; H100, 1980 MHz")
print(f"{'row':38s} {'layer us':>8s} {'launch':6s} {'early':5s} " +
      " ".join(f"{f:>13s}" for f in FIELDS))
for label, us, lc in rows:
    print(f"{label:38s} {us:>8s} {lc['name']:6s} {lc['early']:>5s} " +
          " ".join(f"{lc.get(f, -1):>13d}" for f in FIELDS))
