#!/usr/bin/env bash
# Session 40's device calls: branch s40-vq-rates (device decoders for vq1.5, vq2.5 and vq3; one
# VectorDecoder template for the four vector rates). Binaries travel packed in the ignored
# .carry/z (the carry limit is 64 MiB):
#   s40f.txz: n40/qmoe_gpu_tests, n40/libqmoe_c.so.1, n40/qmoe (the branch; gpu preset: sm_90a
#             SASS + compute_80 PTX);  s40b.txz: m40/qmoe (main, c044fb3; sm_90a only).
#   here:   bash bench/results/s40-2026-12-05/run.sh pack
#   device: bash bench/results/s40-2026-12-05/run.sh check   # carry [".carry/z/s40f.txz"]
#           bash bench/results/s40-2026-12-05/run.sh ab      # carry [".carry/z/s40b.txz"], on the
#                                                            # same warm machine (n40 extracted)
#           bash bench/results/s40-2026-12-05/run.sh final   # carry [".carry/z/s40g.txz"]
# check: scripts/gpu_check.sh: every GPU test on sm_90a (main's landed LUT code and the new
# decoders), a bench of the vector, LUT and int formats, memcheck and racecheck on the small
# cases (the formed decoders' small test among them), the demo; packed as gpu_check.tgz.
# ab: main against the branch, 4 alternating rounds, on vq2 / nuq2 / nuq4 (the formed kernels
# now hold three more decoders) and int4 (kernels without them): ab.tgz, ab_table.txt; then the
# dequantize, vector and formed-decoder tests on the compute_80 PTX (the A100 path, JIT-compiled):
# ptx80.log.
set -u
export CUDA_CACHE_MAXSIZE=4294967296
phase=${1:?pack, check or ab}
case $phase in
  pack)
    set -e
    mkdir -p .carry/n40 .carry/m40 .carry/z
    cp build-s40/bin/qmoe_gpu_tests build-s40/bin/qmoe .carry/n40/
    cp -L "$(find build-s40 -name libqmoe_c.so.1 | head -1)" .carry/n40/
    cp /work/base/build-base/bin/qmoe .carry/m40/
    strip .carry/n40/* .carry/m40/*
    XZ_OPT="-9 -T1" tar cJf .carry/z/s40f.txz -C .carry n40/qmoe_gpu_tests n40/libqmoe_c.so.1 n40/qmoe
    XZ_OPT="-9 -T1" tar cJf .carry/z/s40b.txz -C .carry m40/qmoe
    ls -l .carry/z/ ;;
  check)
    tar xJf .carry/z/s40f.txz -C .carry && chmod +x .carry/n40/*
    QMOE_BIN=.carry/n40 QMOE_COMMIT=s40-vq-rates bash scripts/gpu_check.sh \
      --bench-args "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,4,16,4096 --formats vq1.5,vq2,vq2.5,vq3,nuq2,int2:g128,int4:g128" \
      --ptx-filter '' --step-timeout 200 --pack
    echo "gpu_check rc=$?" ;;
  ab)
    tar xJf .carry/z/s40b.txz -C .carry && chmod +x .carry/m40/*
    args="--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1,4,16,4096"
    args+=" --formats vq2,nuq2,nuq4,int4:g128 --reps 20"
    OUT=$OUT/x timeout 300 bash scripts/gpu_ab.sh 4 "$args" .carry/m40/qmoe .carry/n40/qmoe \
      >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"
    cp "$OUT/x/ab.tgz" "$OUT/" && cp "$OUT/x/ab/n40.txt" "$OUT/ab_table.txt" && rm -rf "${OUT:?}/x"
    tail -4 "$OUT/ab_table.txt"
    CUDA_FORCE_PTX_JIT=1 timeout 200 .carry/n40/qmoe_gpu_tests \
      --gtest_filter="*Dequant*:VectorDecode.*:*FormedDecoders*:GpuKernels.GroupedGemmMatchesReferencePerFormat" >"$OUT/ptx80.log" 2>&1
    echo "ptx80 rc=$?"
    grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/ptx80.log" ;;
  final)
    # The fixed build (host read of the code planes, fixed ring depth per instantiation; with the
    # C ABI, whose library this machine's first build lacked): every GPU test, memcheck on the
    # C ABI and formed-decoder tests. Packed here by `run.sh pack-final` into s40g.txz.
    tar xJf .carry/z/s40g.txz -C .carry && chmod +x .carry/g40/*
    QMOE_BIN=.carry/g40 bash scripts/gpu_check.sh --skip-bench --skip-demo --ptx-filter '' \
      --sanitizers memcheck --sanitize-filter 'CAbiGpu.*:*FormedDecoders*' --step-timeout 200 --pack
    echo "gpu_check rc=$?" ;;
  pack-final)
    set -e
    mkdir -p .carry/g40 .carry/z
    cp build-s40/bin/qmoe_gpu_tests .carry/g40/
    cp -L "$(find build-s40 -name libqmoe_c.so.1 | head -1)" .carry/g40/
    strip .carry/g40/*
    XZ_OPT="-9 -T2" tar cJf .carry/z/s40g.txz -C .carry g40/qmoe_gpu_tests g40/libqmoe_c.so.1
    ls -l .carry/z/ ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
