#!/usr/bin/env bash
# Session 55's device calls (nvidia-h100-x1): the launches that wait for their previous kernel
# before their schedule (the gate/up decode launch, the tile kernels) prefetch their bank's
# descriptor table into L2 before griddepcontrol.wait (branch s55-desc-prefetch), against
# main's kernels. One archive per call (scripts/gpu_ab_phase.sh):
#   new:  carry [".carry/z/s55.txz"] = t55/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (build-gpu:
#         sm_90a SASS + compute_80 PTX): the rows.
#   base: carry [".carry/z/s52.txz"] = t52/ (main's kernels, d250354), the rows; new2, base2: a
#         second round on the same warm machine (binaries unpacked by the earlier calls).
#   tests (if the rows show a gain; carry s55.txz unless t55 is unpacked there): the GPU suite,
#         memcheck of the PDL-order and on-demand tile tests. (Device starts failed for an hour
#         this session, so the rows, which decide, go first.)
# Table: scripts/ab_table.py ab/base_1.log ab/new_1.log ab/base_2.log ab/new_2.log (and the pf_
# logs); desc_prefetch_ab/ab_table.txt is that over the three rounds.
set -u
phase=${1:?new|base|new2|base2|tests|diag}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi -L
decode="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128 --reps 20"
prefill="--shapes mixtral-8x7b,deepseek-v2-lite --tokens 4096 --formats int4:g128 --reps 10"
rows() {  # rows ARCHIVE DIR NAME ROUND
  scripts/gpu_ab_phase.sh "$1" "$2" "$3" "$4" "$decode"
  scripts/gpu_ab_phase.sh "$1" "$2" "pf_$3" "$4" "$prefill"
}
case $phase in
  tests)
    [ -x .carry/t55/qmoe_gpu_tests ] || tar xJf .carry/z/s55.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t55${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    mkdir -p "$OUT/new"
    timeout 240 .carry/t55/qmoe_gpu_tests >"$OUT/new/tests_sm90.log" 2>&1
    echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/new/tests_sm90.log"
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/t55/qmoe_gpu_tests \
      --gtest_filter='*WaitsForThePrevious*:*TileKernelHandsOutLongItemsOnDemand*' \
      >"$OUT/new/memcheck.log" 2>&1
    echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" "$OUT/new/memcheck.log" ;;
  diag)  # carry [".carry/z/s55d.txz"]: session 52's phase timers (timers/diag.patch) with clock64
    # stamps splitting the first item's start (diag.patch here), on top of s55-desc-prefetch.
    tar xJf .carry/z/s55d.txz -C .carry
    mkdir -p "$OUT/diag"
    timeout 300 .carry/t55d/qmoe bench --shapes all --tokens 1,4 --formats int4:g128,int2:g128 \
      --reps 20 --out "$OUT/diag/rows" >"$OUT/diag/diag.log" 2>&1
    echo "diag rc=$?"; tar czf "$OUT/diag/rows.tgz" -C "$OUT/diag" rows && rm -rf "$OUT/diag/rows"
    grep -E "^diag (qmoe|  cyc)|T=1 " "$OUT/diag/diag.log" | head -40 ;;
  new) rows .carry/z/s55.txz t55 new 1 ;;
  base) rows .carry/z/s52.txz t52 base 1 ;;
  new2) rows .carry/z/s55.txz t55 new 2 ;;
  base2) rows .carry/z/s52.txz t52 base 2 ;;
esac
