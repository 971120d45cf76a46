#!/usr/bin/env bash
# Session 49's device calls (H100). Binaries travel packed in the ignored .carry/z (carry limit
# 64 MiB), built in build-gpu (gpu preset: sm_90a SASS + compute_80 PTX, Release):
#   s49a.txz = t49a/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}: main's kernels with launch_with_tail
#     asking the one-strip grid only below the two-block one, and the tail tests from one case
#     list (tests/gpu/tail_cases.hpp: LUT / vector banks on both tail tiles added).
#   device: bash bench/results/s49-2026-12-06/run.sh check   # carry [".carry/z/s49a.txz"]
#           bash bench/results/s49-2026-12-06/run.sh rules   # the same, on the warm machine
#           bash bench/results/s49-2026-12-06/run.sh sanit   # the same
#           bash bench/results/s49-2026-12-06/run.sh all     # check and sanit's tests in one call
#           bash bench/results/s49-2026-12-06/run.sh core    # the changed tests alone
#           bash bench/results/s49-2026-12-06/run.sh min     # fewer still (what ran: below)
# check: scripts/gpu_check.sh on t49a: every GPU test on sm_90a, the quick bench, the demo (no
#   PTX run, no sanitizers).
# sanit: the tail, 256-token tile and first-offset tests on sm_90a and on the compute_80 PTX,
#   memcheck and racecheck of the tail and first-offset tests; then ncu of the decode launches of
#   Qwen3 and Mixtral int4 T = 1 (launch stats, speed of light, warp state).
# rules: kAuto's decode rules (fitted on an H200 in sessions 23-31) against forced settings on
#   the H100, one binary: scripts/gpu_ab.sh with wrappers that add an option (imma_on:
#   --integer-decode on, imma_off: --integer-decode off) against plain kAuto (auto), 2 rounds, the
#   decode rows (T = 1, 4, 16) of the five shapes in int2/3/4/8 g128 and mixed:rr (rules/); then
#   the decode kernel forced (dec: --kernel decode; dec_on: and --integer-decode on) against
#   kAuto on the middle rows where a mean of 16 tokens per expert meets the tile kernel (Mixtral
#   T = 64, Qwen3 T = 256; with Mixtral T = 256 and Qwen3 T = 64 beside them; rules/middle/).
# None of these calls ran in session 49: from 15:28 to 16:33 no H100 or H200 could be started
# (each failed start cost 1-3 minutes of device time, which ran out). The binaries (.carry is
# ignored) must be rebuilt from the session's last commit: cmake --preset gpu && ninja -C
# build-gpu, then packed as above (tar of .carry/t49a | xz -9, ~54 MB). Next session: `all` first.
# Session 50 ran `all` and `rules` on session 49's last commit: their calls and logs are in
# bench/results/s50-2026-12-06 (run.sh there); this file keeps only this header.
echo "run in session 50: bash bench/results/s50-2026-12-06/run.sh all|rules" >&2
exit 2
