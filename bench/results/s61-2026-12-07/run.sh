#!/usr/bin/env bash
# Session 61's device calls (one archive of the ignored .carry/z per call; unpacked once per warm
# machine). Binaries: s60o = t60o/{qmoe, qmoe_gpu_tests, libqmoe_c.so.1} (s60o, s60ot, s60oc):
# main at 4ee62f7, whose kernels and host code main at 6ccebbd still has (later commits touch
# comments and docs only). Phases, in the order given:
#   sweep          the full default sweep (plot, targets table) in $OUT/sweep
#   imma-SIDE:R    the decode rows of the integer-decode question with --integer-decode SIDE
#                  (auto | on | off), round R, logs in $OUT/ab (scripts/ab_table.py pairs them)
#   ab-SIDE:R      the 45 decode rows of session 60's A/Bs (five shapes, T = 1 / 4 / 16, int4 /
#                  int2 g128, mixed:rr), round R, SIDE o = t60o (main) or n = t61n (s61n.txz: load_b's
#                  16 loads at immediate offsets of one address); logs in $OUT/ab
#   tests          t61n's GPU suite, memcheck of the PDL-order, graph, mixed-bank and many-expert
#                  tests, the decode tests on the compute_80 PTX (logs in $OUT/new)
#   pack           $OUT/ab and $OUT/new as one file
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >"$OUT/device.txt"
export CUDA_CACHE_MAXSIZE=4294967296
unpack_carried .carry/z/s60o.txz .carry/z/s61n.txz .carry/z/s61nt.txz .carry/z/s61nc.txz || exit 1
bin=.carry/t60o/qmoe
export LD_LIBRARY_PATH=$PWD/.carry/t60o${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
decode_rows="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
declare -A dir=([o]=t60o [n]=t61n)
imma_rows="--shapes all --tokens 1,2,4,8,16 --formats int4:g128,int4:g64,mixed:hi,int2:g128,int8:g128 --reps 20"
# bench_rounds DIR SIDE ROUND ARGS...: .carry/DIR/qmoe bench ARGS, logged as $OUT/ab/SIDE_ROUND.log
bench_rounds() {
  local bin_dir=.carry/$1 side=$2 round=$3 t0=$SECONDS
  shift 3
  mkdir -p "$OUT/ab"
  [[ -x $bin_dir/qmoe ]] || { echo "no $bin_dir/qmoe"; exit 1; }
  LD_LIBRARY_PATH=$PWD/$bin_dir "$bin_dir/qmoe" bench "$@" --out /tmp/s61ab \
    >"$OUT/ab/${side}_$round.log" 2>&1
  echo "== $side round $round: rc=$? ($((SECONDS - t0)) s)"
}
for phase in "$@"; do
  case $phase in
    sweep)
      t0=$SECONDS
      timeout 260 $bin bench --commit s61-main-6ccebbd --out "$OUT/sweep" >"$OUT/sweep.log" 2>&1
      echo "sweep rc=$? ($((SECONDS - t0)) s)"; tail -2 "$OUT/sweep.log"
      python3 scripts/plot_results.py "$OUT"/sweep/*.json && echo plotted
      python3 scripts/targets_table.py "$OUT"/sweep/*.json | tee "$OUT/targets.txt" ;;
    imma-*)
      side=${phase#imma-}; side=${side%%:*}
      # shellcheck disable=SC2086
      bench_rounds t60o "$side" "${phase#*:}" $imma_rows --integer-decode "$side" ;;
    ab-*)
      side=${phase#ab-}; side=${side%%:*}
      # shellcheck disable=SC2086
      bench_rounds "${dir[$side]}" "$side" "${phase#*:}" $decode_rows ;;
    tests)
      PTX_FILTER='GpuKernels.GroupedGemmDecode*' scripts/gpu_ab_tests.sh .carry/z/s61n.txz t61n \
        '*WaitsForThePrevious*:*Graph*:*Mixed*:*ManyExperts*' ;;
    pack)
      # shellcheck disable=SC2046  # the folders that exist, one word each
      tar czf "$OUT/ab_$(date +%H%M%S).tgz" -C "$OUT" $(cd "$OUT" && ls -d ab new 2>/dev/null) &&
        rm -rf "$OUT/ab" "$OUT/new" ;;
    *) echo "unknown phase $phase"; exit 2 ;;
  esac
done
