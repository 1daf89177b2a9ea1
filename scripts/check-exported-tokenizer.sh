#!/usr/bin/env bash
#===- scripts/check-exported-tokenizer.sh - HF tokenizers on an export ----===#
#
# Part of the qc project. MIT licence.
#
# Confirms that a tokenizer.json written by `quant-import MODEL.gguf
# --export-hf DIR` loads in Hugging Face `tokenizers` and splits text into
# the ids qc computes: the SmolLM2 goldens (../shared/models/smollm2-135m/
# goldens.json, for an export of the bundled GGUF) and every string of
# runtime/test/data/tokenizers/expected.json, compared with
# `quant-tokenize DIR --json`. Creates (once) a private virtual environment
# with `tokenizers` from PyPI (QC_TOKVEC_VENV overrides its location; the
# one of scripts/gen-tokenizer-vectors.sh is shared). A manual check, not
# part of the test suite, which needs no Python.
#
#   scripts/check-exported-tokenizer.sh DIR [--goldens FILE]
#
# QC_BUILD_DIR (default build/) locates quant-tokenize.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${QC_TOKVEC_VENV:-$root/.venv/tokvec}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "tokenizers==0.22.1"
fi
build="${QC_BUILD_DIR:-$root/build}"
exec "$venv/bin/python" "$root/scripts/check-exported-tokenizer.py" \
  --quant-tokenize "$build/bin/quant-tokenize" \
  --strings "$root/runtime/test/data/tokenizers/expected.json" "$@"
