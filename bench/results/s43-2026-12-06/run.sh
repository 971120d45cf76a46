#!/usr/bin/env bash
# Session 43's device calls: branch s43-mixed-tile = s42-tcq-tile (tcq on the mma.sync tile
# kernel: weights formed as RNE_fp16(v s) against the rotated x; kAuto's trellis split; none of
# it run on a GPU yet, nor session 41's review fixes on main) + tile_launches (on sm_90a a bank's
# trellis experts take the mma.sync tile kernel, its other experts a wgmma launch beside it) +
# the bench's mixed:tq (tcq2 and int4:g128 round-robin). Session 42's phases, for this build:
#   s43t.txz: t43/qmoe_gpu_tests, t43/libqmoe_c.so.1, t43/qmoe (gpu preset: sm_90a SASS +
#             compute_80 PTX), built from the branch in build-s42 (worktree /work/s42).
#   here:   bash bench/results/s43-2026-12-06/run.sh pack
#   device: bash bench/results/s43-2026-12-06/run.sh check    # carry [".carry/z/s43t.txz"]
#           bash bench/results/s43-2026-12-06/run.sh kernels  # same machine, right after check
#           bash bench/results/s43-2026-12-06/run.sh lean     # check's tests alone (little time)
# The trellis GEMM tests' banks mix tcq with int4, vq2 and bf16 experts: at kPrefill on sm_90a
# they now run a wgmma and a mma.sync launch each.
RUN_TAG=43 RUN_BRANCH=s43-mixed-tile RUN_FORMATS=tcq2,tcq3.5,tcq4,int4:g128,mixed:tq \
  exec bash "$(dirname "$0")/../s42-2026-12-05/run.sh" "$@"
