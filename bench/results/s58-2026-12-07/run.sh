#!/usr/bin/env bash
# Session 58's device calls (the repository root; one archive of the ignored .carry/z per call:
# each ~40-53 MB of xz, as nvcc's fatbins hardly compress further, against the carry's 64 MiB).
# Every call first unpacks the archives this warm machine holds and has not unpacked yet (kept
# between calls), so later calls find the binaries earlier ones brought:
#   s58q.txz = t58/qmoe, s58t.txz = t58/qmoe_gpu_tests, s58c.txz = t58/libqmoe_c.so.1 (build-gpu:
#     sm_90a SASS + compute_80 PTX) of this session's change: the decode kernel's items find
#     their expert by a warp-wide count (find_expert_warp), switch on the decoder id the schedule
#     build kept in shared memory, and take half_items' remainder in 32 bits;
#   s58b.txz = t58b/qmoe: main's kernels (11157d3, sm_90a SASS).
# Phases: new, base, new2, base2 (the decode rows, scripts/gpu_ab_phase.sh); tests (the GPU
# suite, memcheck and the compute_80 PTX's tests, scripts/gpu_ab_tests.sh).
# Calls: carry s58q: new; s58b: base; s58t: new2; s58c: base2 tests.
# Table: scripts/ab_table.py ab/base_1.log ab/new_1.log ab/base_2.log ab/new_2.log.
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
export CUDA_CACHE_MAXSIZE=4294967296
for archive in .carry/z/s58*.txz; do
  done_mark=".carry/.unpacked_$(basename "$archive")"
  [[ -e $done_mark ]] || { tar xJf "$archive" -C .carry && touch "$done_mark"; } || exit 1
done
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
for phase in "$@"; do
  case $phase in
    new) scripts/gpu_ab_phase.sh .carry/z/s58q.txz t58 new 1 "$decode" ;;
    base) scripts/gpu_ab_phase.sh .carry/z/s58b.txz t58b base 1 "$decode" ;;
    new2) scripts/gpu_ab_phase.sh .carry/z/s58q.txz t58 new 2 "$decode" ;;
    base2) scripts/gpu_ab_phase.sh .carry/z/s58b.txz t58b base 2 "$decode" ;;
    tests)
      scripts/gpu_ab_tests.sh .carry/z/s58q.txz t58 \
        '*WaitsForThePrevious*:*Graph*:*Mixed*:*ManyExperts*'
      ;;
  esac
done
