#!/usr/bin/env bash
# Session 56's device calls (nvidia-h100-x1): the decode launches that wait before their schedule
# (the gate/up launch) run one empty item of the bank's lowest decoder through the item loop
# before that wait, so that the per-item code is fetched while the previous kernel ends
# (branch s56-warm-item), against main's kernels. One archive per call (scripts/gpu_ab_phase.sh):
#   new:   carry [".carry/z/s56.txz"] = t56/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (build-gpu:
#          sm_90a SASS + compute_80 PTX): the rows, then the GPU suite and memcheck.
#   newb:  carry [".carry/z/s56b.txz"] = t56b/: the same with the schedule's item count read from
#          shared memory where needed instead of carried through the loop (v3 in ptxas/: the
#          first form, fe94f67, spilled more in most variants and ran 1.09x the time); its rows,
#          then the GPU suite and memcheck; newb2: a second round.
#   base:  carry [".carry/z/s52.txz"] = t52/ (main's kernels, d250354), the rows; new2, base2: a
#          second round on the same warm machine (binaries unpacked by the earlier calls).
#   diag:  carry [".carry/z/s56d.txz"] = t56d/qmoe: v3 with session 55's phase timers and cycle
#          stamps (diag.patch here, branch s56-diag), the warm unit's cycles added; diagbase: carry
#          [".carry/z/s55d.txz"] = t55d/qmoe, session 55's diagnostic of main's loop (with its
#          descriptor prefetch, which measured 1.000), on the same warm machine.
# Table: scripts/ab_table.py ab/base_1.log ab/new_1.log ab/base_2.log ab/new_2.log.
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
phase=${1:?new|base|new2|base2|newb|newb2|diag|diagbase}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi -L
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
tests() {  # tests ARCHIVE DIR
  use_carry "$1" "$2" || return 1
  mkdir -p "$OUT/new"
  timeout 200 ".carry/$2/qmoe_gpu_tests" >"$OUT/new/tests_sm90.log" 2>&1
  echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/new/tests_sm90.log"
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 ".carry/$2/qmoe_gpu_tests" \
    --gtest_filter='*WaitsForThePrevious*:*Graph*:*Mixed*' >"$OUT/new/memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" "$OUT/new/memcheck.log"
}
diag() {  # diag ARCHIVE DIR NAME
  use_carry "$1" "$2" || return 1
  mkdir -p "$OUT/diag"
  timeout 300 ".carry/$2/qmoe" bench --shapes all --tokens 1,4 --formats int4:g128,int2:g128 \
    --reps 20 --out "$OUT/diag/$3_rows" >"$OUT/diag/$3.log" 2>&1
  echo "$3 rc=$?"
  tar czf "$OUT/diag/$3_rows.tgz" -C "$OUT/diag" "$3_rows" && rm -rf "$OUT/diag/$3_rows"
  grep -E "^diag (qmoe|  cyc)|T=1 " "$OUT/diag/$3.log" | head -60
}
case $phase in
  diag) diag .carry/z/s56d.txz t56d diag ;;
  diagbase) diag .carry/z/s55d.txz t55d diagbase ;;
  new) scripts/gpu_ab_phase.sh .carry/z/s56.txz t56 new 1 "$decode"; tests .carry/z/s56.txz t56 ;;
  newb) scripts/gpu_ab_phase.sh .carry/z/s56b.txz t56b newb 1 "$decode"; tests .carry/z/s56b.txz t56b ;;
  newb2) scripts/gpu_ab_phase.sh .carry/z/s56b.txz t56b newb 2 "$decode" ;;
  base) scripts/gpu_ab_phase.sh .carry/z/s52.txz t52 base 1 "$decode" ;;
  new2) scripts/gpu_ab_phase.sh .carry/z/s56.txz t56 new 2 "$decode" ;;
  base2) scripts/gpu_ab_phase.sh .carry/z/s52.txz t52 base 2 "$decode" ;;
esac
