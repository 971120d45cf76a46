#!/usr/bin/env bash
# Builds the binaries run.sh carries (on the development machine, not the device): this
# branch's gpu preset (sm_90a + compute_80 PTX) into .carry/new, beside .carry/vq (main's device
# code: session 37's build of 5d6ad79, the nuq and vq2 decoders) and .carry/base (session 34's
# device code, before them), all packed into .carry/z/s38.txz. The carry limit is 64 MiB for
# the tree and the archive together: for the call, leave every tracked file under bench/results
# but this folder out of the working tree (`git ls-files bench/results | grep -v s38-2026-12-05 |
# xargs rm -f`; restore with `git checkout -- bench/results`).
set -euo pipefail
cd "$(dirname "$0")/../../.."
cmake --preset gpu >/dev/null
cmake --build --preset gpu --target qmoe_cli qmoe_gpu_tests qmoe_c
mkdir -p .carry/new .carry/z
cp build-gpu/bin/qmoe build-gpu/bin/qmoe_gpu_tests .carry/new/
cp "$(find build-gpu -name 'libqmoe_c.so.1' | head -1)" .carry/new/
strip .carry/new/*
test -x .carry/vq/qmoe && test -x .carry/base/qmoe
# -9: a 64 MiB dictionary finds the device code the binaries share
XZ_OPT="-9 -T2" tar cJf .carry/z/s38.txz -C .carry new vq/qmoe base/qmoe
ls -l .carry/z/s38.txz
