#!/usr/bin/env python3
"""Instruction mix of the mma loops of a kernel, from its SASS (no GPU needed).

For every innermost loop (a backward branch) of the chosen kernels that issues tensor-core
instructions (HMMA / HGMMA / IMMA), prints its instruction count per mma and per 1024
multiply-adds of one warp (comparable across mma shapes), by class and by source line; with
--deps, how far ahead of its first mma.sync each A and B operand register was written.
Counts are static: instructions on a branch that the measured case never takes (e.g. the
x fill for rows that are not 16-byte aligned) can be left out with --cold FILE:FIRST-LAST.

  usage: scripts/sass_mix.py CUBIN [--kernel REGEX] [--cold FILE:A-B ...] [--lines N] [--deps]

CUBIN: a cubin built with -lineinfo (nvcc ... -lineinfo -cubin -o x.cubin -x cu file.cu).
The disassembler is $NVDISASM, else nvdisasm on PATH (the toolkit's; or from PyPI, the
nvidia-cuda-nvdisasm wheel: bin/nvdisasm inside it).
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys

MMA = ("HMMA", "IMMA", "HGMMA", "IGMMA", "QGMMA")
# Opcode classes by prefix, first match wins ("U..." are the uniform datapath's integer ops).
CLASSES = [
    ("mma", MMA),
    ("ldmatrix", ("LDSM",)),
    ("async copy", ("LDGSTS", "LDGDEPBAR", "DEPBAR", "UTMALDG", "UBLKCP", "SYNCS")),
    ("local (spills)", ("LDL", "STL")),
    ("shared ld/st", ("LDS", "STS")),
    ("global ld", ("LDG",)),
    ("barrier/sync", ("BAR", "WARPSYNC", "WARPGROUP", "BSSY", "BSYNC")),
    ("warp shuffle", ("SHFL",)),
    ("half/bf16 math", ("HFMA2", "HADD2", "HMUL2")),
    ("fp32 math/convert", ("FADD", "FMUL", "FFMA", "FSEL", "F2F", "F2FP", "I2F", "F2I")),
    ("bit ops", ("LOP3", "SHF", "PRMT", "SEL")),
    ("predicate ops", ("PLOP3", "PSETP", "P2R", "R2P")),
    ("int/address", ("IMAD", "IADD3", "VIADD", "LEA", "IMNMX", "ISETP", "MOV", "CS2R", "S2R",
                     "S2UR", "R2UR", "U")),
    ("branch", ("BRA", "EXIT", "CALL", "RET")),
]


def opcode(text):
    text = re.sub(r"^@!?U?P\w+\s+", "", text)
    return text.split()[0]


def op_class(op):
    base = op.split(".")[0]
    for name, prefixes in CLASSES:
        if base.startswith(prefixes):
            return name
    return "other"


def disassemble(cubin):
    tool = os.environ.get("NVDISASM") or shutil.which("nvdisasm")
    if not tool:
        sys.exit("sass_mix: no nvdisasm (set NVDISASM)")
    return subprocess.run([tool, "-c", "-g", cubin], check=True, capture_output=True,
                          text=True).stdout.split("\n")


def parse(lines):
    """{kernel: (instructions [(addr, text, (file, line))], labels {name: index})}; an
    instruction without a line annotation of its own has its predecessor's."""
    kernels, cur, where = {}, None, None
    for raw in lines:
        if raw.startswith(".text."):
            cur, where = raw.strip()[len(".text."):-1], None
            kernels[cur] = ([], {})
            continue
        if cur is None:
            continue
        ins, labels = kernels[cur]
        m = re.match(r'\s*//## File "(.*?)", line (\d+)', raw)
        if m:
            where = (os.path.basename(m.group(1)), int(m.group(2)))
            continue
        m = re.match(r"^(\.L_x_\d+):", raw)
        if m:
            labels[m.group(1)] = len(ins)
            continue
        m = re.match(r"\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;", raw)
        if m:
            ins.append((int(m.group(1), 16), m.group(2), where))
    return kernels


def mma_loops(ins, labels):
    """Innermost loops ([first, last] indices) that hold an mma; back branches to one head make
    one loop, to the farthest of them."""
    last_branch = {}
    for i, (_, text, _) in enumerate(ins):
        if not opcode(text).startswith("BRA"):
            continue
        m = re.search(r"`\((\.L_x_\d+)\)", text)
        if m and labels.get(m.group(1), len(ins)) <= i:
            last_branch[labels[m.group(1)]] = i
    loops = [(b, e) for b, e in sorted(last_branch.items())
             if any(opcode(t).startswith(MMA) for _, t, _ in ins[b:e + 1])]
    # innermost: drop loops that contain another mma loop
    return [l for l in loops
            if not any(o != l and l[0] <= o[0] and o[1] <= l[1] for o in loops)]


def warp_macs(op):
    """Multiply-adds one warp's instance of an mma instruction does: mma.sync shapes as SASS
    spells them (HMMA.16816 = m16n8k16, HMMA.1688, IMMA.16832, IMMA.8816 = m8n8k16, ...) and
    wgmma's m64nNk* (HGMMA.64x256x16, a warpgroup's: a quarter per warp)."""
    m = re.match(r"[HI]MMA\.(16|8)(8)(\d+)", op)
    if m:
        return int(m.group(1)) * int(m.group(2)) * int(m.group(3))
    m = re.match(r"[HIQ]GMMA\.(\d+)x(\d+)x(\d+)", op)
    if m:
        return int(m.group(1)) * int(m.group(2)) * int(m.group(3)) // 4
    return 0


def register_span(operand, width):
    """Registers R<n> .. R<n + width - 1> of an operand such as "R12" or "R12.reuse"."""
    m = re.match(r"-?R(\d+)\b", operand)
    return [int(m.group(1)) + i for i in range(width)] if m else []


def written_width(op):
    """Registers an instruction's first operand spans when it writes it: 4 for 16-byte loads,
    ldmatrix .x4 and mma.sync sums in fp32 / s32, 2 for 8-byte loads, .x2 and fp16 sums."""
    if op.startswith(("HMMA", "IMMA")):
        return 4 if re.search(r"\.(F32|S32)", op) else 2
    if op.endswith((".128", ".M88.4", ".MT88.4")):
        return 4
    if op.endswith((".64", ".M88.2", ".MT88.2")) or op.startswith("IMAD.WIDE"):
        return 2
    return 1


def operand_distances(body):
    """For each mma.sync of a loop (HMMA / IMMA, m16n8k*), the instructions between the last
    write of each of its A and B registers and that mma, at the first mma to read the value:
    {(operand, writer opcode): [distances]}. A writer on the previous iteration is not seen."""
    last = {}  # register -> [index of its writer, opcode, read by an mma yet]
    found = collections.defaultdict(list)
    for i, (_, text, _) in enumerate(body):
        op = opcode(text)
        operands = re.sub(r"^@!?U?P\w+\s+", "", text).split(None, 1)[-1]
        args = [a.strip() for a in operands.split(",")]
        if op.startswith(("HMMA", "IMMA")) and len(args) >= 3:
            narrow = op.startswith(("HMMA.1688.", "IMMA.16816."))  # k8 (16-bit) / k16 (8-bit)
            for name, operand, width in (("A", args[1], 2 if narrow else 4),
                                         ("B", args[2], 1 if narrow else 2)):
                for r in register_span(operand, width):
                    if r in last and not last[r][2]:
                        found[(name, last[r][1].split(".")[0])].append(i - last[r][0])
                        last[r][2] = True
        for r in register_span(args[0], written_width(op)):
            last[r] = [i, op, False]
    return found


def is_cold(where, cold):
    return where is not None and any(where[0] == f and a <= where[1] <= b for f, a, b in cold)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cubin")
    ap.add_argument("--kernel", default=".", help="regex on the mangled kernel name")
    ap.add_argument("--cold", action="append", default=[], help="FILE:FIRST-LAST")
    ap.add_argument("--lines", type=int, default=0, help="also list the N busiest source lines")
    ap.add_argument("--deps", action="store_true",
                    help="also print how far ahead of its first mma each operand was written")
    args = ap.parse_args()
    cold = []
    for c in args.cold:
        f, r = c.rsplit(":", 1)
        a, b = r.split("-")
        cold.append((f, int(a), int(b)))
    for name, (ins, labels) in parse(disassemble(args.cubin)).items():
        if not re.search(args.kernel, name):
            continue
        for b, e in mma_loops(ins, labels):
            body = [x for x in ins[b:e + 1] if not is_cold(x[2], cold)]
            ops = [opcode(t) for _, t, _ in body]
            mma = sum(op.startswith(MMA) for op in ops)
            macs = sum(warp_macs(op) for op in ops)
            if mma == 0 or macs == 0:
                print(f"{name} loop {ins[b][0]:#x}-{ins[e][0]:#x}: no mma of a known shape left "
                      f"({len(body)} instructions)")
                continue
            by_class = collections.Counter(op_class(op) for op in ops)
            print(f"{name} loop {ins[b][0]:#x}-{ins[e][0]:#x}: {len(body)} instructions, "
                  f"{mma} mma, {len(body) / mma:.2f} per mma "
                  f"({(len(body) - mma) / mma:.2f} others), "
                  f"{1024 * len(body) / macs:.2f} per 1024 multiply-adds of a warp")
            print("  " + ", ".join(f"{k} {v}" for k, v in by_class.most_common()))
            if args.deps:
                for (operand, writer), d in sorted(operand_distances(body).items()):
                    d = sorted(d)
                    print(f"  {operand} from {writer}: {len(d)} values, written {d[len(d) // 2]} "
                          f"instructions before their first mma (median; 10 % at most "
                          f"{d[len(d) // 10]}, min {d[0]})")
            if args.lines:
                by_line = collections.defaultdict(collections.Counter)
                for (_, _, where), op in zip(body, ops):
                    by_line[where][op] += 1
                for where, c in sorted(by_line.items(), key=lambda x: -sum(x[1].values()))[
                        :args.lines]:
                    src = f"{where[0]}:{where[1]}" if where else "?"
                    top = ", ".join(f"{k} {v}" for k, v in c.most_common(3))
                    print(f"    {sum(c.values()):4d} {src:28s} {top}")


if __name__ == "__main__":
    main()
