#!/usr/bin/env bash
# Session 52's device calls (nvidia-h100-x1). Binaries travel packed in the ignored .carry/z
# (carry limit 64 MiB; two builds' binaries do not fit one archive: the fatbins are compressed,
# so xz finds little in common), built in build-gpu (gpu preset: sm_90a SASS + compute_80 PTX,
# Release, QMOE_BUILD_TESTS=ON). bench/results older than s51 are left out of the tree.
#   timers: session 51's `run.sh timers` (carry [".carry/z/s51d.txz"]; logs timers/diag.log).
#     Its records mixed the two launches of a layer (see docs/results.md "Session 52");
#     timers/diag.patch is the fixed diagnostic, run by `timers2` (carry [".carry/z/s52d.txz"]
#     = t52d/qmoe_diag, the patch on this session's tree; logs timers2/).
#   span: carry [".carry/z/s52.txz"] = t52/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}: this
#     session's x conversions over the experts' rows only. initcheck of the small cases and the
#     C ABI (session 51's fixed graph test; the first-offset test now leaves x's rows before
#     offsets[0] unwritten and has a trellis expert), every GPU test on sm_90a, memcheck, the
#     demo (gpu_check), then `rows` with the new qmoe (logs span/).
#   base: carry [".carry/z/s51m.txz"] (main at a14d986), right after span on the same warm
#     machine: `rows` with main's qmoe (logs base/). The A/B table (ab_table.py) of base
#     against span is made offline: one call cannot hold both, so the binaries alternate
#     between calls, not within one.
#   rows: the rows whose calls convert x: the integer decode forced on (x's digits) and a
#     trellis bank (the rotated x); one round in span and base, a second (rows2) after ptx.
#   ptx (carry s52.txz, after timers2): the first-offset and gated graph tests on the
#     compute_80 PTX (the A100 path of the changed kernels; logs span/tests_ptx80.log).
#   rows2 new (carry s52.txz), then rows2 base (carry s51m.txz): the second round.
#   The calls ran in the order span, base, timers2, ptx, rows2 new, rows2 base on one warm
#   H100; ab/ab_logs.py makes ab/ab_table.txt from the logs.
set -u
phase=${1:?timers|timers2|span|base|ptx|rows2}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi -L
rows() {  # rows BIN NAME
  mkdir -p "$OUT/ab"
  for round in ${ROUNDS:-1 2}; do
    "$1" bench --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 1,4,16 \
      --formats int2:g128,int8:g128 --integer-decode on --reps 20 \
      --out "$OUT/ab/$2_digits_$round" >"$OUT/ab/$2_digits_$round.log" 2>&1
    echo "$2 digits $round rc=$?"
    "$1" bench --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 1,16,256 \
      --formats tcq2 --reps 20 --out "$OUT/ab/$2_trellis_$round" >"$OUT/ab/$2_trellis_$round.log" 2>&1
    echo "$2 trellis $round rc=$?"
  done
  grep -hE "^(mixtral|deepseek|qwen3).*T=1 " "$OUT"/ab/"$2"_*_1.log | head -8
}
case $phase in
  timers)
    bash bench/results/s51-2026-12-06/run.sh timers ;;
  timers2)
    tar xJf .carry/z/s52d.txz -C .carry
    timeout 300 .carry/t52d/qmoe_diag bench --shapes all --tokens 1,4,16 --formats int4:g128 \
      --reps 20 --out "$OUT/diag" >"$OUT/diag.log" 2>&1
    echo "diag rc=$?"
    grep -E "^(mixtral|qwen3|deepseek|olmoe).*int4" "$OUT/diag.log" | head -15 ;;
  span)
    tar xJf .carry/z/s52.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t52${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    timeout 200 compute-sanitizer --tool initcheck --error-exitcode 3 --print-limit 1000 \
      .carry/t52/qmoe_gpu_tests --gtest_filter='*Small*:CAbiGpu.*' >"$OUT/initcheck.log" 2>&1
    echo "initcheck rc=$?"
    grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/initcheck.log" | head -5
    QMOE_BIN=.carry/t52 QMOE_COMMIT=s52 bash scripts/gpu_check.sh --step-timeout 200 \
      --ptx-filter '' --sanitizers memcheck --skip-bench | tail -10
    ROUNDS=1 rows .carry/t52/qmoe new ;;
  base)
    tar xJf .carry/z/s51m.txz -C .carry
    ROUNDS=1 rows .carry/t51m/qmoe base ;;
  ptx)
    tar xJf .carry/z/s52.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t52${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    CUDA_FORCE_PTX_JIT=1 timeout 330 .carry/t52/qmoe_gpu_tests \
      --gtest_filter='*FirstOffset*:*GatedSiluIsGraphCapturableSmall*' >"$OUT/tests_ptx80.log" 2>&1
    echo "ptx rc=$?"; grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/tests_ptx80.log" | head ;;
  rows2)
    side=${2:?new|base}
    if [[ $side == new ]]; then
      tar xJf .carry/z/s52.txz -C .carry
      export LD_LIBRARY_PATH=$PWD/.carry/t52${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
      ROUNDS=2 rows .carry/t52/qmoe new
    else
      tar xJf .carry/z/s51m.txz -C .carry
      ROUNDS=2 rows .carry/t51m/qmoe base
    fi
    (cd "$OUT" && tar czf ab.tgz ab && rm -rf ab) ;;
esac
