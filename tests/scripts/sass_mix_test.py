#!/usr/bin/env python3
"""scripts/sass_mix.py on a made-up listing (sass_mix.sass), through a stand-in nvdisasm that
prints that file: which loops are reported, their counts per mma and per multiply-add, classes,
cold lines, source lines, operand distances."""
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "sass_mix.py")
LISTING = os.path.join(HERE, "sass_mix.sass")


class SassMixTest(unittest.TestCase):
    def run_mix(self, *args):
        with tempfile.TemporaryDirectory() as tmp:
            tool = os.path.join(tmp, "nvdisasm")
            with open(tool, "w") as f:  # prints its last argument's file, as nvdisasm the cubin
                f.write('#!/bin/sh\nfor a; do last=$a; done\ncat "$last"\n')
            os.chmod(tool, os.stat(tool).st_mode | stat.S_IEXEC)
            env = dict(os.environ, NVDISASM=tool)
            out = subprocess.run([sys.executable, SCRIPT, LISTING, *args], env=env, check=True,
                                 capture_output=True, text=True).stdout
        return out.strip().split("\n")

    def test_one_loop_per_head_and_only_innermost_mma_loops(self):
        lines = self.run_mix()
        loops = [l for l in lines if " loop " in l]
        self.assertEqual(len(loops), 2, lines)
        self.assertIn("_Z1kv loop 0x10-0x80: 8 instructions, 2 mma, 4.00 per mma (3.00 others)",
                      loops[0])
        self.assertIn("_Z2k2v loop 0x20-0x50: 4 instructions, 2 mma, 2.00 per mma", loops[1])

    def test_multiply_adds_per_mma_shape(self):
        lines = self.run_mix()
        # HMMA.16816 + HGMMA.64x256x16 (a quarter of the warpgroup's per warp); two HMMA.16816.
        self.assertIn(f"{1024 * 8 / (2048 + 65536):.2f} per 1024 multiply-adds", lines[0])
        self.assertIn(f"{1024 * 4 / (2 * 2048):.2f} per 1024 multiply-adds", lines[2])

    def test_classes(self):
        lines = self.run_mix()
        self.assertEqual(lines[1].strip(), "mma 2, branch 2, predicate ops 1, ldmatrix 1, "
                         "half/bf16 math 1, global ld 1")

    def test_cold_lines_are_left_out_and_lines_listed(self):
        lines = self.run_mix("--kernel", "_Z1kv", "--cold", "cold.cuh:1-9", "--lines", "5")
        self.assertIn("7 instructions, 2 mma, 3.50 per mma", lines[0])
        self.assertNotIn("global ld", lines[1])
        # k.cuh:20 holds the PLOP3, LDSM, HFMA2, HMMA and the first BRA; k.cuh:21 the rest.
        self.assertEqual(lines[2].split()[:2], ["5", "k.cuh:20"])
        self.assertEqual(lines[3].split()[:2], ["2", "k.cuh:21"])

    def test_operand_distances_at_the_first_reader(self):
        lines = self.run_mix("--deps")
        # _Z1kv: only R8 of A (R8..R11) is written in the loop, one instruction before the HMMA;
        # B: R12 and R13 of the LDSM's R12..R15, two before.
        self.assertIn("A from HFMA2: 1 values, written 1 instructions before", lines[2])
        self.assertIn("B from LDSM: 2 values, written 2 instructions before", lines[3])
        # _Z2k2v: R8 counts at the first HMMA only (the second reads it 2 after its write).
        self.assertIn("A from HFMA2: 1 values, written 1 instructions before", lines[6])

    def test_kernel_filter(self):
        self.assertEqual(self.run_mix("--kernel", "nomatch"), [""])


if __name__ == "__main__":
    unittest.main()
