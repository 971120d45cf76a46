#!/usr/bin/env bash
# Builds the binaries run.sh carries (on the development machine, not the device): the branch's
# gpu preset (sm_90a + compute_80 PTX) into .carry/vq and main's merge base into .carry/base,
# stripped and packed into .carry/z/s36.txz. The carry limit is 64 MiB for the tree and the
# archive together: leave the ncu CSVs of bench/results/s13-2026-12-02 and s14-2026-12-02 out of
# the working tree for the call (`git ls-files ... | grep ncu | xargs rm -f`; restore with
# `git checkout -- bench/results`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
base=$(git merge-base HEAD main)
cmake --preset gpu >/dev/null
cmake --build --preset gpu --target qmoe_cli qmoe_gpu_tests qmoe_c
mkdir -p .carry/vq .carry/base .carry/z
cp build-gpu/bin/qmoe build-gpu/bin/qmoe_gpu_tests .carry/vq/
cp build-gpu/python_free_bindings/libqmoe_c.so.1 .carry/vq/ 2>/dev/null ||
  cp "$(find build-gpu -name 'libqmoe_c.so.1' | head -1)" .carry/vq/
rm -rf /tmp/s36_base && git worktree add -f /tmp/s36_base "$base" >/dev/null
(cd /tmp/s36_base && cmake --preset gpu >/dev/null && cmake --build --preset gpu --target qmoe_cli)
cp /tmp/s36_base/build-gpu/bin/qmoe .carry/base/
git worktree remove --force /tmp/s36_base
strip .carry/vq/* .carry/base/*
# -9: a 64 MiB dictionary finds the device code the three binaries share (34 MB, not 73 MB)
XZ_OPT="-9 -T2" tar cJf .carry/z/s36.txz -C .carry vq base
ls -l .carry/z/s36.txz
