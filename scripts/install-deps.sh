#!/usr/bin/env bash
# Installs what tapegrad needs on a Debian 12 machine that has only a compiler.
# Idempotent: packages already present are skipped, so CI and users can run it every time.
#   --bench   also the benchmark peers (LibTorch, PyTorch)
set -euo pipefail

packages=(cmake make g++ pkg-config
          libxtensor-dev libxtensor-blas-dev libopenblas-dev libxsimd-dev
          catch2 libcli11-dev zlib1g-dev libbenchmark-dev
          dataset-fashion-mnist gnuplot-nox graphviz python3-numpy doxygen
          nlohmann-json3-dev                   # checkpoint manifests
          libopenmpi-dev openmpi-bin           # data-parallel training (optional at build time)
          clang libclang-rt-14-dev)  # the sanitizer and fuzzing stages of .ci/run
if [[ "${1:-}" == "--bench" ]]; then
    packages+=(libtorch-dev python3-torch)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root, or install sudo" >&2; exit 1; }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
