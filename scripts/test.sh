#!/usr/bin/env bash
# Build qmoe and run every test (GPU suites skip without a device). CUDA code, when nvcc is
# present, is compiled for one architecture (sm_80: also runs on Hopper via its PTX) to
# keep the build lean; warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset test -DQMOE_CUDA="${QMOE_CUDA:-AUTO}"
cmake --build --preset test
ctest --preset test
