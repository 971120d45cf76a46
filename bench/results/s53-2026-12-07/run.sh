#!/usr/bin/env bash
# Session 53's device calls (nvidia-h100-x1): the decode kernel's one-strip variant at three
# blocks per SM (grouped_gemv.cuh one_strip_variant) against main. None ran in session 53 (every
# device start failed); session 54 ran new, base, new2 (results and verdict:
# bench/results/s54-2026-12-07/one_strip_ab/; not kept). The change is
# one_strip.patch (branch s53-one-strip, 084096e; not on main); its
# binaries are packed in .carry/z/s53.txz (ignored, on the session machine), main's in s52.txz.
# Run in the order new, base, new2, base2 on one warm machine, then ptx.
# Binaries travel packed in the ignored .carry/z (carry limit 64 MiB; two builds do not fit one
# archive), built in build-gpu
# (gpu preset: sm_90a SASS + compute_80 PTX, Release, QMOE_BUILD_TESTS=ON); bench/results older
# than s51 are left out of the tree.
#   new: carry [".carry/z/s53.txz"] = t53/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (this
#     session's change): the decode tests on sm_90a (session 54 filtered them: device time was
#     short), memcheck of the new test, then `rows` (logs new/, ab/new_*_1).
#   base: carry [".carry/z/s52.txz"] = t52/ (main's kernels: d250354; main since changed only a
#     test), right after new on the same warm machine: `rows` (ab/base_*_1).
#   new2, base2: the second round of rows (ab/*_2), same machine.
#   ptx (carry s53.txz): the decode tests on the compute_80 PTX (the A100 path: two blocks per
#     SM there, so the variant's register cap must not apply; logs new/tests_ptx80.log).
#   ab/ab_logs.py makes ab/ab_table.txt from the logs.
set -u
phase=${1:?new|base|new2|base2|ptx}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi -L
rows() {  # rows BIN NAME ROUND
  mkdir -p "$OUT/ab"
  "$1" bench --shapes all --tokens 1,2,4,16 --formats int4:g128,int2:g128 --reps 20 \
    --out "$OUT/ab/$2_auto_$3" >"$OUT/ab/$2_auto_$3.log" 2>&1
  echo "$2 auto $3 rc=$?"
  "$1" bench --shapes all --tokens 1 --formats int4:g128 --integer-decode on \
    --reps 20 --out "$OUT/ab/$2_digits_$3" >"$OUT/ab/$2_digits_$3.log" 2>&1
  echo "$2 digits $3 rc=$?"
  grep -hE "^(qwen3|deepseek-v2).*int4:g128 T=(1|2|4) " "$OUT/ab/$2_auto_$3.log" | head -6
}
unpack() {  # unpack ARCHIVE DIR: the binaries, the C ABI's library on the loader's path
  # Kept from an earlier call on the same warm machine (ignored paths stay there) where present.
  [ -x ".carry/$2/qmoe" ] || tar xJf ".carry/z/$1" -C .carry
  export LD_LIBRARY_PATH=$PWD/.carry/$2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
case $phase in
  new)
    unpack s53.txz t53
    mkdir -p "$OUT/new"
    # Session 54 (device time short): the decode tests only; the other kernels are main's.
    timeout 200 .carry/t53/qmoe_gpu_tests --gtest_filter='*Decode*:*HalfRow*:*Gated*' \
      >"$OUT/new/tests_sm90.log" 2>&1
    echo "tests rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran|grids " "$OUT/new/tests_sm90.log"
    for tool in memcheck; do
      timeout 120 compute-sanitizer --tool $tool --error-exitcode 3 \
        .carry/t53/qmoe_gpu_tests --gtest_filter='*OneStrip*' \
        >"$OUT/new/$tool.log" 2>&1
      echo "$tool rc=$?"; grep -E "ERROR SUMMARY" "$OUT/new/$tool.log"
    done
    rows .carry/t53/qmoe new 1 ;;
  base) unpack s52.txz t52; rows .carry/t52/qmoe base 1 ;;
  new2) unpack s53.txz t53; rows .carry/t53/qmoe new 2 ;;
  base2) unpack s52.txz t52; rows .carry/t52/qmoe base 2 ;;
  ptx)
    unpack s53.txz t53
    mkdir -p "$OUT/new"
    CUDA_FORCE_PTX_JIT=1 timeout 400 .carry/t53/qmoe_gpu_tests \
      --gtest_filter='*OneStrip*:*DecodeVariants*:*HalfItems*:*EightStrips*' \
      >"$OUT/new/tests_ptx80.log" 2>&1
    echo "ptx rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran|grids " "$OUT/new/tests_ptx80.log" ;;
esac
tar czf "/tmp/s53_$phase.tgz" -C "$OUT" . && rm -rf "${OUT:?}"/* && mv "/tmp/s53_$phase.tgz" "$OUT/"
