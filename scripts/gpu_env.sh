# Sourced by the GPU scripts: the repository root as working directory, $OUT (default
# ./gpu_out) created, $BIN = $QMOE_BIN or build-gpu/bin, and $BIN on LD_LIBRARY_PATH (carried
# prebuilt binaries bring libqmoe_c.so.1 beside them; the GPU suite tests the C ABI).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
BIN=${QMOE_BIN:-build-gpu/bin}
lib_dir=$BIN; [[ $lib_dir = /* ]] || lib_dir=$PWD/$BIN
export LD_LIBRARY_PATH="$lib_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
