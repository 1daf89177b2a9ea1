#!/usr/bin/env bash
#===- scripts/demo.sh - The main job on the bundled model ------------------===#
#
# Part of the qc project. MIT licence.
#
# Builds the project (scripts/setup.sh), then imports the bundled
# stories260K model into MLIR, JIT-compiles it for this CPU, scores
# perplexity on the first 16,384 tokens of the held-out TinyStories text
# and generates a story (greedy, then sampled with a fixed seed).
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
"$root/scripts/setup.sh"
cd "$root"
shared="../shared"

"$build/bin/quant-run" "$shared/models/stories260K/stories260K.bin" \
  --tokenizer "$shared/models/stories260K/tok512.bin" \
  --ppl "$shared/data/tinystories/valid_head.txt" --max-tokens 16384 \
  --generate 200
"$build/bin/quant-run" "$shared/models/stories260K/stories260K.bin" \
  --tokenizer "$shared/models/stories260K/tok512.bin" \
  --generate 200 --prompt "Once upon a time" --temperature 0.8 --top-p 0.9 \
  --seed 7
