#!/usr/bin/env bash
# Session 33's prepared device calls (not run in session 33: no device was lent). The binaries
# are prepare_ab.sh's, all compute_80 PTX only (the A100 code path, JIT-compiled on the device).
#   run_ab.sh tests   the GPU tests of branch s33-tc-lean (c2) and memcheck of the small ones
#                     (~3 min: the tests JIT their kernels first)
#   run_ab.sh ab      A/B of the mma.sync tile kernel, `--kernel prefill`, 2 rounds: base (main)
#                     against c1 (one strip multiplies every chunk pair), c2 (c1 + the lean k
#                     loop) and c2one (c2 with one strip for every bank, diagnostic); T = 128 has
#                     experts ending in partial token blocks (what c1 may cost), T = 4096 full ones
# One phase per device call (each stays under the 600 s limit).
set -u
phase=${1:?tests or ab}
export CUDA_CACHE_MAXSIZE=4294967296
export LD_LIBRARY_PATH=$PWD/.carry/c2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,temperature.gpu \
  --format=csv,noheader | tee "$OUT/device.txt"
t0=$SECONDS
case $phase in
  tests)
    timeout 240 .carry/c2/qmoe_gpu_tests >"$OUT/tests_ptx80_c2.log" 2>&1
    echo "tests c2 rc=$? ($((SECONDS - t0)) s)"
    tail -3 "$OUT/tests_ptx80_c2.log"
    grep FAILED "$OUT/tests_ptx80_c2.log" | head
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 .carry/c2/qmoe_gpu_tests \
      --gtest_filter='*Small*' >"$OUT/memcheck_ptx80_c2.log" 2>&1
    echo "memcheck c2 rc=$? ($((SECONDS - t0)) s)"
    grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck_ptx80_c2.log" | tail -3
    ;;
  ab)
    # JIT warm-up: each binary compiles its PTX into the cache before anything is timed.
    for b in base c1 c2 c2one; do
      timeout 45 .carry/$b/qmoe bench --kernel prefill --shapes olmoe --tokens 1024 \
        --formats int4:g128,int2:g128,int8:g128,bf16 --reps 2 --out "$OUT/jit" >/dev/null 2>&1
      echo "jit $b rc=$? ($((SECONDS - t0)) s)"
    done
    rm -rf "$OUT/jit"
    # What remains of the call, less ~40 s for packing and the transfer.
    OUT=$OUT/p timeout $((550 - (SECONDS - t0))) bash scripts/gpu_ab.sh 2 "--kernel prefill \
      --shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 128,4096 \
      --formats int4:g128,int2:g128,int8:g128,bf16 --reps 10" \
      .carry/base/qmoe .carry/c1/qmoe .carry/c2/qmoe .carry/c2one/qmoe
    echo "ab rc=$? ($((SECONDS - t0)) s)"
    # The tables if gpu_ab.sh finished; the raw runs whatever happened.
    for n in c1 c2 c2one; do [[ -f $OUT/p/ab/$n.txt ]] && cp "$OUT/p/ab/$n.txt" "$OUT/ab_$n.txt"; done
    tar czf "$OUT/ab_raw.tgz" -C "$OUT/p" ab && rm -rf "$OUT/p"
    ;;
  *)
    echo "unknown phase $phase (tests or ab)"
    exit 2
    ;;
esac
echo "total $((SECONDS - t0)) s"
