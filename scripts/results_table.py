#!/usr/bin/env python3
"""Markdown tables of one `qmoe bench` results file, for docs/results.md.

  python3 scripts/results_table.py bench/results/<device>-<date>.json

One table per shape: rows = token count T, columns = formats, each cell
"% of floor · speed-up over bf16 cuBLAS" (floor / time, baseline / time), so the numbers in
the docs are exactly those of the committed file.
"""
from results_file import load_results


def main():
    data = load_results(__doc__)
    if data is None:
        return
    read = f", read {data['read_GBps']:.0f} GB/s" if "read_GBps" in data else ""
    print(f"{data['device']}, {data['date']}, commit {data['commit']}: copy "
          f"{data['copy_GBps']:.0f} GB/s (read + write){read}, bf16 cuBLAS "
          f"{data['bf16_TFLOPs']:.0f} TFLOP/s.")
    shapes, formats, cells = [], [], {}
    for r in data["rows"]:
        if r["shape"] not in shapes:
            shapes.append(r["shape"])
        if r["format"] not in formats:
            formats.append(r["format"])
        pct = 100.0 * r["floor_us"] / r["time_us"]
        base = r["baseline_us"]
        speed = f"{base / r['time_us']:.2f}×" if base else "–"
        cells[(r["shape"], r["tokens"], r["format"])] = f"{pct:.0f} % · {speed}"
    for shape in shapes:
        tokens = sorted({t for (s, t, _) in cells if s == shape})
        print(f"\n**{shape}** (% of floor · speed-up vs bf16 cuBLAS)\n")
        print("| T | " + " | ".join(formats) + " |")
        print("|---:|" + "---:|" * len(formats))
        for t in tokens:
            row = [cells.get((shape, t, f), "") for f in formats]
            print(f"| {t} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
