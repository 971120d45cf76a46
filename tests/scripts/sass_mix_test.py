#!/usr/bin/env python3
"""scripts/sass_mix.py on a made-up listing (sass_mix.sass), through a stand-in nvdisasm that
prints that file: the loop found, its counts per mma and per multiply-add, classes, cold lines,
operand distances."""
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

    def test_counts_the_mma_loop_only(self):
        lines = self.run_mix()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("_Z1kv loop 0x10-0x70: 7 instructions, 2 mma, 3.50 per mma (2.50 others)",
                      lines[0])
        self.assertIn(f"{1024 * 7 / (2048 + 65536):.2f} per 1024 multiply-adds", lines[0])
        self.assertEqual(lines[1].strip(), "mma 2, predicate ops 1, ldmatrix 1, half/bf16 math 1, "
                         "global ld 1, branch 1")

    def test_cold_lines_are_left_out_and_lines_listed(self):
        lines = self.run_mix("--cold", "cold.cuh:1-9", "--lines", "5")
        self.assertIn("6 instructions, 2 mma, 3.00 per mma", lines[0])
        self.assertNotIn("global ld", lines[1])
        # k.cuh:20 holds the PLOP3, LDSM, HFMA2 and HMMA; k.cuh:21 the HGMMA and BRA.
        self.assertEqual(lines[2].split()[:2], ["4", "k.cuh:20"])
        self.assertEqual(lines[3].split()[:2], ["2", "k.cuh:21"])

    def test_operand_distances(self):
        lines = self.run_mix("--deps")
        # A: only R8 of R8..R11 is written in the loop, one instruction before the HMMA; B: R12
        # and R13 of the LDSM's R12..R15, two before.
        self.assertIn("A from HFMA2: 1 values, written 1 instructions before", lines[2])
        self.assertIn("B from LDSM: 2 values, written 2 instructions before", lines[3])

    def test_kernel_filter(self):
        self.assertEqual(self.run_mix("--kernel", "nomatch"), [""])


if __name__ == "__main__":
    unittest.main()
