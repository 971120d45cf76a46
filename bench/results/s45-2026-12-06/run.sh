#!/usr/bin/env bash
# Session 45's device calls (H100). Binaries travel packed in the ignored .carry/z (carry limit
# 64 MiB): s45s.txz = t45/qmoe (main 3c694d7, gpu preset: sm_90a SASS + compute_80 PTX, built in
# build-s42; the GPU tests of this code ran in session 44) and t45/wgmma_ws_probe
# (bench/probes/wgmma_ws_probe.cu: nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I.
# bench/probes/wgmma_ws_probe.cu -lcublas; now also the CMake option QMOE_BUILD_PROBES). The
# probe grew during the session: probe-*.txt ran modes 0-3, clocks/ modes 0-5 with the clock
# column, ring-first/ modes 0-7 (6 = stream, 7 = ring), ring/ the committed source (0-10).
#   device: bash bench/results/s45-2026-12-06/run.sh sweep   # carry [".carry/z/s45s.txz"]
#           bash bench/results/s45-2026-12-06/run.sh clocks  # carry [".carry/z/s45p.txz"]
# sweep: the probe at two lengths, then the full default `qmoe bench` sweep twice (separate
# processes), each into its own folder.
# clocks: the probe (rebuilt with its clock column, s45p.txz) at 256, 4096 and 32768 k-tiles
# (0.1 ms, 2.5 ms and 20 ms launches: before and under the power cap).
# base: unpacks s45s.txz (t45/qmoe = main 3c694d7) and nothing else; carry, on the same warm
# machine right after it (two builds' binaries do not share their compressed fatbins, so both
# qmoe binaries in one call would pass the 64 MiB carry limit; ignored files stay on a warm
# machine between calls):
# carry: branch s45-carry-wgmma (the 256-token tile keeps three wgmmas in flight over its
# k-tiles' ends: carries_wgmmas), s45n.txz = t45c/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1},
# built in build-s42, against t45/qmoe where the base call left it: every
# GPU test on sm_90a, memcheck on the 256-token tile's tests, an A/B of the two binaries (4
# alternating rounds) at T = 1024-16384 on every shape for the formats the 256-token tile runs,
# then the full default sweep of the branch and the plots of both sweeps.
# carry2 (after base, on an H100: the carry call ran on an H200): the A/B again, 6 rounds, at
# T = 1024-16384 for int2/3/4 (the 256-token tile's rows and controls), then the branch's full
# sweep and its plot (bench/results/nvidia-h100-80gb-hbm3-2026-12-06.*, the latest results).
# base128 + carry128 (the same warm-machine pair): branch s45-carry128 (the 128-token tile's
# 2/3/4-bit items carry wgmmas too), s45d.txz = t45d/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1,
# wgmma_ws_probe}, against t45c/qmoe (35481fe, from s45n.txz): every GPU test, memcheck on the
# TMA-tile and mixed-bank tests, an A/B (4 rounds) at T = 512-4096 on the five shapes (the
# 128-token tile's means), and the refactored probe (4eb06f4) at 4096 k-tiles. It ran: 67/67
# GPU tests, memcheck clean, but the 128-token tile's rows took 1.09-1.24x the time: not kept;
# its probe run reproduces ring/ with the refactored source (carry128/).
# final (one call): main with the carry limited to the kernels without the formed decoders
# (branch s45-formed, 888ac0e; s45f.txz = t45f/{qmoe_gpu_tests, libqmoe_c.so.1}): every GPU
# test and memcheck on the TMA-tile, mixed-bank and formed-decoder tests (final/).
# items: the probe with modes 11 and 12 added (items of 32 k128 tiles with the kernel's
# epilogue and prologue between them; s45p.txz rebuilt) at 4096 and 32768 k-tiles (items/).
# prefetch: the probe with mode 13 added (the next item's first stages before the epilogue),
# the same lengths (prefetch/).
# ring: the probe with modes 6-10 (the 256-token tile's ring: stream, ring, overlap, mbar,
# mbar-overlap) at 4096 and 32768 k-tiles (its first run had modes 6 and 7 only: ring-first/).
# ptxas/ (no device): the sm_90a entries of `-Xptxas -v` for cuda/grouped_gemm_wgmma_bf16.cu,
# compiled here with build-s42's command, at main 3c694d7, the first carry (35481fe) and the final
# build (888ac0e): registers, stack and spills per kernel instantiation.
set -u
phase=${1:?sweep}
bin=.carry/t45
# gpu_tests DIR FILTER: every GPU test of the build unpacked in DIR, then memcheck on FILTER.
gpu_tests() {
  export LD_LIBRARY_PATH=$PWD/$1
  timeout 200 "$1/qmoe_gpu_tests" >"$OUT/tests.log" 2>&1
  echo "tests rc=$?"; tail -3 "$OUT/tests.log"
  timeout 150 compute-sanitizer --tool memcheck "$1/qmoe_gpu_tests" --gtest_filter="$2" \
    >"$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -2 "$OUT/memcheck.log"
}
# probe_runs NAME KT...: the probe of s45p.txz at each k-tile count into $OUT/NAME-KT.txt.
probe_runs() {
  local name=$1
  shift
  tar xJf .carry/z/s45p.txz -C .carry
  for kt in "$@"; do
    $bin/wgmma_ws_probe "$kt" 5 >"$OUT/$name-$kt.txt" 2>&1
    echo "probe $kt rc=$?"
    cat "$OUT/$name-$kt.txt"
  done
}
case $phase in
  sweep)
    tar xJf .carry/z/s45s.txz -C .carry
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    for kt in 4096 1024; do
      $bin/wgmma_ws_probe $kt 7 >"$OUT/probe-$kt.txt" 2>&1
      echo "probe $kt rc=$?"
    done
    cat "$OUT"/probe-4096.txt
    for run in 1 2; do
      timeout 240 $bin/qmoe bench --out "$OUT/sweep$run" >"$OUT/sweep$run.log" 2>&1
      echo "sweep $run rc=$?"
      tail -2 "$OUT/sweep$run.log"
    done ;;
  clocks) probe_runs clocks 256 4096 32768 ;;
  ring) probe_runs ring 4096 32768 ;;
  base)
    tar xJf .carry/z/s45s.txz -C .carry t45/qmoe && ls -l .carry/t45 ;;
  carry)
    tar xJf .carry/z/s45n.txz -C .carry
    gpu_tests .carry/t45c '*Tma*:*Small*'
    [[ -x .carry/t45/qmoe ]] || echo "no base binary: the machine was not kept warm"
    [[ -x .carry/t45/qmoe ]] && bash scripts/gpu_ab.sh 4 "--shapes all --tokens 1024,4096,16384 --formats int4:g128,int3:g128,int2:g128,mixed:rr --reps 10" \
      .carry/t45/qmoe .carry/t45c/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; cat "$OUT/ab/t45c.txt" | tail -70
    timeout 200 .carry/t45c/qmoe bench --commit s45-carry-wgmma --out "$OUT/sweep3" >"$OUT/sweep3.log" 2>&1
    echo "sweep3 rc=$?"; tail -1 "$OUT/sweep3.log"
    mkdir -p "$OUT/sweep1"
    cp bench/results/s45-2026-12-06/sweep1/*.json "$OUT/sweep1/"
    for s in sweep1 sweep3; do python3 scripts/plot_results.py "$OUT"/$s/*.json && echo "$s plotted"; done
    tar czf "$OUT/sweeps.tgz" -C "$OUT" sweep1 sweep3 && rm -rf "$OUT/sweep1" "$OUT/sweep3" "$OUT/ab" ;;
  carry2)
    tar xJf .carry/z/s45n.txz -C .carry
    [[ -x .carry/t45/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 6 "--shapes all --tokens 1024,4096,16384 --formats int4:g128,int3:g128,int2:g128 --reps 10" \
      .carry/t45/qmoe .carry/t45c/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; cat "$OUT/ab/t45c.txt" | tail -50
    timeout 200 .carry/t45c/qmoe bench --commit s45-carry-wgmma --out "$OUT/sweep4" >"$OUT/sweep4.log" 2>&1
    echo "sweep4 rc=$?"; tail -1 "$OUT/sweep4.log"
    python3 scripts/plot_results.py "$OUT"/sweep4/*.json && echo plotted
    rm -rf "$OUT/ab" ;;
  base128)
    tar xJf .carry/z/s45n.txz -C .carry t45c/qmoe && ls -l .carry/t45c ;;
  carry128)
    tar xJf .carry/z/s45d.txz -C .carry
    gpu_tests .carry/t45d '*Tma*:*MixedBank*'
    [[ -x .carry/t45c/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 512,1024,2048,4096 --formats int4:g128,int3:g128,int2:g128,mixed:rr --reps 10" \
      .carry/t45c/qmoe .carry/t45d/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -90 "$OUT/ab/t45d.txt"
    .carry/t45d/wgmma_ws_probe 4096 5 >"$OUT/probe.txt" 2>&1
    echo "probe rc=$?"; cat "$OUT/probe.txt"
    rm -rf "$OUT/ab" ;;
  final)
    tar xJf .carry/z/s45f.txz -C .carry
    gpu_tests .carry/t45f '*Tma*:*MixedBank*:*Formed*' ;;
  items) probe_runs items 4096 32768 ;;
  prefetch) probe_runs prefetch 4096 32768 ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
