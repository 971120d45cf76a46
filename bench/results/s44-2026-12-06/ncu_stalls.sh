tar xJf .carry/z/s44r.txz -C .carry; chmod +x .carry/t44/*
M='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
run() { # name, kernel regex, bench args
  local n=$1 k=$2; shift 2
  timeout 100 ncu --kernel-name "regex:$k" --launch-skip 4 --launch-count 1 --metrics "$M" \
    --section SpeedOfLight .carry/t44/qmoe bench --reps 1 --out $OUT/b "$@" > $OUT/ncu_$n.txt 2>&1
  echo "$n rc=$?"
}
run tcq2_wgmma grouped_gemm_wgmma --shapes mixtral-8x7b --tokens 1024 --formats tcq2 --kernel prefill
run tcq2_mma grouped_gemm_tc --shapes mixtral-8x7b --tokens 1024 --formats tcq2 --kernel prefill --tile-kernel mma
run int4_wgmma grouped_gemm_wgmma --shapes mixtral-8x7b --tokens 1024 --formats int4:g128 --kernel prefill
for f in $OUT/ncu_*.txt; do echo "== $f"; grep -E "stalled_(long_scoreboard|short_scoreboard|wait|math_pipe_throttle|barrier|mio_throttle|not_selected|selected|dispatch_stall|no_instruction|lg_throttle|branch_resolving|membar|sleeping|tex_throttle|drain|imc_miss|misc)_per|Duration" $f | awk '{print $1, $NF}'; done
