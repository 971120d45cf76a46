#!/usr/bin/env bash
# Session 33's prepared device calls for branch s33-gemv-c2 (not run in session 33: no device
# was lent): the decode kernel's two-chunk (9-16 tokens per item) bf16 affine decode, group by
# group. Binaries (gpu preset: sm_90a + compute_80 PTX): base = main's, from .carry/z/check.txz
# (new/); gorder = the branch's qmoe, qmoe_gpu_tests and libqmoe_c.so.1, from .carry/z/gemv.txz.
# Device command, carry [".carry"]:
#   for z in check gemv; do tar xJf .carry/z/$z.txz -C .carry; done && chmod +x .carry/*/* &&
#   bash bench/results/s33-2026-12-04/run_gemv_ab.sh tests|ab
#   tests  the branch's GPU tests on sm_90a, memcheck of the small ones (~2 min)
#   ab     `--kernel decode` at T = 48 and 160: means of 10-15 tokens per active expert, except
#          Mixtral at 160 (40) and DS-V2-Lite / Qwen3 at 48 (4.5 / 3); 2 rounds; the second set
#          with `--integer-decode off` puts int2 / int8 on the changed bf16 decode too (~6 min)
set -u
phase=${1:?tests or ab}
export LD_LIBRARY_PATH=$PWD/.carry/gorder${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS
case $phase in
  tests)
    timeout 200 .carry/gorder/qmoe_gpu_tests >"$OUT/tests_sm90_gorder.log" 2>&1
    echo "tests rc=$? ($((SECONDS - t0)) s)"
    tail -3 "$OUT/tests_sm90_gorder.log"
    grep FAILED "$OUT/tests_sm90_gorder.log" | head
    timeout 200 compute-sanitizer --tool memcheck --error-exitcode 3 \
      .carry/gorder/qmoe_gpu_tests --gtest_filter='*Small*' >"$OUT/memcheck_gorder.log" 2>&1
    echo "memcheck rc=$? ($((SECONDS - t0)) s)"
    grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck_gorder.log" | tail -3
    ;;
  ab)
    mkdir -p .carry/base && cp .carry/new/qmoe .carry/base/qmoe
    rows="--kernel decode --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 48,160"
    OUT=$OUT/a timeout 280 bash scripts/gpu_ab.sh 2 \
      "$rows --formats int4:g128,int4:g32,int3:g32,int8:g64 --reps 20" \
      .carry/base/qmoe .carry/gorder/qmoe
    echo "ab auto ($((SECONDS - t0)) s)"
    OUT=$OUT/b timeout 250 bash scripts/gpu_ab.sh 2 \
      "$rows --formats int8:g128,int8:g32,int2:g32 --integer-decode off --reps 20" \
      .carry/base/qmoe .carry/gorder/qmoe
    echo "ab integer-decode off ($((SECONDS - t0)) s)"
    for p in a b; do
      [[ -f $OUT/$p/ab/gorder.txt ]] && cp "$OUT/$p/ab/gorder.txt" "$OUT/ab_$p.txt"
      tar czf "$OUT/ab_${p}_raw.tgz" -C "$OUT/$p" ab && rm -rf "${OUT:?}/$p"
    done
    ;;
  *)
    echo "unknown phase $phase (tests or ab)"
    exit 2
    ;;
esac
echo "total $((SECONDS - t0)) s"
