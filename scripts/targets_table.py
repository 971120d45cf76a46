#!/usr/bin/env python3
"""The GPU-kernel issue's target cells from one `qmoe bench` results file, for the table
"Against the targets" of docs/results.md.

  python3 scripts/targets_table.py bench/results/<device>-<date>.json

The issue words its decode targets against the measured copy bandwidth (bytes / time over the
run's copy rate), its floors as max(bytes / copy rate, FLOPs / bf16 rate); the bench's own
floor (floor_us) takes the faster of the read and copy rates, so both are printed:
  - decode % of copy bandwidth (% of the bench's floor) at T = 1 / 4 / 16, per shape and format;
  - Mixtral T = 1: speed-up over cuBLAS for int4 and int2, with the time each target needs and
    the read floor;
  - prefill T = 4096 int4: speed-up over cuBLAS per shape, with the row's SM clock;
  - mixed:rr time over the copy floor (the issue's bytes-weighted floor) at every T.
"""
from results_file import load_results

DECODE_TOKENS = (1, 4, 16)
DECODE_FORMATS = ("int4:g128", "int8:g128", "int3:g128", "int2:g128")
T1_TARGETS = {"int4:g128": 4.5, "int2:g128": 7.0}


def main():
    data = load_results(__doc__)
    if data is None:
        return
    copy = data["copy_GBps"] * 1e9
    tflops = data["bf16_TFLOPs"] * 1e12
    rows = {(r["shape"], r["tokens"], r["format"]): r for r in data["rows"]}
    shapes = list(dict.fromkeys(r["shape"] for r in data["rows"]))

    def copy_pct(r):
        return 100.0 * r["bytes"] / (r["time_us"] * 1e-6) / copy

    def copy_floor_us(r):
        return max(r["bytes"] / copy, r["flops"] / tflops) * 1e6

    print(f"{data['device']}, {data['date']}, commit {data['commit']}: copy "
          f"{data['copy_GBps']:.0f} GB/s, read {data.get('read_GBps', 0):.0f} GB/s, bf16 "
          f"{data['bf16_TFLOPs']:.0f} TFLOP/s")
    print("\ndecode, % of copy BW (% of the bench's floor) at T = "
          + " / ".join(map(str, DECODE_TOKENS)))
    for fmt in DECODE_FORMATS:
        print(f"  {fmt}")
        for shape in shapes:
            cells = [rows.get((shape, t, fmt)) for t in DECODE_TOKENS]
            if None in cells:
                continue
            pct = " / ".join(f"{copy_pct(r):.0f}" for r in cells)
            floor = " / ".join(f"{100.0 * r['floor_us'] / r['time_us']:.0f}" for r in cells)
            print(f"    {shape:18s} {pct} ({floor})")
    print("\nMixtral T = 1 against bf16 cuBLAS")
    for fmt, target in T1_TARGETS.items():
        r = rows.get(("mixtral-8x7b", 1, fmt))
        if r is None or not r["baseline_us"]:
            continue
        print(f"  {fmt}: {r['baseline_us'] / r['time_us']:.2f}x ({r['time_us']:.1f} us against "
              f"{r['baseline_us']:.1f} us); {target}x needs {r['baseline_us'] / target:.1f} us, "
              f"the read floor {r['floor_us']:.1f} us, the copy floor {copy_floor_us(r):.1f} us")
    print("\nprefill T = 4096 int4:g128, speed-up over bf16 cuBLAS (SM MHz)")
    for shape in shapes:
        r = rows.get((shape, 4096, "int4:g128"))
        if r is not None and r["baseline_us"]:
            print(f"  {shape:18s} {r['baseline_us'] / r['time_us']:.3f}x "
                  f"({r['time_us']:.0f} against {r['baseline_us']:.0f} us, {r.get('sm_mhz', 0)})")
    print("\nmixed:rr time / copy floor per T")
    for shape in shapes:
        cells = sorted((t, r) for (s, t, f), r in rows.items() if s == shape and f == "mixed:rr")
        if cells:
            print(f"  {shape:18s} "
                  + "  ".join(f"{t}: {r['time_us'] / copy_floor_us(r):.2f}" for t, r in cells))


if __name__ == "__main__":
    main()
