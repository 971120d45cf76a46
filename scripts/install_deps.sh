#!/usr/bin/env bash
# Installs the Debian packages qmoe needs to build and test. Idempotent, non-interactive:
# does nothing (and needs no network) when everything is already there.
# CUDA is optional: the toolkit (nvcc) is used when found, it is not installed here.
set -euo pipefail
packages=(cmake ninja-build g++ make libgtest-dev libdlpack-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
