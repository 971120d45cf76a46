#!/usr/bin/env bash
# Session 46's device calls (H100). Binaries travel packed in the ignored .carry/z (carry limit
# 64 MiB), built in build-s42 (gpu preset: sm_90a SASS + compute_80 PTX, Release):
#   s45n.txz (session 45) = t45c/qmoe: 35481fe, whose int-format kernels are main's (551ff6c and
#     888ac0e differ from it only in the formed-decoder kernels, which no row below runs);
#   s46s.txz = t46/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1, wgmma_ws_probe}: branch s46-stmatrix
#     (the wgmma tile kernels stage y by transposing stmatrix, stage_y_strip); the probe built by
#     nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -I. -Iinclude \
#       bench/probes/wgmma_ws_probe.cu -lcublas
#   device: bash bench/results/s46-2026-12-06/run.sh base   # carry [".carry/z/s45n.txz"]
#           bash bench/results/s46-2026-12-06/run.sh stm    # carry [".carry/z/s46s.txz"]
#           bash bench/results/s46-2026-12-06/run.sh confirm  # carry [".carry/z/s46t.txz"], after base
#           bash bench/results/s46-2026-12-06/run.sh base2  # carry [".carry/z/s46t.txz"]
#           bash bench/results/s46-2026-12-06/run.sh c128   # carry [".carry/z/s46c.txz"], after base2
#           bash bench/results/s46-2026-12-06/run.sh probe2 # carry [".carry/z/s46p.txz"]
#           bash bench/results/s46-2026-12-06/run.sh c128b  # carry [".carry/z/s46d.txz"], after base2
#           bash bench/results/s46-2026-12-06/run.sh sweep  # carry [".carry/z/s46t.txz"]
#           bash bench/results/s46-2026-12-06/run.sh c128t  # carry [".carry/z/s46e.txz"], after base2
#           bash bench/results/s46-2026-12-06/run.sh i8     # carry [".carry/z/s46f.txz"], after base2
#           bash bench/results/s46-2026-12-06/run.sh i8t    # carry [".carry/z/s46g.txz"]
#           bash bench/results/s46-2026-12-06/run.sh i8r    # carry [".carry/z/s46g.txz"]
# base: unpacks t45c/qmoe and nothing else; stm, on the same warm machine right after it (two
# builds' qmoe binaries do not share their compressed fatbins, so both in one call would pass
# the carry limit; ignored files stay on a warm machine between calls): every GPU test of the
# branch, memcheck on the tile and mixed-bank tests, racecheck on the 256-token tile's, the
# probe at 4096 k-tiles (modes 14 and 15: the kernel's epilogue before and after, staggered
# items), then an A/B of the two qmoe binaries (4 alternating rounds) at T = 64-16384 on every
# shape for int4, int2, int8, bf16 and mixed:rr (the rows of every wgmma tile kernel).
# confirm (after base): s46t.txz = s46s.txz with the probe's y check fixed (its accumulators
# pinned after the drain: wg::fence_accumulators) and counting the elements that differ; the
# probe, ncu of the branch's first two wgmma launches at Mixtral T = 4096 int4 (the 256-token
# tile: gate/up, then down), and the A/B again (4 rounds) at T = 1024-16384.
# base2 + c128: branch s46-carry128s (the 128-token tile of the kernels without the formed
# decoders runs one strip per warp, 128-row items, and carries three wgmmas over its k-tiles
# like the 256-token tile), s46c.txz = t46c/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}, against
# t46/qmoe (the stmatrix branch, from s46t.txz): every GPU test, memcheck and racecheck, then an
# A/B (4 rounds) at T = 512-4096 (the 128-token tile's means) for every format.
# c128b (after base2): c128 again with s46d.txz = t46c/... of the branch's second build (the
# carry only in the one-strip 128-token kernel for banks of 2/3/4-bit slots: with the int8 and
# dense decoders in it, the first build's wgmmas were serialized, ptxas C7513).
# c128t (after base2): c128 with s46e.txz, branch s46-carry128t: the carry in the two-strip
# 128-token tile (the one that runs today), again only for banks of 2/3/4-bit slots, whose
# kernel holds no int8 / dense decoder (session 45 tried it with them: 1.17x).
# i8 (after base2): branch s46-int8-256, s46f.txz = t46c/...: banks with int8 experts (no dense or
# formed ones) take the 256-token tile in a kernel of their own (two ring stages, drained k-tiles);
# every GPU test, memcheck and racecheck, then an A/B (4 rounds) at T = 1024-16384 for int8,
# mixed:rr and int4 (control).
# i8t: the same branch's GPU tests with the int8 case of the 256-token test fixed (i8's had
# K = 4160, which int8:g128 rejects): the tile, mixed-bank and TMA tests, memcheck on the first.
# i8r: racecheck on the 256-token tile's test of that build.
# sweep: the full default sweep of t46/qmoe (the stmatrix build, 8b05e25, before the int8 change)
# and its plot: the latest results.
# probe2: s46p.txz = p46/wgmma_ws_probe, the probe whose epilogue check runs modes 14 and 15
# twice each on 96 k-tiles and counts the accumulators and y elements that differ.
set -u
phase=${1:?base|stm|confirm|base2|c128|c128b|c128t|i8|i8t|i8r|probe2|sweep}
# gpu_tests DIR: every GPU test of the build unpacked in DIR, then memcheck and racecheck.
gpu_tests() {
  export LD_LIBRARY_PATH=$PWD/$1
  timeout 200 "$1/qmoe_gpu_tests" >"$OUT/tests.log" 2>&1
  echo "tests rc=$?"; tail -3 "$OUT/tests.log"
  timeout 150 compute-sanitizer --tool memcheck "$1/qmoe_gpu_tests" \
    --gtest_filter='*Tma*:*Small*:*MixedBank*' >"$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -2 "$OUT/memcheck.log"
  timeout 120 compute-sanitizer --tool racecheck "$1/qmoe_gpu_tests" \
    --gtest_filter='*256TokenTile*' >"$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?"; tail -2 "$OUT/racecheck.log"
}
case $phase in
  base)
    tar xJf .carry/z/s45n.txz -C .carry t45c/qmoe && ls -l .carry/t45c ;;
  stm)
    tar xJf .carry/z/s46s.txz -C .carry
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    gpu_tests .carry/t46
    .carry/t46/wgmma_ws_probe 4096 5 >"$OUT/probe.txt" 2>&1
    echo "probe rc=$?"; cat "$OUT/probe.txt"
    [[ -x .carry/t45c/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 64,256,1024,4096,16384 --formats int4:g128,int2:g128,int8:g128,bf16,mixed:rr --reps 10" \
      .carry/t45c/qmoe .carry/t46/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -140 "$OUT/ab/t46.txt"
    rm -rf "$OUT/ab" ;;
  confirm)
    tar xJf .carry/z/s46t.txz -C .carry
    .carry/t46/wgmma_ws_probe 4096 5 >"$OUT/probe.txt" 2>&1
    echo "probe rc=$?"; cat "$OUT/probe.txt"
    timeout 240 ncu --kernel-name regex:grouped_gemm_wgmma_kernel --launch-count 2 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats --section MemoryWorkloadAnalysis --section InstructionStats \
      --section LaunchStats --section Occupancy --section SourceCounters \
      .carry/t46/qmoe bench --shapes mixtral-8x7b --tokens 4096 --formats int4:g128 --reps 5 \
      --out "$OUT/ncu-bench" >"$OUT/ncu.txt" 2>&1
    echo "ncu rc=$?"; rm -rf "$OUT/ncu-bench"
    grep -E "grouped_gemm_wgmma_kernel|Duration|SM Frequency|Compute \(SM\) Throughput|Memory Throughput|Issue Slots Busy|Executed Ipc Active|No Eligible|Registers Per|Stall|L2 Cache Throughput|DRAM Throughput" "$OUT/ncu.txt" | head -60
    [[ -x .carry/t45c/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 1024,4096,16384 --formats int4:g128,int2:g128,int8:g128,bf16,mixed:rr --reps 10" \
      .carry/t45c/qmoe .carry/t46/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -80 "$OUT/ab/t46.txt"
    rm -rf "$OUT/ab" ;;
  base2)
    tar xJf .carry/z/s46t.txz -C .carry t46/qmoe && ls -l .carry/t46 ;;
  c128|c128b|c128t)
    [[ $phase == c128 ]] && tar xJf .carry/z/s46c.txz -C .carry
    [[ $phase == c128b ]] && tar xJf .carry/z/s46d.txz -C .carry
    [[ $phase == c128t ]] && tar xJf .carry/z/s46e.txz -C .carry
    gpu_tests .carry/t46c
    [[ -x .carry/t46/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 512,1024,2048,4096 --formats int4:g128,int3:g128,int2:g128,int8:g128,bf16,mixed:rr --reps 10" \
      .carry/t46/qmoe .carry/t46c/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -125 "$OUT/ab/t46c.txt"
    rm -rf "$OUT/ab" ;;
  probe2)
    tar xJf .carry/z/s46p.txz -C .carry
    .carry/p46/wgmma_ws_probe 4096 5 >"$OUT/probe.txt" 2>&1
    echo "probe rc=$?"; cat "$OUT/probe.txt" ;;
  sweep)
    tar xJf .carry/z/s46t.txz -C .carry t46/qmoe
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    timeout 280 .carry/t46/qmoe bench --commit s46-stmatrix-8b05e25 --out "$OUT/sweep" >"$OUT/sweep.log" 2>&1
    echo "sweep rc=$?"; tail -2 "$OUT/sweep.log"
    python3 scripts/plot_results.py "$OUT"/sweep/*.json && echo plotted ;;
  i8)
    tar xJf .carry/z/s46f.txz -C .carry
    gpu_tests .carry/t46c
    [[ -x .carry/t46/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 1024,4096,16384 --formats int8:g128,mixed:rr,int4:g128 --reps 10" \
      .carry/t46/qmoe .carry/t46c/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -50 "$OUT/ab/t46c.txt"
    rm -rf "$OUT/ab" ;;
  i8t)
    tar xJf .carry/z/s46g.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t46g
    timeout 150 .carry/t46g/qmoe_gpu_tests --gtest_filter='*256TokenTile*:*MixedBank*:*Tma*' >"$OUT/tests.log" 2>&1
    echo "tests rc=$?"; grep -E "int8|FAILED|PASSED" "$OUT/tests.log" | tail -12
    timeout 100 compute-sanitizer --tool memcheck .carry/t46g/qmoe_gpu_tests \
      --gtest_filter='*256TokenTile*' >"$OUT/memcheck.log" 2>&1
    echo "memcheck rc=$?"; tail -2 "$OUT/memcheck.log" ;;
  i8r)
    tar xJf .carry/z/s46g.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t46g
    timeout 120 compute-sanitizer --tool racecheck .carry/t46g/qmoe_gpu_tests \
      --gtest_filter='*256TokenTile*' >"$OUT/racecheck.log" 2>&1
    echo "racecheck rc=$?"; tail -2 "$OUT/racecheck.log" ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
esac
