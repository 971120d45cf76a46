#!/usr/bin/env bash
# Build qmoe (CUDA kernels for sm_80 + sm_90a when nvcc is present) and run `qmoe demo`:
# on the GPU if one is visible, else on the CPU reference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset default
cmake --build --preset default
./build/bin/qmoe demo "$@"
