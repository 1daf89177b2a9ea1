#!/usr/bin/env bash
#===- scripts/gen-tokenizer-vectors.sh - Regenerate tokenizer test vectors -===#
#
# Part of the qc project. MIT licence.
#
# Creates (once) a private virtual environment with Hugging Face `tokenizers`
# from PyPI and runs scripts/gen-tokenizer-vectors.py, which rewrites the
# expected ids in runtime/test/data/tokenizers/*.expected.json from the
# committed tokenizer.json files there. Run it only after changing those
# tokenizers or their test strings; the C++ tests read the committed JSON
# and never need Python. QC_TOKVEC_VENV overrides the venv location.
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
exec "$venv/bin/python" "$root/scripts/gen-tokenizer-vectors.py" \
  "$root/runtime/test/data/tokenizers" "$@"
