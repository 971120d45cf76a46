#!/usr/bin/env bash
# Nsight Compute profiles of the kernels on chosen benchmark cases, as text in $OUT:
# per case the details page (speed of light, occupancy, warp stalls, instruction mix) and the
# SASS of the hottest kernel with its stall samples (CSV). Clocks are left alone.
#   usage: scripts/gpu_profile.sh NAME KERNEL_REGEX LAUNCHES "BENCH ARGS" [NAME ...]
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
while (($# >= 4)); do
  name=$1 regex=$2 count=$3 args=$4; shift 4
  t0=$SECONDS
  # shellcheck disable=SC2086
  ncu --clock-control none --set full --import-source no -k "regex:$regex" --launch-count "$count" \
    -o "$OUT/$name" -f "$BIN/qmoe" bench $args --reps 5 --out "$OUT/bench_$name" >"$OUT/$name.run.log" 2>&1
  echo "== $name: rc=$? ($((SECONDS - t0)) s)"
  ncu -i "$OUT/$name.ncu-rep" --page details >"$OUT/$name.details.txt" 2>&1
  ncu -i "$OUT/$name.ncu-rep" --page source --print-source sass --csv >"$OUT/$name.sass.csv" 2>&1
  grep -E "^  [a-z_]+.*\(|Duration|Compute \(SM\) Throughput|DRAM Throughput|Issue Slots Busy|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|Executed Ipc A" "$OUT/$name.details.txt" | head -40
  rm -f "$OUT/$name.ncu-rep"
done
