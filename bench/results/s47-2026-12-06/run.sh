#!/usr/bin/env bash
# Session 47's device calls (H100). Binaries travel packed in the ignored .carry/z (carry limit
# 64 MiB), built in build-s42 (gpu preset: sm_90a SASS + compute_80 PTX, Release):
#   s46f.txz (session 46) = t46c/qmoe: main's kernels (1af7604: the stmatrix epilogue and int8
#     banks on the 256-token tile);
#   s47a.txz = t47/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}: branch s47-int8dec (int8 codes with
#     bf16 activations decoded from the code word by PRMT into 2^15 + q: dequant_code_bytes).
#   device: bash bench/results/s47-2026-12-06/run.sh base   # carry [".carry/z/s46f.txz"]
#           bash bench/results/s47-2026-12-06/run.sh i8d    # carry [".carry/z/s47a.txz"], after base
#           bash bench/results/s47-2026-12-06/run.sh sweep  # carry [".carry/z/s47a.txz"]
#           bash bench/results/s47-2026-12-06/run.sh ptx80  # carry [".carry/z/s47a.txz"]
#           bash bench/results/s47-2026-12-06/run.sh ncu    # carry [".carry/z/s47a.txz"]
#           bash bench/results/s47-2026-12-06/run.sh avail  # carry [".carry/z/s47b.txz"]
# base: unpacks t46c/qmoe and nothing else.
# i8d (same warm machine): every GPU test of the branch, memcheck (tile, small, mixed-bank tests)
# and racecheck (256-token tile); the dequantize and tile tests on the compute_80 PTX (the A100
# path: CUDA_FORCE_PTX_JIT); the SASS of one int8 decode (cuobjdump); then an A/B of the two
# qmoe binaries (4 alternating rounds) at T = 16-16384 on every shape for int8, mixed:rr and
# int4 (control: its code is unchanged). Its compute_80 run stopped at its 150 s limit inside
# the JIT of the first GEMM test (the dequantize tests had passed).
# sweep (after i8d, its binaries still on the machine): the full default sweep of t47/qmoe (the
# branch's e2c2ee2, clang-format of the commit aside the binary's source) and its plot; the
# compute_80 GEMM tests again (the JIT cache of i8d on the machine); ncu of the int8 256-token
# kernel at Mixtral T = 4096 (gate/up), whose rows the change did not move. Its compute_80 run
# stopped at its 200 s limit inside the JIT again.
# ptx80: the compute_80 GEMM tests alone (the A100 path's mma.sync kernel, int8 with bf16 in
# the per-format and mixed-bank tests), with the time the JIT needs on a fresh machine.
# ncu: where the kernels of the rows furthest from their floor stand today, with the warp stall
# breakdown (WarpStateStats details) and instruction counts: the decode kernel at Mixtral int4
# T = 1 (gate/up) and the two-block 64-token tile at Mixtral int4 T = 256 (gate/up). (At a mean of
# 64 tokens per expert the launch took the one-block 96-token tile.)
# avail: s47b.txz = t47b/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1}, branch s47-avail (grouped_gemm
# asks whether the wgmma kernel runs once per call, where a forced kWgmma asked twice): every GPU
# test, memcheck on the tile-kernel tests, and the demo.
set -u
phase=${1:?base|i8d|sweep|ptx80|ncu|avail}
export CUDA_CACHE_MAXSIZE=4294967296
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
    tar xJf .carry/z/s46f.txz -C .carry t46c/qmoe && ls -l .carry/t46c ;;
  i8d)
    tar xJf .carry/z/s47a.txz -C .carry
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    gpu_tests .carry/t47
    CUDA_FORCE_PTX_JIT=1 timeout 150 .carry/t47/qmoe_gpu_tests \
      --gtest_filter='*Dequant*:*PerFormat*:*MixedBank*' >"$OUT/tests_ptx80.log" 2>&1
    echo "ptx80 tests rc=$?"; tail -3 "$OUT/tests_ptx80.log"
    [[ -x .carry/t46c/qmoe ]] || { echo "no base binary: the machine was not kept warm"; exit 1; }
    for b in t46c t47; do
      cuobjdump -sass -arch sm_90a .carry/$b/qmoe >"/tmp/$b.sass" 2>&1
      python3 - "/tmp/$b.sass" "$b" >>"$OUT/sass_int8_256.txt" <<'PY'
import collections, re, sys
# The int8 256-token kernel (bf16: grouped_gemm_wgmma_kernel<bf16, false, 256, 1, true, 1, 2048>).
fun, ops = None, collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"\s*Function : (\S+)", line)
    if m:
        fun = m.group(1)
        continue
    if fun and "grouped_gemm_wgmma_kernel" in fun and "Li256ELi1ELb1ELi1ELi2048E" in fun and "13__nv_bfloat16" in fun:
        m = re.match(r"\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)", line)
        if m:
            ops[m.group(1)] += 1
print(sys.argv[2], "instructions", sum(ops.values()))
print(" ".join(f"{k}:{v}" for k, v in ops.most_common(30)))
PY
    done
    cat "$OUT/sass_int8_256.txt"
    bash scripts/gpu_ab.sh 4 "--shapes all --tokens 16,64,256,1024,4096,16384 --formats int8:g128,mixed:rr,int4:g128 --reps 10" \
      .carry/t46c/qmoe .carry/t47/qmoe >"$OUT/ab.log" 2>&1
    echo "ab rc=$?"; tail -95 "$OUT/ab/t47.txt"
    rm -rf "$OUT/ab" ;;
  sweep)
    [[ -x .carry/t47/qmoe ]] || tar xJf .carry/z/s47a.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t47
    nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
    timeout 280 .carry/t47/qmoe bench --commit s47-int8dec-e2c2ee2 --out "$OUT/sweep" >"$OUT/sweep.log" 2>&1
    echo "sweep rc=$?"; tail -2 "$OUT/sweep.log"
    python3 scripts/plot_results.py "$OUT"/sweep/*.json && echo plotted
    CUDA_FORCE_PTX_JIT=1 timeout 200 .carry/t47/qmoe_gpu_tests \
      --gtest_filter='*PerFormat*:*MixedBank*:*TwoBlockTiles*' >"$OUT/tests_ptx80_gemm.log" 2>&1
    echo "ptx80 gemm tests rc=$?"; tail -3 "$OUT/tests_ptx80_gemm.log"
    timeout 150 ncu --kernel-name regex:grouped_gemm_wgmma_kernel --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
      --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats \
      --section Occupancy .carry/t47/qmoe bench --shapes mixtral-8x7b --tokens 4096 \
      --formats int8:g128 --reps 5 --out "$OUT/ncu-bench" >"$OUT/ncu.txt" 2>&1
    echo "ncu rc=$?"; rm -rf "$OUT/ncu-bench"
    grep -E "grouped_gemm_wgmma_kernel|Duration|SM Frequency|Compute \(SM\) Throughput|DRAM Throughput|Issue Slots Busy|Executed Ipc Active|No Eligible|Registers Per|L2 Cache Throughput|Tensor|pipeline" "$OUT/ncu.txt" | head -30 ;;
  ptx80)
    [[ -x .carry/t47/qmoe_gpu_tests ]] || tar xJf .carry/z/s47a.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t47
    CUDA_FORCE_PTX_JIT=1 timeout 560 .carry/t47/qmoe_gpu_tests \
      --gtest_filter='*PerFormat*:*MixedBank*' >"$OUT/tests_ptx80_gemm.log" 2>&1
    echo "ptx80 gemm tests rc=$?"; grep -E "^\[ +(OK|FAILED|PASSED) |tests? from" "$OUT/tests_ptx80_gemm.log" | tail -8
    grep -cE " OK$" "$OUT/tests_ptx80_gemm.log"; grep -E "int8" "$OUT/tests_ptx80_gemm.log" | grep bf16 | head -8 ;;
  ncu)
    [[ -x .carry/t47/qmoe ]] || tar xJf .carry/z/s47a.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t47
    for spec in "1 grouped_gemv_kernel" "256 grouped_gemm_wgmma_kernel"; do
      set -- $spec
      timeout 200 ncu --kernel-name regex:"$2" --launch-count 1 --print-details all \
        --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
        --section InstructionStats --section LaunchStats --section Occupancy \
        .carry/t47/qmoe bench --shapes mixtral-8x7b --tokens "$1" --formats int4:g128 --reps 5 \
        --out "$OUT/ncu-bench" >"$OUT/ncu_T$1.txt" 2>&1
      echo "ncu T=$1 rc=$?"; rm -rf "$OUT/ncu-bench"
      grep -E "  void |Duration|SM Frequency|DRAM Throughput|Issue Slots Busy|No Eligible|Registers Per|Executed Instructions  |Stall|stall" "$OUT/ncu_T$1.txt" | head -40
    done ;;
  avail)
    tar xJf .carry/z/s47b.txz -C .carry
    export LD_LIBRARY_PATH=$PWD/.carry/t47b
    timeout 200 .carry/t47b/qmoe_gpu_tests >"$OUT/tests.log" 2>&1
    echo "tests rc=$?"; tail -3 "$OUT/tests.log"
    timeout 150 compute-sanitizer --tool memcheck .carry/t47b/qmoe_gpu_tests \
      --gtest_filter='*EachTileKernel*:*RejectsBadArguments*:CAbiGpu*' >"$OUT/memcheck.log" 2>&1
    echo "memcheck rc=$?"; tail -2 "$OUT/memcheck.log"
    timeout 60 .carry/t47b/qmoe demo >"$OUT/demo.log" 2>&1
    echo "demo rc=$?"; tail -4 "$OUT/demo.log" ;;
esac
