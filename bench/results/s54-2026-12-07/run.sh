#!/usr/bin/env bash
# Session 54's device calls (nvidia-h100-x1): x's row conversions (x_digits_kernel,
# rotate_x_kernel) issue the offsets' two loads before griddepcontrol.wait where the offsets were
# final before the previous kernel (GemmProblem::early_schedule; in the bench the down launch,
# bench/grouped_gemm_runs.cu), against main's kernels. Binaries travel packed in the ignored
# .carry/z (built in build-gpu, the gpu preset: sm_90a SASS + compute_80 PTX):
#   new: carry [".carry/z/s54.txz"] = t54/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} of branch
#     s54-xconv-offsets: the GPU tests of the launches behind x's conversions, memcheck of the
#     PDL-order test, then `rows`.
#   base: carry [".carry/z/s52.txz"] = t52/ (main's kernels: d250354), `rows`; new2, base2: a
#     second round on the same warm machine (binaries kept from the earlier calls).
#   ab/ab_logs.py (session 53's, which reads the same log names) makes the table.
set -u
phase=${1:?new|base|new2|base2}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi -L
rows() {  # rows BIN NAME ROUND: the launches behind an x conversion with promised offsets
  mkdir -p "$OUT/ab"
  "$1" bench --shapes all --tokens 1,4 --formats int2:g128,tcq2 --reps 20 \
    --out "$OUT/ab/$2_auto_$3" >"$OUT/ab/$2_auto_$3.log" 2>&1
  echo "$2 auto $3 rc=$?"
  "$1" bench --shapes all --tokens 1 --formats int4:g128 --integer-decode on \
    --reps 20 --out "$OUT/ab/$2_digits_$3" >"$OUT/ab/$2_digits_$3.log" 2>&1
  echo "$2 digits $3 rc=$?"
  grep -hE "^(qwen3|deepseek-v2).* T=1 " "$OUT/ab/$2_auto_$3.log" | head -6
}
unpack() {  # unpack ARCHIVE DIR (kept from an earlier call on the same warm machine if there)
  [ -x ".carry/$2/qmoe" ] || tar xJf ".carry/z/$1" -C .carry
  export LD_LIBRARY_PATH=$PWD/.carry/$2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
case $phase in
  new)
    unpack s54.txz t54
    mkdir -p "$OUT/new"
    # The tests over the launches behind x's conversions (device time was short).
    timeout 200 .carry/t54/qmoe_gpu_tests \
      --gtest_filter='*WaitsForThePrevious*:*Trellis*:*Decode*:*FirstOffset*:*Graph*:*Gated*:*Imma*:*Integer*' \
      >"$OUT/new/tests_sm90.log" 2>&1
    echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/new/tests_sm90.log"
    timeout 90 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/t54/qmoe_gpu_tests \
      --gtest_filter='*WaitsForThePrevious*' >"$OUT/new/memcheck.log" 2>&1
    echo "memcheck rc=$?"; grep -E "ERROR SUMMARY" "$OUT/new/memcheck.log"
    rows .carry/t54/qmoe new 1 ;;
  base) unpack s52.txz t52; rows .carry/t52/qmoe base 1 ;;
  new2) unpack s54.txz t54; rows .carry/t54/qmoe new 2 ;;
  base2) unpack s52.txz t52; rows .carry/t52/qmoe base 2 ;;
esac
tar czf "/tmp/s54_$phase.tgz" -C "$OUT" . && rm -rf "${OUT:?}"/* && mv "/tmp/s54_$phase.tgz" "$OUT/"
