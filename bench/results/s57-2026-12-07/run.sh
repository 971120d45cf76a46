#!/usr/bin/env bash
# Session 57's device calls:
#   probe: carry [".carry/p57"] = p57/stream_probe (bench/probes/stream_probe.cu, nvcc -O3
#          -arch=sm_90a): the decode kernel's memory side alone (probe/stream_probe.txt).
#   diag:  carry [".carry/z/s57d.txz"] = t57d/qmoe: main's kernels with session 55's phase
#          timers and cycle stamps and three more in the first item's start (after its lookup,
#          after its descriptor's decoder id, at the decoder's code; diag/diag.patch, branch
#          s57-diag): the decode rows at T = 1 and 4.
#   new:   carry [".carry/z/s57.txz"] = t57/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (build-gpu:
#          sm_90a SASS + compute_80 PTX) of branch s57-sched-decoder (the decode kernel's items
#          look up their expert by a warp-wide search and switch on the decoder id the schedule
#          keeps): the rows; tests: its GPU suite, memcheck and the compute_80 PTX's tests (a
#          later call on the same machine, which still holds the unpacked binaries).
#   base:  carry [".carry/z/s52.txz"] = t52/ (main's kernels, d250354), the rows; new2, base2: a
#          second round on the same warm machine (binaries unpacked by the earlier calls).
# Table: scripts/ab_table.py ab/base_1.log ab/new_1.log ab/base_2.log ab/new_2.log.
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
export CUDA_CACHE_MAXSIZE=4294967296
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
for phase in "$@"; do
  case $phase in
    probe)
      mkdir -p "$OUT/probe"
      nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.limit --format=csv >"$OUT/probe/gpu.txt"
      timeout 240 .carry/p57/stream_probe >"$OUT/probe/stream_probe.txt" 2>&1
      echo "probe rc=$?"
      nvidia-smi --query-gpu=clocks.sm,clocks_throttle_reasons.active --format=csv >>"$OUT/probe/gpu.txt"
      cat "$OUT/probe/stream_probe.txt"
      ;;
    diag)
      use_carry .carry/z/s57d.txz t57d || exit 1
      mkdir -p "$OUT/diag"
      timeout 300 .carry/t57d/qmoe bench --shapes all --tokens 1,4 --formats int4:g128,int2:g128 \
        --reps 20 --out "$OUT/diag/rows" >"$OUT/diag/diag.log" 2>&1
      echo "diag rc=$?"
      tar czf "$OUT/diag/rows.tgz" -C "$OUT/diag" rows && rm -rf "$OUT/diag/rows"
      grep -E "^diag (qmoe|  cyc)|T=1 " "$OUT/diag/diag.log" | head -80
      ;;
    new) scripts/gpu_ab_phase.sh .carry/z/s57.txz t57 new 1 "$decode" ;;
    tests) scripts/gpu_ab_tests.sh .carry/z/s57.txz t57 '*WaitsForThePrevious*:*Graph*:*Mixed*' ;;
    base) scripts/gpu_ab_phase.sh .carry/z/s52.txz t52 base 1 "$decode" ;;
    new2) scripts/gpu_ab_phase.sh .carry/z/s57.txz t57 new 2 "$decode" ;;
    base2) scripts/gpu_ab_phase.sh .carry/z/s52.txz t52 base 2 "$decode" ;;
  esac
done
