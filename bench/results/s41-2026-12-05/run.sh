#!/usr/bin/env bash
# Session 41's device calls: branch s41-tcq-dev (a device path for the trellis formats: the
# decode kernel multiplies the codes' values by x rotated once per token, x_rotate.cuh). Binaries
# travel packed in the ignored .carry/z (the carry limit is 64 MiB):
#   s41f.txz: n41/qmoe_gpu_tests, n41/libqmoe_c.so.1, n41/qmoe (the branch; gpu preset: sm_90a
#             SASS + compute_80 PTX);
#   s41b.txz: m41/qmoe (c044fb3's kernels for the A/B, sm_90a only; session 40 measured main
#             596149c equal to it). Both archives together exceed the carry limit: the ab phase
#             runs on the machine the check phase left warm, with n41 extracted there.
#   here:   bash bench/results/s41-2026-12-05/run.sh pack
#   device: bash bench/results/s41-2026-12-05/run.sh check   # carry [".carry/z/s41f.txz"]
#           bash bench/results/s41-2026-12-05/run.sh ab      # carry [".carry/z/s41b.txz"]
#           bash bench/results/s41-2026-12-05/run.sh recheck # carry [".carry/z/s41f.txz"] (rebuilt)
#           bash bench/results/s41-2026-12-05/run.sh final   # carry [".carry/z/s41g.txz"]
# check: scripts/gpu_check.sh: every GPU test on sm_90a, a bench of the trellis formats beside
# int2 / int4 / vq2, memcheck and racecheck on the small cases (the trellis small test, the
# chain and graph tests with a trellis bank among them), the trellis and dequantize tests on the
# compute_80 PTX (the A100 path), the demo; packed as gpu_check.tgz.
# Then memcheck of the chain and graph tests: memcheck_chain.log.
# ab: main against the branch on the formed kernels' formats (vq2, nuq2, nuq4: those kernels
# now hold the trellis decoders too) and int4: ab.tgz, ab_table.txt.
set -u
export CUDA_CACHE_MAXSIZE=4294967296
phase=${1:?pack, check, ab, recheck, final or pack-final}
case $phase in
  pack)
    set -e
    mkdir -p .carry/n41 .carry/m41 .carry/z
    cp build-s40/bin/qmoe_gpu_tests build-s40/bin/qmoe .carry/n41/
    cp -L "$(find build-s40 -name libqmoe_c.so.1 | head -1)" .carry/n41/
    cp /work/base/build-base/bin/qmoe .carry/m41/
    strip .carry/n41/* .carry/m41/*
    XZ_OPT="-9 -T2" tar cJf .carry/z/s41f.txz -C .carry n41/qmoe_gpu_tests n41/libqmoe_c.so.1 \
      n41/qmoe
    XZ_OPT="-9 -T2" tar cJf .carry/z/s41b.txz -C .carry m41/qmoe
    ls -l .carry/z/ ;;
  check)
    tar xJf .carry/z/s41f.txz -C .carry && chmod +x .carry/n41/*
    QMOE_BIN=.carry/n41 QMOE_COMMIT=s41-tcq-dev timeout 450 bash scripts/gpu_check.sh \
      --bench-args "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,4,16,64 --formats tcq2,tcq2.5,tcq3,tcq4,vq2,int2:g128,int4:g128" \
      --ptx-filter '*Trellis*:TrellisDecode.*:*DequantIsBitIdenticalToCpuRefSmall' \
      --sanitize-filter '*TrellisDecodersMatchReferenceSmall:*DequantIsBitIdenticalToCpuRefSmall' \
      --step-timeout 150 --pack
    echo "gpu_check rc=$?"
    # memcheck on the chain and graph tests (their trellis banks: the rotation kernel behind PDL
    # and inside a capture).
    LD_LIBRARY_PATH=.carry/n41${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 120 \
      compute-sanitizer --tool memcheck --error-exitcode 1 .carry/n41/qmoe_gpu_tests \
      --gtest_filter='*WaitsForThePreviousKernelSmall:*GroupedGemmIsGraphCapturable' \
      >"$OUT/memcheck_chain.log" 2>&1
    echo "memcheck chain rc=$?"
    grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck_chain.log" | tail -5 ;;
  ab)
    [[ -x .carry/n41/qmoe ]] || { echo "no .carry/n41: run check on this machine first"; exit 2; }
    tar xJf .carry/z/s41b.txz -C .carry && chmod +x .carry/m41/*
    args="--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,4,16 --formats vq2,nuq2,nuq4,int4:g128 --reps 20"
    OUT=$OUT/x timeout 500 bash scripts/gpu_ab.sh 4 "$args" .carry/m41/qmoe .carry/n41/qmoe \
      >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"
    cp "$OUT/x/ab.tgz" "$OUT/" && cp "$OUT/x/ab/n41.txt" "$OUT/ab_table.txt" && rm -rf "${OUT:?}/x"
    tail -4 "$OUT/ab_table.txt" ;;
  recheck)
    # The tests' fix (trellis scales 2^10 smaller: fp16 gated and chained outputs overflowed with
    # the other formats' scales), rebuilt test binary in s41f.txz: every GPU test, memcheck on the
    # chain, graph and trellis tests, a bench of the other trellis rates.
    tar xJf .carry/z/s41f.txz -C .carry && chmod +x .carry/n41/*
    QMOE_BIN=.carry/n41 QMOE_COMMIT=s41-tcq-dev timeout 420 bash scripts/gpu_check.sh \
      --bench-args "--shapes mixtral-8x7b,deepseek-v2-lite,qwen3-30b-a3b --tokens 1,16 --formats tcq1.5,tcq2,tcq3.5,int4:g128" \
      --ptx-filter '' --sanitizers memcheck \
      --sanitize-filter '*WaitsForThePreviousKernelSmall:*GroupedGemmIsGraphCapturable:*Trellis*:CAbiGpu.*' \
      --skip-demo --step-timeout 200 --pack
    echo "gpu_check rc=$?" ;;
  final)
    # The landed tree after a helper's review (a warp sync in the dequantize kernel's trellis
    # tiles, a trap for a trellis item without a rotated x; two more trellis GPU tests), packed
    # by `run.sh pack-final` into s41g.txz: every GPU test on sm_90a, memcheck on the small,
    # trellis and C ABI tests.
    tar xJf .carry/z/s41g.txz -C .carry && chmod +x .carry/g41/*
    QMOE_BIN=.carry/g41 QMOE_COMMIT=s41-final timeout 500 bash scripts/gpu_check.sh --skip-bench \
      --skip-demo --ptx-filter '' --sanitizers memcheck \
      --sanitize-filter '*Small*:*Trellis*:CAbiGpu.*' --step-timeout 240 --pack
    echo "gpu_check rc=$?" ;;
  pack-final)
    set -e
    mkdir -p .carry/g41 .carry/z
    cp build-s40/bin/qmoe_gpu_tests .carry/g41/
    cp -L "$(find build-s40 -name libqmoe_c.so.1 | head -1)" .carry/g41/
    strip .carry/g41/*
    XZ_OPT="-9 -T2" tar cJf .carry/z/s41g.txz -C .carry g41/qmoe_gpu_tests g41/libqmoe_c.so.1
    ls -l .carry/z/ ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
