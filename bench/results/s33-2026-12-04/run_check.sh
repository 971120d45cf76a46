#!/usr/bin/env bash
# Session 33's prepared full GPU check of main (not run in session 33: no device was lent).
# .carry/z/check.txz holds build-gpu's qmoe, qmoe_gpu_tests and libqmoe_c.so.1 (the `gpu` preset:
# sm_90a + compute_80 PTX, DLPack found, so the 4 C-ABI GPU tests are in), built here from main's
# code at the end of session 33 (its kernels as at fa126b1). Device command, carry [".carry"]:
#   tar xJf .carry/z/check.txz -C .carry && chmod +x .carry/new/* &&
#   bash bench/results/s33-2026-12-04/run_check.sh
# A rebuild: `cmake --preset gpu && ninja -C build-gpu qmoe_cli qmoe_gpu_tests qmoe_c` (~10 min on
# 2 cores, after scripts/install_deps.sh), then pack the three files as new/ in check.txz.
set -u
QMOE_COMMIT=${QMOE_COMMIT:-fa126b1-kernels} QMOE_BIN=.carry/new OUT=$OUT/check bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | tail -22
