#!/usr/bin/env bash
# Session 33 (no device lent): builds, on a machine without a GPU, the compute_80-PTX binaries
# (the A100 code path) for the device call that measures branch s33-tc-lean, and packs them as
# .carry/z/bin.txz. Binaries (qmoe; c2 also qmoe_gpu_tests):
#   base  = main's HEAD                     c1 = 12cd2f7 (one strip: every chunk pair)
#   c2    = s33-tc-lean (a4e6780: c1 + ring offsets, running code pointers, lean scale loads;
#           then comments only)
#   c2one = c2 with the two-strip form off (a diagnostic build, never to land: one strip per
#           warp for every bank, to ask whether two strips still win once one strip is lean)
# ~2 min per qmoe on 2 cores, ~6 min for qmoe_gpu_tests. Device command afterwards:
#   tar xJf .carry/z/bin.txz -C .carry && chmod +x .carry/*/* &&
#   bash bench/results/s33-2026-12-04/run.sh tc-tests|tc-ab        (carry: [".carry"])
set -euo pipefail
root=$(git rev-parse --show-toplevel)
stage=${STAGE:-/tmp/s33pk}
rm -rf "$stage" && mkdir -p "$stage"
build() {  # build NAME COMMIT TARGETS [diagnostic sed expression for grouped_gemm_tc.cuh]
  local name=$1 commit=$2 targets=$3 edit=${4:-}
  local wt=/tmp/s33wt-$name
  git -C "$root" worktree remove --force "$wt" 2>/dev/null || true
  git -C "$root" worktree add --detach "$wt" "$commit" >/dev/null
  if [[ -n $edit ]]; then
    sed -i "$edit" "$wt/cuda/kernels/grouped_gemm_tc.cuh"
    git -C "$wt" diff --stat
  fi
  cmake -S "$wt" -B "$wt/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_ARCHITECTURES=80-virtual >/dev/null
  # shellcheck disable=SC2086
  ninja -C "$wt/build" $targets >/dev/null
  mkdir -p "$stage/$name"
  for t in $targets; do
    [[ $t == qmoe_cli ]] && t=qmoe
    cp -L "$wt/build/bin/$t" "$stage/$name/"
  done
  # The GPU tests link the C ABI's library (run.sh puts this folder on LD_LIBRARY_PATH).
  if [[ -e $wt/build/python_free_bindings/libqmoe_c.so.1 ]]; then
    cp -L "$wt/build/python_free_bindings/libqmoe_c.so.1" "$stage/$name/"
  fi
}
build base main qmoe_cli
build c1 12cd2f7 qmoe_cli
build c2 s33-tc-lean "qmoe_cli qmoe_gpu_tests"
build c2one s33-tc-lean qmoe_cli \
  's/if (p.a_slot_bytes <= tc::kTwoStripMaxSlotBytes) {/if (false) {/'
git -C /tmp/s33wt-c2one diff --quiet && { echo "c2one: the sed edit matched nothing"; exit 1; }
mkdir -p "$root/.carry/z"  # bin.txz only: check.txz and gemv.txz stay
tar cf - -C "$stage" . | xz -T2 --lzma2=preset=6,dict=192MiB >"$root/.carry/z/bin.txz"
ls -la "$root/.carry/z"
