#!/usr/bin/env bash
# Session 30 call 4: SASS of the wgmma tile kernels (b98105c), for instruction counts per k-tile.
set -u
cd $OUT
cuobjdump -sass $OLDPWD/.carry/new/qmoe > all.sass 2>err.txt; echo "rc=$? $(wc -l < all.sass) lines"
grep -n "Function :" all.sass | grep -i wgmma_kernel | head -40
awk '/Function :/{keep = ($0 ~ /wgmma_kernel/)} keep' all.sass > wgmma.sass
wc -l wgmma.sass; rm all.sass; xz -T8 wgmma.sass; ls -la
