#!/usr/bin/env bash
#===- tiny-llama2c.sh - Write a tiny llama2.c checkpoint for pass tests ----===#
#
# Part of the qc project. MIT licence.
#
# Usage: tiny-llama2c.sh OUT [DIM HIDDEN LAYERS HEADS KV_HEADS VOCAB SEQ SEED]
#
# Writes a llama2.c v0 checkpoint (7 x int32 header, then fp32 arrays in the
# order run.c maps them) with deterministic pseudo-random weights, so that
# the lit tests of the quantization passes can run on small hand-written IR
# whose llm.param ops name tensors of this file (model.layers.0.mlp.
# gate_proj.weight, ...) instead of on the shared model. Defaults: DIM 64,
# HIDDEN 80 (not a multiple of 32, which the 3-bit gptq layout cannot hold),
# 2 LAYERS, 4 HEADS, 4 KV_HEADS, VOCAB 512 (the size of the stories260K
# tokenizer, so that quant-calibrate can record traces of it), SEQ 64.
#
# Weights are m / 128 for m in [-127, 127] from a Park-Miller generator
# seeded with SEED (default 1); these are exact in fp32, so the bit patterns
# are computed in awk without rounding questions. Norm weights are 1. Only
# bash, awk and printf are used: tests must not need Python.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
out="$1"
dim="${2:-64}" hidden="${3:-80}" layers="${4:-2}" heads="${5:-4}"
kv="${6:-4}" vocab="${7:-512}" seq="${8:-64}" seed="${9:-1}"
head=$((dim / heads))
kvdim=$((head * kv))

# Segments in file order: "COUNT KIND" with KIND r (random), o (ones) or
# z (zeros).
segments="$((vocab * dim)) r
$((layers * dim)) o
$((layers * dim * dim)) r
$((layers * kvdim * dim)) r
$((layers * kvdim * dim)) r
$((layers * dim * dim)) r
$((layers * dim)) o
$((layers * hidden * dim)) r
$((layers * dim * hidden)) r
$((layers * hidden * dim)) r
$dim o
$((seq * head)) z"

# awk prints the whole file as printf escapes (\xNN), without newlines.
escapes=$(printf '%s\n' "$segments" | awk -v seed="$seed" \
  -v header="$dim $hidden $layers $heads $kv $vocab $seq" '
function le(bits,   s, i) {
  s = ""
  for (i = 0; i < 4; i++) {
    s = s sprintf("\\x%02x", bits % 256)
    bits = int(bits / 256)
  }
  return s
}
# fp32 bit pattern of m / 128 for an integer m in [-127, 127].
function f32(m,   sign, a, e, p) {
  if (m == 0) return 0
  sign = m < 0 ? 2147483648 : 0
  a = m < 0 ? -m : m
  e = 0; p = 1
  while (p * 2 <= a) { p *= 2; e++ }
  return sign + (127 + e - 7) * 8388608 + (a - p) * 2 ^ (23 - e)
}
BEGIN {
  x = seed % 2147483647
  if (x <= 0) x += 2147483646
  n = split(header, h, " ")
  line = ""
  for (i = 1; i <= n; i++) line = line le(h[i] + 0)
  printf "%s", line
}
{
  count = $1; kind = $2
  for (i = 0; i < count; i++) {
    if (kind == "o") { printf "%s", le(1065353216); continue }
    if (kind == "z") { printf "%s", le(0); continue }
    x = (x * 48271) % 2147483647
    printf "%s", le(f32(x % 255 - 127))
  }
}')
printf '%b' "$escapes" > "$out"
