#!/usr/bin/env bash
#===- scripts/setup.sh - Install what is missing, configure, build ---------===#
#
# Part of the qc project. MIT licence.
#
# Installs the Debian packages the build needs (only those missing), then
# configures and builds everything into build/ (QC_BUILD_DIR overrides).
# Safe to run repeatedly: a second run only rebuilds what changed.
# QC_WERROR=ON|OFF in the environment sets the CMake option of that name
# (warnings in qc's own code fail the build); unset, the cached value stays.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"

packages=(
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
  cmake ninja-build libgtest-dev libgmock-dev
  # PCRE2 for the tokenizers' split regexes (Unicode property classes).
  libpcre2-dev
  # LAPACK through LAPACKE for GPTQ's inverse-Hessian factor (large K);
  # OpenBLAS provides the fast LAPACK/BLAS behind it.
  liblapacke-dev libopenblas-dev
  # libFuzzer for the safetensors fuzz target.
  clang-22 libclang-rt-22-dev
  # The house style check (scripts/check-format.sh, ctest ClangFormat).
  clang-format-22
)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

llvm_bin="$(llvm-config-22 --bindir)"
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DMLIR_DIR="$(llvm-config-22 --cmakedir)/../mlir" \
  -DLLVM_DIR="$(llvm-config-22 --cmakedir)" \
  -DLLVM_EXTERNAL_LIT="$llvm_bin/lit" \
  -DQC_FUZZ_CXX_COMPILER="$llvm_bin/clang++" \
  ${QC_WERROR:+-DQC_WERROR="$QC_WERROR"} >/dev/null
cmake --build "$build"
