#!/usr/bin/env bash
# Builds the binaries run.sh carries (on the development machine, not the device): this
# branch's gpu preset (sm_90a + compute_80 PTX) into .carry/new, beside .carry/vq (main's device
# code: session 37's build of 5d6ad79, the nuq and vq2 decoders) and .carry/base (session 34's
# device code, before them), packed into .carry/z/s38a.txz (new, vq/qmoe: 57 MB) and s38b.txz
# (new/qmoe, base/qmoe: 49 MB); all three qmoe builds in one archive took 70 MB. The carry limit is 64 MiB for
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
# -9 -T1: one block with a 64 MiB dictionary finds the code the branch's binaries share
XZ_OPT="-9 -T1" tar cJf .carry/z/s38a.txz -C .carry new vq/qmoe
XZ_OPT="-9 -T1" tar cJf .carry/z/s38b.txz -C .carry new/qmoe base/qmoe
ls -l .carry/z/s38a.txz .carry/z/s38b.txz
