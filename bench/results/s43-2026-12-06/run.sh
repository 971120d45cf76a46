#!/usr/bin/env bash
# Session 43's device calls: branch s43-mixed-tile = s42-tcq-tile (tcq on the mma.sync tile
# kernel: weights formed as RNE_fp16(v s) against the rotated x; kAuto's trellis split; none of
# it run on a GPU yet, nor session 41's review fixes on main) + tile_launches (on sm_90a a bank's
# trellis experts take the mma.sync tile kernel, its other experts a wgmma launch beside it) +
# the bench's mixed:tq (tcq2 and int4:g128 round-robin). Session 42's phases, for this build:
#   s43t.txz: t43/qmoe_gpu_tests, t43/libqmoe_c.so.1, t43/qmoe (gpu preset: sm_90a SASS +
#             compute_80 PTX), built from the branch in build-s42 (worktree /work/s42).
#   here:   bash bench/results/s43-2026-12-06/run.sh pack
#   device: bash bench/results/s43-2026-12-06/run.sh check    # carry [".carry/z/s43t.txz"]
#           bash bench/results/s43-2026-12-06/run.sh kernels  # same machine, right after check
#           bash bench/results/s43-2026-12-06/run.sh lean     # check's tests alone (little time)
# The trellis GEMM tests' banks mix tcq with int4, vq2 and bf16 experts: at kPrefill on sm_90a
# they now run a wgmma and a mma.sync launch each.
#   device: bash bench/results/s43-2026-12-06/run.sh means    # after lean, same machine
# means: each kernel forced at the means session 42's bench skipped (8-14 tokens per active
# expert: Mixtral T = 32-56, Qwen3 T = 128-224), where decode and tile cross for tcq (its
# kernels phase: the decode kernel 2x faster at a mean of 4, the tile kernel 1.07-1.10x at 16);
# and mixed:tq beside tcq2 and int4:g128 at prefill sizes (kAuto). Packed as means.tgz.
# forced DIR MIXTRAL_T QWEN3_T KERNEL...: tcq2 and tcq4 with each kernel forced, Mixtral at the
# token counts MIXTRAL_T and Qwen3 at QWEN3_T, into $OUT/DIR.
forced() {
  local dir=$1 mixtral=$2 qwen3=$3 k
  shift 3
  mkdir -p "$OUT/$dir"
  for k in "$@"; do
    timeout 100 .carry/t43/qmoe bench --shapes mixtral-8x7b --tokens "$mixtral" \
      --formats tcq2,tcq4 --reps 10 --kernel "$k" --out "$OUT/$dir/mixtral-${k/:/}" \
      >"$OUT/$dir/mixtral-${k/:/}.log" 2>&1
    echo "mixtral --kernel $k rc=$?"
    timeout 100 .carry/t43/qmoe bench --shapes qwen3-30b-a3b --tokens "$qwen3" \
      --formats tcq2,tcq4 --reps 10 --kernel "$k" --out "$OUT/$dir/qwen3-${k/:/}" \
      >"$OUT/$dir/qwen3-${k/:/}.log" 2>&1
    echo "qwen3 --kernel $k rc=$?"
  done
}
if [[ ${1:-} == means ]]; then
  [[ -x .carry/t43/qmoe ]] || { echo "no .carry/t43: run lean on this machine first"; exit 2; }
  forced means 32,40,48,56 128,160,192,224 decode prefill
  timeout 100 .carry/t43/qmoe bench --shapes mixtral-8x7b,qwen3-30b-a3b --tokens 1024,4096 \
    --formats mixed:tq,tcq2,int4:g128 --reps 10 --out "$OUT/means/mixed" >"$OUT/means/mixed.log" 2>&1
  echo "mixed rc=$?"
  tar czf "$OUT/means.tgz" -C "$OUT" means && rm -rf "${OUT:?}/means"
  exit 0
fi
# split: decode, prefill and the per-expert split at 16 (auto:16) at means 14-20 (Mixtral
# T = 56-80, Qwen3 T = 224-320), where kAuto's trellis rule runs the split (not run in session 43:
# the device start for it failed). split.tgz.
if [[ ${1:-} == split ]]; then
  tar xJf .carry/z/s43t.txz -C .carry && chmod +x .carry/t43/*
  forced split 56,64,72,80 224,256,288,320 decode prefill auto:16
  tar czf "$OUT/split.tgz" -C "$OUT" split && rm -rf "${OUT:?}/split"
  exit 0
fi
RUN_TAG=43 RUN_BRANCH=s43-mixed-tile RUN_FORMATS=tcq2,tcq3.5,tcq4,int4:g128,mixed:tq \
  exec bash "$(dirname "$0")/../s42-2026-12-05/run.sh" "$@"
