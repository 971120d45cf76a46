#!/usr/bin/env bash
# Session 44's device calls: branch s43-tcq-wgmma (the wgmma kernel's trellis launch, session 43,
# not yet run on a GPU) + main's tile_item_decoders + GroupedGemmArgs::tile_kernel (TileKernel:
# kMmaSync / kWgmma force a tile kernel; the bench's --tile-kernel). Binaries travel packed in
# the ignored .carry/z (the carry limit is 64 MiB):
#   s44t.txz: t44/qmoe_gpu_tests, t44/libqmoe_c.so.1, t44/qmoe (gpu preset: sm_90a SASS +
#             compute_80 PTX), built from the branch in build-s42 (worktree /work/s42).
#   here:   bash bench/results/s44-2026-12-06/run.sh pack
#   device: bash bench/results/s44-2026-12-06/run.sh check   # carry [".carry/z/s44t.txz"]
#           bash bench/results/s44-2026-12-06/run.sh fit     # same machine, after check
#           bash bench/results/s44-2026-12-06/run.sh split   # same machine, after check
# check: every GPU test on sm_90a (no PTX run: the A100 path's kernels are unchanged, and
# GroupedGemmTrellisAndOtherExpertsMatchReferenceOnEachTileKernel now runs the mma.sync kernel
# for every format on the H100); memcheck on the small, trellis, graph and C ABI tests;
# racecheck on the small trellis test and the tile-kernel test; a bench of tcq beside int4 and
# mixed:tq (kAuto) at decode to prefill sizes; the demo. gpu_check.tgz.
# fit: tcq2 / tcq3.5 / tcq4 / int4:g128 at kPrefill with each tile kernel forced, at means of
# 16-256 tokens per expert (Mixtral T = 64-1024, Qwen3 T = 256-4096): kTrellisWgmmaMinMean.
# split: tcq2 / tcq4 at means 14-20 (Mixtral T = 56-80, Qwen3 T = 224-320) with the decode
# kernel, the tile kernel and the per-expert split at 16 forced: kTrellisDecodeMean's side.
set -u
export CUDA_CACHE_MAXSIZE=4294967296
phase=${1:?pack, check, fit, fit56, split or rules}
bin=.carry/t44
# bench DIR ARGS...: one `qmoe bench` run into $OUT/DIR (json, csv and its log).
bench() {
  local dir=$1
  shift
  timeout 120 $bin/qmoe bench --reps 10 "$@" --out "$OUT/$dir" >"$OUT/$dir.log" 2>&1
  echo "$dir rc=$?"
}
case $phase in
  pack)
    set -e
    mkdir -p $bin .carry/z
    cp build-s42/bin/qmoe_gpu_tests build-s42/bin/qmoe $bin/
    cp -L "$(find build-s42 -name libqmoe_c.so.1 | head -1)" $bin/
    strip $bin/*
    XZ_OPT="-9 -T2" tar cJf .carry/z/s44t.txz -C .carry t44/qmoe_gpu_tests t44/libqmoe_c.so.1 t44/qmoe
    ls -l .carry/z/ ;;
  check)
    tar xJf .carry/z/s44t.txz -C .carry && chmod +x $bin/*
    QMOE_BIN=$bin QMOE_COMMIT=s43-tcq-wgmma timeout 420 bash scripts/gpu_check.sh \
      --bench-args "--shapes mixtral-8x7b,qwen3-30b-a3b --tokens 16,64,256,1024,4096 --formats tcq2,tcq3.5,tcq4,int4:g128,mixed:tq --reps 10" \
      --ptx-filter '' --sanitizers memcheck \
      --sanitize-filter '*Small*:*Trellis*:*GroupedGemmIsGraphCapturable:CAbiGpu.*' \
      --step-timeout 200 --pack
    echo "gpu_check rc=$?"
    LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 150 \
      compute-sanitizer --tool racecheck --error-exitcode 1 $bin/qmoe_gpu_tests \
      --gtest_filter='*TrellisDecodersMatchReferenceSmall:*OnEachTileKernel' \
      >"$OUT/racecheck.log" 2>&1
    echo "racecheck rc=$?"
    grep -E "RACECHECK SUMMARY|PASSED|FAILED" "$OUT/racecheck.log" | tail -4 ;;
  fit)
    [[ -x $bin/qmoe ]] || { echo "no $bin: run check on this machine first"; exit 2; }
    mkdir -p "$OUT/fit"
    for t in mma wgmma; do
      bench fit/mixtral-$t --shapes mixtral-8x7b --tokens 64,96,128,192,256,384,512,1024 \
        --formats tcq2,tcq3.5,tcq4,int4:g128 --kernel prefill --tile-kernel $t
      bench fit/qwen3-$t --shapes qwen3-30b-a3b --tokens 256,384,512,768,1024,1536,2048,4096 \
        --formats tcq2,tcq3.5,tcq4,int4:g128 --kernel prefill --tile-kernel $t
    done
    tar czf "$OUT/fit.tgz" -C "$OUT" fit && rm -rf "${OUT:?}/fit" ;;
  fit56)
    # fit's crossing lay between means 48 and 64: means 52, 56 and 60 (tcq2, tcq4). fit56.tgz.
    tar xJf .carry/z/s44t.txz -C .carry && chmod +x $bin/*
    mkdir -p "$OUT/fit56"
    for t in mma wgmma; do
      bench fit56/mixtral-$t --shapes mixtral-8x7b --tokens 208,224,240 --formats tcq2,tcq4 \
        --kernel prefill --tile-kernel $t
      bench fit56/qwen3-$t --shapes qwen3-30b-a3b --tokens 832,896,960 --formats tcq2,tcq4 \
        --kernel prefill --tile-kernel $t
    done
    tar czf "$OUT/fit56.tgz" -C "$OUT" fit56 && rm -rf "${OUT:?}/fit56" ;;
  split)
    [[ -x $bin/qmoe ]] || { echo "no $bin: run check on this machine first"; exit 2; }
    mkdir -p "$OUT/split"
    for k in decode prefill auto:16; do
      bench "split/mixtral-${k/:/}" --shapes mixtral-8x7b --tokens 56,64,72,80 --formats tcq2,tcq4 \
        --kernel "$k"
      bench "split/qwen3-${k/:/}" --shapes qwen3-30b-a3b --tokens 224,256,288,320 \
        --formats tcq2,tcq4 --kernel "$k"
    done
    tar czf "$OUT/split.tgz" -C "$OUT" split && rm -rf "${OUT:?}/split" ;;
  rules)
    # After fit / split: the build with their rules (kTrellisWgmmaMinMean 50; trellis banks
    # on the tile kernels alone above a mean of 13), s44r.txz in t44. Every GPU test on sm_90a,
    # and kAuto on check's rows and at means 12-64 around the new bounds. rules.tgz.
    tar xJf .carry/z/s44r.txz -C .carry && chmod +x $bin/*
    mkdir -p "$OUT/rules"
    timeout 200 $bin/qmoe_gpu_tests >"$OUT/rules/tests_sm90.log" 2>&1
    echo "tests rc=$?"
    grep -E "^\[  (PASSED|FAILED)" "$OUT/rules/tests_sm90.log" | tail -4
    bench rules/check --shapes mixtral-8x7b,qwen3-30b-a3b --tokens 16,64,256,1024,4096 \
      --formats tcq2,tcq3.5,tcq4,int4:g128,mixed:tq
    bench rules/mixtral-means --shapes mixtral-8x7b --tokens 48,56,64,80,192,208,256 \
      --formats tcq2,tcq4
    bench rules/qwen3-means --shapes qwen3-30b-a3b --tokens 192,224,256,320,768,832,1024 \
      --formats tcq2,tcq4
    python3 scripts/plot_results.py "$OUT"/rules/check/*.json >"$OUT/rules/plot.log" 2>&1
    echo "plot rc=$?"
    tar czf "$OUT/rules.tgz" -C "$OUT" rules && rm -rf "${OUT:?}/rules" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
