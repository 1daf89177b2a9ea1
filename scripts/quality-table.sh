#!/usr/bin/env bash
#===- scripts/quality-table.sh - The README's quantization quality table ---===#
#
# Part of the qc project. MIT licence.
#
# Quantizes the bundled stories260K model with every implemented method and
# configuration, then scores each on the WHOLE held-out TinyStories text
# (392,082 tokens) on the CPU path: perplexity, KL divergence to the float
# model, and quantization time. Writes bench/results/quality-stories260K.json
# and prints the markdown table the README quotes. Takes about 20 minutes
# on 2 cores (AutoRound's 200 steps per block dominate).
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
# QC_BIN: use already-built tools from this folder (e.g. a copy, so that the
# build folder can be rebuilt while the table runs) instead of building.
if [ -n "${QC_BIN:-}" ]; then
  bin="$QC_BIN"
else
  "$root/scripts/setup.sh" >/dev/null
  bin="$build/bin"
fi
# Relative paths keep machine paths out of the results file.
cd "$root"
shared="../shared"
model="$shared/models/stories260K/stories260K.bin"
tok="$shared/models/stories260K/tok512.bin"
text="$shared/data/tinystories/valid_head.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="bench/results/quality-stories260K.json"

"$bin/quant-import" "$model" -o "$work/float.mlir"

json_rows=()
table_rows=()

# field FILE KEY: the first numeric value of "KEY": in FILE.
field() { grep -m1 "\"$2\": [-0-9]" "$1" | sed 's/.*: //; s/,$//'; }

# evaluate NAME CONFIG MODEL QUANT_SECONDS
evaluate() {
  local name="$1" config="$2" m="$3" qsec="$4" kl_args=()
  if [ "$name" != "float" ]; then kl_args=(--kl-reference "$model"); fi
  "$bin/quant-run" "$m" --tokenizer "$tok" --ppl "$text" --no-progress \
    "${kl_args[@]}" --json "$work/r.json" >/dev/null
  local ppl kl
  ppl=$(field "$work/r.json" perplexity)
  kl=$(field "$work/r.json" kl_divergence || true)
  [ -n "$kl" ] || kl=0
  local qjson="$qsec"
  [ "$qsec" != "-" ] || qjson=null
  json_rows+=("{\"method\": \"$name\", \"config\": \"$config\", \"perplexity\": $ppl, \"kl_divergence\": $kl, \"quantization_seconds\": $qjson}")
  table_rows+=("$(printf '| %s | %s | %.4f | %.5f | %s |' "$name" "$config" "$ppl" "$kl" "$qsec")")
  echo "quality: $name $config: perplexity $ppl, KL $kl, quantized in $qsec s" >&2
}

evaluate float "fp32" "$work/float.mlir" "-"

# quantize NAME CONFIG PASS PASS-OPTIONS
quantize() {
  local name="$1" config="$2" pass="$3" start end tag
  tag="$(echo "$name-$config" | tr ' ' '_')"
  start=$(date +%s.%N)
  "$bin/quant-opt" "$work/float.mlir" \
    "--$pass=$4 weights-out=$work/$tag.safetensors" \
    -o "$work/$tag.mlir"
  end=$(date +%s.%N)
  evaluate "$name" "$config" "$work/$tag.mlir" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
}

# One calibration trace (train_head.txt only; the evaluation text is never
# seen) serves every calibrated method.
calib_start=$(date +%s.%N)
"$bin/quant-calibrate" "$work/float.mlir" --tokenizer "$tok" \
  --text "$shared/data/tinystories/train_head.txt" --no-progress \
  -o "$work/trace.safetensors" >&2
calib_end=$(date +%s.%N)
calib_seconds=$(awk -v a="$calib_start" -v b="$calib_end" 'BEGIN { printf "%.2f", b - a }')

configs=("W4 g32:bits=4 group-size=32" "W4 per-channel:bits=4 group-size=-1"
         "W3 g32:bits=3 group-size=32" "W2 g32:bits=2 group-size=32")
for cfg in "${configs[@]}"; do
  quantize RTN "${cfg%%:*}" wq-rtn "sym=false layout=rows ${cfg#*:}"
done
for cfg in "${configs[@]}"; do
  quantize GPTQ "${cfg%%:*}" wq-gptq "sym=false layout=rows ${cfg#*:} trace=$work/trace.safetensors"
done
for cfg in "${configs[@]}"; do
  quantize HQQ "${cfg%%:*}" wq-hqq "${cfg#*:}"
done
# NF4 is a 4-bit format: one row, bitsandbytes' defaults (block 64, double
# quantization of the absmax statistics).
quantize NF4 "W4 block 64 + DQ" wq-nf4 "block-size=64 double-quant=true"
for cfg in "${configs[@]}"; do
  quantize "GPTQ act-order" "${cfg%%:*}" wq-gptq \
    "sym=false layout=rows act-order=true ${cfg#*:} trace=$work/trace.safetensors"
done
# GPTQ without the block-sequential pipeline: every layer from the float
# model's whole-text Hessian (what the trace holds), for comparison.
for cfg in "${configs[@]}"; do
  quantize "GPTQ whole-text H" "${cfg%%:*}" wq-gptq \
    "sym=false layout=rows sequential=false ${cfg#*:} trace=$work/trace.safetensors"
done
# AWQ and AutoRound with their reference defaults (AWQ: 20-point scale grid,
# clip search; AutoRound: 200 signSGD steps, batches of 8 sequences).
for cfg in "${configs[@]}"; do
  quantize AWQ "${cfg%%:*}" wq-awq "sym=false layout=rows ${cfg#*:} trace=$work/trace.safetensors"
done
for cfg in "${configs[@]}"; do
  quantize AutoRound "${cfg%%:*}" wq-autoround "sym=false layout=rows ${cfg#*:} trace=$work/trace.safetensors"
done

{
  echo "{"
  echo "  \"benchmark\": \"quality\","
  echo "  \"model\": \"stories260K\","
  echo "  \"text\": \"valid_head.txt (whole, 392082 tokens)\","
  echo "  \"calibration\": \"train_head.txt (whole), trace recorded in $calib_seconds s\","
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"commit\": \"$(git rev-parse --short HEAD)\","
  echo "  \"rows\": ["
  for i in "${!json_rows[@]}"; do
    sep=","; [ "$i" -eq $((${#json_rows[@]} - 1)) ] && sep=""
    echo "    ${json_rows[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > "$out.tmp"
mv "$out.tmp" "$out"

echo "| method | config | perplexity | KL to fp32 (nats/token) | quantization time (s) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${table_rows[@]}"
echo
echo "Calibration (GPTQ, AWQ, AutoRound): one trace of train_head.txt (Hessians of all 100,904 tokens and 128 sampled windows of 512 tokens), recorded in $calib_seconds s; quantization times exclude it. GPTQ is block-sequential on the sampled windows (its default)."
