#!/usr/bin/env bash
# For the next session with a device: branch s43-tcq-wgmma (session 43, built, not run on a GPU)
# = main + the wgmma kernel's trellis launch (on sm_90a the trellis experts' tile work from a
# mean of 64 tokens per expert: 128-token tile, one strip per warp, fp16 wgmmas against the
# rotated x; tile_launches, kernel_split.cuh). Session 42's phases for this build:
#   s43wt.txz: t43w/qmoe_gpu_tests, t43w/libqmoe_c.so.1, t43w/qmoe (gpu preset), from build-s42.
#   here:   bash bench/results/s43-2026-12-06/run_wgmma.sh pack
#   device: bash bench/results/s43-2026-12-06/run_wgmma.sh check    # carry [".carry/z/s43wt.txz"]
#           bash bench/results/s43-2026-12-06/run_wgmma.sh kernels  # same machine, after check
# check: every GPU test on sm_90a (GroupedGemmTrellisExpertsOfManyTokensMatchReference and the
# tile test's auto64 runs take the new launch), memcheck on the small, trellis, graph and C ABI
# tests, racecheck on two trellis tests, a bench of tcq beside int4 and mixed:tq (kAuto), the
# demo; no PTX run (the A100 path's kernels are unchanged). kernels: each kernel forced, to set
# against session 43's mma.sync numbers (bench/results/s42-2026-12-05/kernels, same rows, H100)
# and to fit kTrellisWgmmaMinMean.
RUN_TAG=43w RUN_BRANCH=s43-tcq-wgmma RUN_FORMATS=tcq2,tcq3.5,tcq4,int4:g128,mixed:tq \
  RUN_PTX_FILTER='' exec bash "$(dirname "$0")/../s42-2026-12-05/run.sh" "$@"
