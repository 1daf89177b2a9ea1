#!/usr/bin/env bash
#===- gen-gguf-vectors.sh - Regenerate the GGUF dequantization vectors ----===#
#
# Part of the qc project. MIT licence.
#
# Creates (once) a Python virtual environment under .venv/gguf-vectors with
# the pinned `gguf` and `numpy` packages from PyPI, then runs
# scripts/gen-gguf-vectors.py, which rewrites runtime/test/data/gguf/. The
# tests only read the committed files; Python is needed only to regenerate
# them. Usage: scripts/gen-gguf-vectors.sh [output-dir]
#
#===------------------------------------------------------------------------===#

set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/runtime/test/data/gguf}"
venv="${QC_GGUF_VENV:-$root/.venv/gguf-vectors}"
GGUF_VERSION=0.19.0
NUMPY_VERSION=2.4.6

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "gguf==$GGUF_VERSION" "numpy==$NUMPY_VERSION"
"$venv/bin/python" "$root/scripts/gen-gguf-vectors.py" "$out"
echo "wrote $out ($(du -sh "$out" | cut -f1))"
