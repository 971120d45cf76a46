#!/usr/bin/env bash
# Session 33's prepared device calls (none ran in session 33: no device was lent), one phase per
# call (each under the 600 s limit). Binaries, packed in the ignored .carry/z (carry [".carry"]):
#   check.txz -> .carry/new: build-gpu's qmoe, qmoe_gpu_tests, libqmoe_c.so.1 of main (gpu
#                preset: sm_90a + compute_80 PTX, DLPack found), rebuilt in session 34 at 5cff145
#                (kernels as at fa126b1; host code and tests of session 34's formats)
#   bin.txz   -> .carry/{base,c1,c2,c2one}: prepare_ab.sh's compute_80-PTX-only builds (the A100
#                path, JIT on the device) of main, 12cd2f7, s33-tc-lean, and s33-tc-lean with the
#                two-strip form off (diagnostic); c2 also qmoe_gpu_tests and libqmoe_c.so.1
#   gemv.txz  -> .carry/gorder: branch s33-gemv-c2's qmoe, qmoe_gpu_tests, libqmoe_c.so.1 (gpu
#                preset)
# Device command:
#   for z in check bin gemv; do tar xJf .carry/z/$z.txz -C .carry; done && chmod +x .carry/*/* &&
#   bash bench/results/s33-2026-12-04/run.sh PHASE
# Phases, in the order to run them:
#   check       scripts/gpu_check.sh on main: GPU tests (sm_90a, compute_80 PTX), the default
#               sweep, memcheck, racecheck, demo (never run on session 32's last commits)
#   tc-tests    c2's GPU tests and memcheck of the small ones, on the PTX (~3 min with the JIT)
#   tc-ab       mma.sync tile kernel, `--kernel prefill`, 2 rounds: base against c1 (one strip
#               multiplies every chunk pair), c2 (c1 + the lean k loop) and c2one; T = 128 has
#               experts ending in partial token blocks (what c1 may cost), T = 4096 full ones
#   gemv-tests  s33-gemv-c2's GPU tests on sm_90a and memcheck of the small ones (~2 min)
#   gemv-ab     decode kernel, `--kernel decode` at T = 48 and 160: means of 10-15 tokens per
#               active expert, except Mixtral at 160 (40) and DS-V2-Lite / Qwen3 at 48 (4.5 / 3);
#               2 rounds; the second set with `--integer-decode off` puts int2 / int8 on the
#               changed bf16 decode too (~6 min)
set -u
phase=${1:?check, tc-tests, tc-ab, gemv-tests or gemv-ab}
export CUDA_CACHE_MAXSIZE=4294967296
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS

gpu_tests() {  # gpu_tests DIR: the GPU tests of DIR's qmoe_gpu_tests, then memcheck
  local dir=$1 name
  name=$(basename "$dir")
  LD_LIBRARY_PATH=$PWD/$dir timeout 240 "$dir/qmoe_gpu_tests" >"$OUT/tests_$name.log" 2>&1
  echo "tests $name rc=$? ($((SECONDS - t0)) s)"
  tail -3 "$OUT/tests_$name.log"
  grep FAILED "$OUT/tests_$name.log" | head
  LD_LIBRARY_PATH=$PWD/$dir timeout 180 compute-sanitizer --tool memcheck --error-exitcode 3 \
    "$dir/qmoe_gpu_tests" --gtest_filter='*Small*' >"$OUT/memcheck_$name.log" 2>&1
  echo "memcheck $name rc=$? ($((SECONDS - t0)) s)"
  grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck_$name.log" | tail -3
}

ab() {  # ab TAG SECONDS "BENCH ARGS" BASE NEW...: scripts/gpu_ab.sh, 2 rounds, tables + raw runs
  local tag=$1 limit=$2 args=$3
  shift 3
  OUT=$OUT/$tag timeout "$limit" bash scripts/gpu_ab.sh 2 "$args" "$@"
  echo "ab $tag rc=$? ($((SECONDS - t0)) s)"
  local b
  for b in "${@:2}"; do
    b=$(basename "$(dirname "$b")")
    [[ -f $OUT/$tag/ab/$b.txt ]] && cp "$OUT/$tag/ab/$b.txt" "$OUT/ab_${tag}_$b.txt"
  done
  tar czf "$OUT/ab_${tag}_raw.tgz" -C "$OUT/$tag" ab && rm -rf "${OUT:?}/$tag"
}

case $phase in
  check)
    QMOE_COMMIT=${QMOE_COMMIT:-5cff145} QMOE_BIN=.carry/new OUT=$OUT/check \
      bash scripts/gpu_check.sh --pack --bench-args "" 2>&1 | tail -22
    ;;
  tc-tests) gpu_tests .carry/c2 ;;
  tc-ab)
    # JIT warm-up: each binary compiles its PTX into the cache before anything is timed.
    for b in base c1 c2 c2one; do
      timeout 45 .carry/$b/qmoe bench --kernel prefill --shapes olmoe --tokens 1024 \
        --formats int4:g128,int2:g128,int8:g128,bf16 --reps 2 --out "$OUT/jit" >/dev/null 2>&1
      echo "jit $b rc=$? ($((SECONDS - t0)) s)"
    done
    rm -rf "$OUT/jit"
    # What remains of the call, less ~40 s for packing and the transfer.
    ab tc $((550 - (SECONDS - t0))) "--kernel prefill \
      --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 128,4096 \
      --formats int4:g128,int2:g128,int8:g128,bf16 --reps 10" \
      .carry/base/qmoe .carry/c1/qmoe .carry/c2/qmoe .carry/c2one/qmoe
    ;;
  gemv-tests) gpu_tests .carry/gorder ;;
  gemv-ab)
    mkdir -p .carry/main && cp .carry/new/qmoe .carry/main/qmoe
    export LD_LIBRARY_PATH=$PWD/.carry/new${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    rows="--kernel decode --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 48,160"
    ab gemv_auto 280 "$rows --formats int4:g128,int4:g32,int3:g32,int8:g64 --reps 20" \
      .carry/main/qmoe .carry/gorder/qmoe
    ab gemv_bf16 250 "$rows --formats int8:g128,int8:g32,int2:g32 --integer-decode off --reps 20" \
      .carry/main/qmoe .carry/gorder/qmoe
    ;;
  *)
    echo "unknown phase $phase"
    exit 2
    ;;
esac
echo "total $((SECONDS - t0)) s"
