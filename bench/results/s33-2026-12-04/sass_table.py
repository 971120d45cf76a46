#!/usr/bin/env python3
"""The README's tables from sass/*.txt (scripts/sass_mix.py outputs of the mma.sync tile kernel):
per format, the k-loop's instructions per k-tile and per mma. Which loop is which decoder is
read off its instructions: the code copies per k-tile (LDGSTS: 4 for x, then per strip 1 for
int2, 2 for int3 / int4, 4 for int8, 8 for a dense slot; the async-copy class also holds 2
LDGDEPBAR / DEPBAR), the scale conversions (2 per strip and group of the tile; int8 adds 160 per
strip of fp32 decode), and int3's second code plane (more bit ops than int4's).
  usage: sass_table.py SASS_DIR"""
import re
import sys


def load(path):
    """{(strips, format): (instructions, mma)} of one sass_mix output."""
    found = {}
    for block in re.split(r"\n(?=\S)", open(path).read()):
        m = re.match(r"\S+kernelI13__nv_bfloat16Li(\d)E\S* loop \S+: (\d+) instructions, (\d+) mma",
                     block)
        if not m:
            continue
        strips, n, mma = int(m.group(1)), int(m.group(2)), int(m.group(3))
        classes = dict((k.strip(), int(v))
                       for k, v in re.findall(r"([a-z/0-9 .]+?) (\d+)(?:,|$)", block.split("\n")[1]))
        chunks = (classes.get("async copy", 0) - 2 - 4) // strips
        conv = classes.get("fp32 math/convert", 0)
        if chunks == 8:
            fmt = "dense fp16" if conv else "dense bf16"
        else:
            bits = {1: "int2", 2: "int3/4", 4: "int8"}[chunks]
            groups = (conv - (160 * strips if bits == "int8" else 0)) // (2 * strips)
            fmt = bits + ":" + {1: "g128", 2: "g64", 4: "g32"}[groups]
        found.setdefault((strips, fmt), []).append((n, mma, classes.get("bit ops", 0)))
    table = {}
    for (strips, fmt), loops in found.items():
        if fmt.startswith("int3/4"):
            int4, int3 = sorted(loops, key=lambda x: x[2])
            table[(strips, fmt.replace("int3/4", "int4"))] = int4[:2]
            table[(strips, fmt.replace("int3/4", "int3"))] = int3[:2]
        else:
            table[(strips, fmt)] = loops[0][:2]
    return table


def main():
    d = sys.argv[1]
    formats = [f"{b}:{g}" for b in ("int2", "int3", "int4", "int8") for g in ("g128", "g64", "g32")]
    formats += ["dense bf16", "dense fp16"]
    for title, files in (("sm_80 SASS (what an A100 runs)", ("tc80", "tc80_c1", "tc80_c2")),
                         ("sm_90 SASS from the compute_80 PTX (what the H200 runs in the A/B)",
                          ("tc80_jit90", "tc80_jit90_c1", "tc80_jit90_c2"))):
        t = [load(f"{d}/{f}.txt") for f in files]
        print(f"\n{title}:\n")
        print("| format | one strip: fa126b1 | c1 | c2 | per mma fa126b1 → c2 "
              "| two strips: fa126b1 | c2 | per mma fa126b1 → c2 |")
        print("|---|---|---|---|---|---|---|---|")
        for fmt in formats:
            one = [x[(1, fmt)] for x in t]
            two = [x[(2, fmt)] for x in t]
            if fmt.startswith("dense"):  # dense slots (4 KB) always take one strip
                two_cells = "(never runs) | | "
            else:
                two_cells = (f"{two[0][0]} | {two[2][0]} | "
                             f"{two[0][0] / two[0][1]:.2f} → {two[2][0] / two[2][1]:.2f}")
            print(f"| {fmt} | {one[0][0]} | {one[1][0]} | {one[2][0]} | "
                  f"{one[0][0] / one[0][1]:.1f} → {one[2][0] / one[2][1]:.1f} | {two_cells} |")


if __name__ == "__main__":
    main()
