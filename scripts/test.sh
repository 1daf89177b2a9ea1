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
"$root/scripts/setup.sh"
cd "$build"
ctest --output-on-failure -j2 "$@"
