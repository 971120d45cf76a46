#!/usr/bin/env bash
# Session 59's device calls (the repository root; one archive of the ignored .carry/z per call:
# each ~53 MB of xz against the carry's 64 MiB). Every call first unpacks the archives this warm
# machine holds and has not unpacked yet, so later calls find the binaries earlier ones brought.
# Archives:
#   s58v = t58v/qmoe: 4b4a68a (main's decode kernel, rings where schedule_smem_bytes(E) puts them);
#   s59q, s59t, s59c = t59/qmoe, t59/qmoe_gpu_tests, t59/libqmoe_c.so.1 (build-gpu: sm_90a SASS +
#     compute_80 PTX): main with bench/results/s58-2026-12-07/diag/ring_align128.patch (the decode
#     kernel rounds its rings' start up to a 128-byte shared address: ring_start) and the bench's
#     custom shapes (--shapes H:I:E:K);
#   s59b = t59b/qmoe: main with the custom shapes only (sm_90a SASS), the E = 2 / 6 rows' base.
# Phases NAME:ROUND: aligned (s59q), v2 (s58v): the decode rows (scripts/gpu_ab_phase.sh, logs in
# $OUT/ab); odd, oddbase: the E = 2 and 6 rows with s59q and s59b; tests: s59t's GPU suite,
# memcheck and the decode kernel's tests on the compute_80 PTX (scripts/gpu_ab_tests.sh); pack:
# $OUT/ab as one file.
# Tables: scripts/ab_table.py ab/v2_1.log ab/aligned_1.log ... (alternating, in run order).
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
export CUDA_CACHE_MAXSIZE=4294967296
unpack_carried .carry/z/s5[89]*.txz || exit 1
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
odd="--shapes 4096:14336:2:2,4096:14336:6:2,2048:1408:6:2 --tokens 1,4,16"
odd+=" --formats int4:g128,int2:g128,mixed:rr --reps 20"
for phase in "$@"; do
  round=${phase#*:}
  case ${phase%%:*} in
    aligned) scripts/gpu_ab_phase.sh .carry/z/s59q.txz t59 aligned "$round" "$decode" ;;
    v2) scripts/gpu_ab_phase.sh .carry/z/s58v.txz t58v v2 "$round" "$decode" ;;
    odd) scripts/gpu_ab_phase.sh .carry/z/s59q.txz t59 odd "$round" "$odd" ;;
    oddbase) scripts/gpu_ab_phase.sh .carry/z/s59b.txz t59b oddbase "$round" "$odd" ;;
    tests)
      PTX_FILTER='GpuKernels.GroupedGemmDecode*' scripts/gpu_ab_tests.sh .carry/z/s59t.txz t59 \
        '*WaitsForThePrevious*:*Graph*:*Mixed*:*ManyExperts*'
      ;;
    pack) tar czf "$OUT/ab_$(date +%H%M%S).tgz" -C "$OUT" ab && rm -rf "$OUT/ab" ;;
  esac
done
