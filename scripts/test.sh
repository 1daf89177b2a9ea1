#!/usr/bin/env bash
#===- scripts/test.sh - Build and run the whole test suite -----------------===#
#
# Part of the qc project. MIT licence.
#
# Builds the project (scripts/setup.sh), then runs every test through ctest:
# the lit suite (MLIR IR, passes and tools), the compiler's GoogleTests, the
# runtime's GoogleTests and the short libFuzzer run.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
# CI keeps the build warning-free: warnings in qc's own code are errors
# (QC_WERROR=OFF in the environment turns that off).
QC_WERROR="${QC_WERROR:-ON}" "$root/scripts/setup.sh"
cd "$build"
ctest --output-on-failure -j2 "$@"
