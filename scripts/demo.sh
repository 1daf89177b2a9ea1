#!/usr/bin/env bash
#===- scripts/demo.sh - The main job on the bundled model ------------------===#
#
# Part of the qc project. MIT licence.
#
# Builds the project (scripts/setup.sh), then, for each bundled model:
#  - stories260K (llama2.c): imports it into MLIR, JIT-compiles it for this
#    CPU, scores perplexity on the first 16,384 tokens of the held-out
#    TinyStories text and generates a story (greedy, then sampled with a
#    fixed seed);
#  - SmolLM2-135M-Instruct (GGUF, its own byte-level BPE tokenizer): scores
#    perplexity on the first 4,096 tokens of the same text under the text
#    protocol (windows of 1,024 tokens, no BOS; the goldens' protocol) and
#    continues a prompt greedily. It compiles a 30-layer model: expect about
#    a minute.
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

smol="$shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
"$build/bin/quant-run" "$smol" \
  --ppl "$shared/data/tinystories/valid_head.txt" --ctx 1024 --max-tokens 4096 \
  --generate 48 --prompt "Once upon a time, there was a little robot who"
