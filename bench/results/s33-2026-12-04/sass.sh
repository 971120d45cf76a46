#!/usr/bin/env bash
# How sass/ was made (no GPU): cubins of the mma.sync tile kernel at main's fa126b1 and at the
# two commits of branch s33-tc-lean, as sm_80 SASS (what an A100 runs) and as the sm_90 SASS that
# ptxas makes of the compute_80 PTX (what an H100 / H200 JIT-compiles), plus the sm_90a wgmma
# kernel; then scripts/sass_mix.py on each, and sass_table.py for the README's tables.
# NVDISASM: nvdisasm (e.g. from `pip download nvidia-cuda-nvdisasm`: nvidia/cu13/bin/nvdisasm).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
here=$root/bench/results/s33-2026-12-04
work=${WORK:-/tmp/s33sass}
mkdir -p "$work"
flags=(-DQMOE_WITH_CUDA=1 -I. -Iinclude -O3 -DNDEBUG -lineinfo --expt-relaxed-constexpr
  -std=c++17 -cubin)
cold=(--cold tile_common.cuh:53-63 --cold sm_32_intrinsics.hpp:1-9999)
for c in fa126b1:tc80 12cd2f7:tc80_c1 a4e6780:tc80_c2; do
  commit=${c%%:*} name=${c#*:}
  src=$work/src-$commit
  [[ -d $src ]] || git -C "$root" worktree add --detach "$src" "$commit" >/dev/null
  (cd "$src" && nvcc "${flags[@]}" -gencode arch=compute_80,code=sm_80 \
    -o "$work/$name.cubin" -x cu cuda/grouped_gemm_tc_bf16.cu)
  (cd "$src" && nvcc "${flags[@]}" -gencode arch=compute_80,code=sm_90 \
    -o "$work/${name/tc80/tc80_jit90}.cubin" -x cu cuda/grouped_gemm_tc_bf16.cu)
  for n in $name ${name/tc80/tc80_jit90}; do
    python3 "$root/scripts/sass_mix.py" "$work/$n.cubin" "${cold[@]}" --lines 40 --deps \
      >"$here/sass/$n.txt"
  done
done
(cd "$work/src-fa126b1" && nvcc "${flags[@]}" -gencode arch=compute_90a,code=sm_90a \
  -o "$work/wg90.cubin" -x cu cuda/grouped_gemm_wgmma_bf16.cu)
python3 "$root/scripts/sass_mix.py" "$work/wg90.cubin" --kernel Li256ELi1ELb1 "${cold[@]}" \
  --lines 30 >"$here/sass/wgmma256_sm90a.txt"
python3 "$here/sass_table.py" "$here/sass"
