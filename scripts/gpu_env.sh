# Sourced by the GPU scripts: the repository root as working directory, $OUT (default
# ./gpu_out) created, $BIN = $QMOE_BIN or build-gpu/bin, and $BIN on LD_LIBRARY_PATH (carried
# prebuilt binaries bring libqmoe_c.so.1 beside them; the GPU suite tests the C ABI).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
BIN=${QMOE_BIN:-build-gpu/bin}
lib_dir=$BIN; [[ $lib_dir = /* ]] || lib_dir=$PWD/$BIN
export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# use_carry ARCHIVE DIR: prebuilt binaries carried as ARCHIVE (.carry/z/<x>.txz holding DIR/qmoe
# and what was packed beside it: tar cf - -C .carry DIR | xz ...), unpacked into .carry/DIR once
# per warm machine (a later call on it finds them), DIR then first on LD_LIBRARY_PATH (its
# libqmoe_c.so.1).
use_carry() {
  [ -x ".carry/$2/qmoe" ] || tar xJf "$1" -C .carry || return 1
  export LD_LIBRARY_PATH=$PWD/.carry/$2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}
# unpack_carried ARCHIVE...: unpacks each carried archive (.carry/z/<x>.txz) once per warm machine
# (a marker file in .carry), so that a session's later calls find the binaries earlier calls
# brought; archives not carried in this call are skipped.
unpack_carried() {
  local archive mark
  for archive in "$@"; do
    [[ -e $archive ]] || continue
    mark=".carry/.unpacked_$(basename "$archive")"
    [[ -e $mark ]] || { tar xJf "$archive" -C .carry && touch "$mark"; } || return 1
  done
}
