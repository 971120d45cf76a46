#!/usr/bin/env bash
# Session 58's device calls (the repository root; one archive of the ignored .carry/z per call:
# each ~40-53 MB of xz, as nvcc's fatbins hardly compress further, against the carry's 64 MiB).
# Every call first unpacks the archives this warm machine holds and has not unpacked yet (kept
# between calls), so later calls find the binaries earlier ones brought. Archives:
#   s58q = t58/qmoe, s58t = t58/qmoe_gpu_tests, s58c = t58/libqmoe_c.so.1 (build-gpu: sm_90a SASS
#     + compute_80 PTX) of d632191: the decode kernel's items find their expert by a warp-wide
#     count (find_expert_warp), switch on the decoder id the schedule build keeps in shared memory
#     (there before the rings), and take half_items' remainder in 32 bits;
#   s58v = t58v/qmoe: the same with the decoder ids after the rings and mbarriers (the rings at
#     main's offsets);
#   s58d = t58d/qmoe: s58v plus QMOE_RING_PAD bytes before the rings (a diagnostic: the pad in
#     GemmProblem::x_tma, diag/ring_pad.patch; never on main);
#   s58a = t58a/qmoe: 4b4a68a with the rings' start rounded up to a 128-byte shared address
#     (diag/ring_align128.patch: ring_start in grouped_gemv.cuh; built, never run: no machine);
#   s58b = t58b/qmoe: main's kernels (11157d3, sm_90a SASS).
# Phases NAME:ROUND (the decode rows, scripts/gpu_ab_phase.sh, logs in $OUT/ab): new (s58q), v2
# (s58v), base (s58b), pads (s58d at pads of 0, 16, 48 and 112 bytes); and tests (s58q/t/c: the
# GPU suite, memcheck and the compute_80 PTX's tests, scripts/gpu_ab_tests.sh). A phase `pack`
# leaves $OUT/ab as one file (the device tool returns ~8 files a call).
# Calls, first machine: carry s58q: new:1; s58b: base:1; s58t: new:2-5 and base:2-5 (their logs
# lost to the file count; rerun in the next call); s58c: tests, new:2-5, base:2-5, pack. Then the
# compute_80 tests again with 420 s (the first run's 150 s went to JIT-compiling).
# Second machine: carry s58v: v2:1 pack; s58b: base:1 v2:2 base:2 v2:3 base:3 pack; s58d: pads:1
# base:4 v2:4 pads:2 base:5 v2:5 pack.
# Third machine (planned; none started before the device budget ran out): carry s58a: aligned:1
# pack; s58v: v2:6 aligned:2 v2:7 aligned:3 v2:8 pack.
# Tables: scripts/ab_table.py ab/base_1.log ab/new_1.log ... (alternating, in run order).
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
export CUDA_CACHE_MAXSIZE=4294967296
unpack_carried .carry/z/s58*.txz || exit 1
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
for phase in "$@"; do
  round=${phase#*:}
  case ${phase%%:*} in
    new) scripts/gpu_ab_phase.sh .carry/z/s58q.txz t58 new "$round" "$decode" ;;
    v2) scripts/gpu_ab_phase.sh .carry/z/s58v.txz t58v v2 "$round" "$decode" ;;
    aligned) scripts/gpu_ab_phase.sh .carry/z/s58a.txz t58a aligned "$round" "$decode" ;;
    base) scripts/gpu_ab_phase.sh .carry/z/s58b.txz t58b base "$round" "$decode" ;;
    pads)
      for pad in 0 16 48 112; do
        QMOE_RING_PAD=$pad scripts/gpu_ab_phase.sh .carry/z/s58d.txz t58d "pad${pad}" "$round" "$decode"
      done
      ;;
    tests)
      scripts/gpu_ab_tests.sh .carry/z/s58q.txz t58 \
        '*WaitsForThePrevious*:*Graph*:*Mixed*:*ManyExperts*'
      ;;
    pack) tar czf "$OUT/ab_$(date +%H%M%S).tgz" -C "$OUT" ab && rm -rf "$OUT/ab" ;;
  esac
done
