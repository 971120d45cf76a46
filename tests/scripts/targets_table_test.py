#!/usr/bin/env python3
"""scripts/targets_table.py on a made-up results file: the decode cells against the copy rate
and the bench's floor, the Mixtral T = 1 ratios and the times the targets need, the prefill
ratio, and mixed:rr over the copy floor (compute-bound where the FLOPs dominate)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "targets_table.py")


def row(shape, tokens, fmt, time_us, floor_us, baseline_us, nbytes, flops, mhz=1500):
    return {"shape": shape, "tokens": tokens, "format": fmt, "time_us": time_us,
            "floor_us": floor_us, "baseline_us": baseline_us, "bytes": nbytes, "flops": flops,
            "sm_mhz": mhz}


# copy 2000 GB/s: 2e9 bytes per ms; 1e6 bytes take 0.5 us at the copy rate.
RESULTS = {
    "device": "made-up GPU", "date": "2026-12-06", "commit": "abc", "copy_GBps": 2000.0,
    "read_GBps": 2500.0, "bf16_TFLOPs": 500.0,
    "rows": [
        # 1e6 bytes in 1 us: 50 % of the copy rate; the bench's floor 0.4 us: 40 %.
        row("mixtral-8x7b", 1, "int4:g128", 1.0, 0.4, 9.0, 1e6, 0),
        row("mixtral-8x7b", 4, "int4:g128", 0.5, 0.4, 9.0, 1e6, 0),
        row("mixtral-8x7b", 16, "int4:g128", 2.0, 1.6, 9.0, 4e6, 0),
        row("mixtral-8x7b", 1, "int2:g128", 0.9, 0.2, 9.0, 5e5, 0),
        row("mixtral-8x7b", 4096, "int4:g128", 100.0, 50.0, 90.0, 1e6, 0, mhz=1455),
        # copy floor 0.5 us (bytes) -> 0.75 / 0.5 = 1.5; FLOPs 1e9 at 500 TFLOP/s = 2 us.
        row("mixtral-8x7b", 1, "mixed:rr", 0.75, 0.4, 9.0, 1e6, 0),
        row("mixtral-8x7b", 4096, "mixed:rr", 3.0, 2.0, 9.0, 1e6, 1e9),
    ],
}


class TargetsTableTest(unittest.TestCase):
    def setUp(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(RESULTS, f)
            self.path = f.name
        self.out = subprocess.run([sys.executable, SCRIPT, self.path], check=True,
                                  capture_output=True, text=True).stdout

    def tearDown(self):
        os.unlink(self.path)

    def test_decode_cells_against_copy_rate_and_bench_floor(self):
        # T = 4: 1e6 bytes in 0.5 us = 100 % of copy, floor 0.4 / 0.5 = 80 %.
        self.assertIn("mixtral-8x7b       50 / 100 / 100 (40 / 80 / 80)", self.out)

    def test_mixtral_one_token_ratios_and_needed_times(self):
        self.assertIn("int4:g128: 9.00x (1.0 us against 9.0 us); 4.5x needs 2.0 us, the read "
                      "floor 0.4 us, the copy floor 0.5 us", self.out)
        self.assertIn("int2:g128: 10.00x (0.9 us against 9.0 us); 7.0x needs 1.3 us", self.out)

    def test_prefill_ratio_and_clock(self):
        self.assertIn("mixtral-8x7b       0.900x (100 against 90 us, 1455)", self.out)

    def test_mixed_over_the_copy_floor_with_flops_bound_rows(self):
        self.assertIn("mixtral-8x7b       1: 1.50  4096: 1.50", self.out)

    def test_formats_without_rows_are_left_out(self):
        self.assertNotIn("deepseek", self.out)
        self.assertIn("  int8:g128\n  int3:g128\n  int2:g128\n", self.out)


if __name__ == "__main__":
    unittest.main()
