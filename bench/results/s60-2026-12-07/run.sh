#!/usr/bin/env bash
# Session 60's later A/Bs of the decode rings' placement (one archive of the ignored .carry/z per
# call; each call unpacks what it carries once per warm machine). Sides:
#   a128 = s59q (t59/qmoe): main at 206cb8c, ring_start rounds the shared address to 128 at run time;
#   a64 = s60q (t60/qmoe): the same rounding to 64 (the model shapes' rings where main before
#     206cb8c put them, 64 mod 128; E = 2 at 0, E = 6 at 64 mod 128); archive deleted after its run;
#   o = s60o (t60o/qmoe; s60ot, s60oc its qmoe_gpu_tests and libqmoe_c.so.1): the dynamic shared
#     memory declared __align__(128) and the rings at smem + ring_offset(E), no run-time rounding;
#   v2 = s58v (t58v/qmoe): main before 206cb8c.
# Phases SIDE[-odd]:ROUND: the 45 decode rows, or with -odd the E = 2 / 6 banks
# (scripts/gpu_ab_phase.sh, logs in $OUT/ab); tests: s60ot's GPU suite, memcheck and the PTX
# decode tests; pack: $OUT/ab as one file.
set -u
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi -L
export CUDA_CACHE_MAXSIZE=4294967296
unpack_carried .carry/z/s5[89]?.txz .carry/z/s60*.txz || exit 1
declare -A archive=([a64]=s60q [a128]=s59q [o]=s60o [v2]=s58v)
declare -A dir=([a64]=t60 [a128]=t59 [o]=t60o [v2]=t58v)
declare -A rows=(
  [decode]="--shapes all --tokens 1,4,16 --formats int4:g128,int2:g128,mixed:rr --reps 20"
  [odd]="--shapes 4096:14336:2:2,4096:14336:6:2,2048:1408:6:2 --tokens 1,4,16
    --formats int4:g128,int2:g128,mixed:rr --reps 20")
for phase in "$@"; do
  name=${phase%%:*} side=${phase%%[-:]*} set=decode
  [[ $name == *-odd ]] && set=odd
  case $name in
    tests)
      PTX_FILTER='GpuKernels.GroupedGemmDecode*' scripts/gpu_ab_tests.sh .carry/z/s60ot.txz t60o \
        '*WaitsForThePrevious*:*Graph*:*Mixed*:*ManyExperts*' ;;
    pack) tar czf "$OUT/ab_$(date +%H%M%S).tgz" -C "$OUT" ab && rm -rf "$OUT/ab" ;;
    *) scripts/gpu_ab_phase.sh ".carry/z/${archive[$side]}.txz" "${dir[$side]}" "$name" \
      "${phase#*:}" "${rows[$set]}" ;;
  esac
done
