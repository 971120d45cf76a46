#!/usr/bin/env bash
# A/B of `qmoe bench` binaries inside one device call: the run-to-run spread between
# processes (docs/results.md) is larger than most kernel changes, so binaries are compared
# only when they ran in the same call, alternating, ROUNDS times each (use an even ROUNDS).
#   usage: scripts/gpu_ab.sh ROUNDS "BENCH ARGS" BASE_BIN NEW_BIN [NEW_BIN ...]
# Each binary's runs go to $OUT/ab/<name>_<round> (name = the binary's parent folder);
# $OUT/ab/<name>.txt is scripts/ab_table.py of the base against that binary; everything
# is also packed into $OUT/ab.tgz (the device tool returns few files).
set -uo pipefail
# shellcheck source=scripts/gpu_env.sh
source "$(dirname "$0")/gpu_env.sh"
if (($# < 4)); then
  sed -n '2,8p' "$0"
  exit 2
fi
rounds=$1 args=$2
shift 2
bins=("$@")
names=()
for b in "${bins[@]}"; do names+=("$(basename "$(dirname "$b")")"); done
mkdir -p "$OUT/ab"
# Odd rounds run the binaries in the order given, even rounds in reverse: the board's power cap
# lowers the clock as a call goes on, which would otherwise favour the binary that runs first.
for ((round = 1; round <= rounds; ++round)); do
  order=("${!bins[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#bins[@]} - 1; i >= 0; --i)); do order+=("$i"); done
  fi
  for i in "${order[@]}"; do
    t0=$SECONDS
    # shellcheck disable=SC2086
    "${bins[$i]}" bench $args --out "$OUT/ab/${names[$i]}_$round" >"$OUT/ab/${names[$i]}_$round.log" 2>&1
    echo "== ${names[$i]} round $round: rc=$? ($((SECONDS - t0)) s)"
  done
done
for ((i = 1; i < ${#bins[@]}; ++i)); do
  pairs=()
  for ((round = 1; round <= rounds; ++round)); do
    pairs+=("$OUT/ab/${names[0]}_$round" "$OUT/ab/${names[$i]}_$round")
  done
  python3 "$(dirname "$0")/ab_table.py" "${pairs[@]}" >"$OUT/ab/${names[$i]}.txt" 2>&1
  echo "== ${names[$i]} against ${names[0]}:"
  tail -n 1 "$OUT/ab/${names[$i]}.txt"
done
tar czf "$OUT/ab.tgz" -C "$OUT" ab
