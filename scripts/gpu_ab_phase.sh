#!/usr/bin/env bash
# One side of an A/B whose binaries cannot travel in one device call (the carry holds one build's
# packed binaries, ~54 MB of xz; builds differ in their compressed fatbins, so two do not pack
# together): each call carries one archive of the ignored .carry/z, and a later call on the same
# warm machine finds the binaries an earlier one unpacked. Alternate the sides over calls
# (new, base, new, base) as scripts/gpu_ab.sh alternates them within one.
#   usage: scripts/gpu_ab_phase.sh ARCHIVE DIR NAME ROUND "BENCH ARGS"
#   ARCHIVE: .carry/z/<x>.txz holding DIR/qmoe (tar cf - -C .carry DIR | xz ...)
# Runs .carry/DIR/qmoe bench ARGS --out $OUT/ab/NAME_ROUND, packed into NAME_ROUND.tgz beside
# its log NAME_ROUND.log (the device tool returns ~8 files a call), and prints the log's one-token
# rows of the small shapes. The table, once both sides' calls came back (their $OUT/ab folders
# merged): scripts/ab_table.py ab/base_1.log ab/new_1.log ab/base_2.log ab/new_2.log.
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
if (($# != 5)); then
  sed -n '2,13p' "$0"
  exit 2
fi
archive=$1 dir=$2 name=$3 round=$4 args=$5
use_carry "$archive" "$dir" || exit 1
mkdir -p "$OUT/ab"
t0=$SECONDS
# shellcheck disable=SC2086
".carry/$dir/qmoe" bench $args --out "$OUT/ab/${name}_$round" >"$OUT/ab/${name}_$round.log" 2>&1
rc=$?
echo "== $name round $round: rc=$rc ($((SECONDS - t0)) s)"
tar czf "$OUT/ab/${name}_$round.tgz" -C "$OUT/ab" "${name}_$round" && rm -rf "${OUT:?}/ab/${name}_$round"
grep -hE "^(qwen3|deepseek-v2-lite).* T=1 " "$OUT/ab/${name}_$round.log" | head -6
exit "$rc"
