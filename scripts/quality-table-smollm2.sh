#!/usr/bin/env bash
#===- scripts/quality-table-smollm2.sh - SmolLM2-135M quality table --------===#
#
# Part of the qc project. MIT licence.
#
# The README's SmolLM2 section: the bundled SmolLM2-135M-Instruct GGUF's
# weights dequantized to fp32 are the float reference; qc's methods (RTN,
# GPTQ, GPTQ act-order, AWQ, HQQ, AutoRound) at W4 g128, W3 g128 (asym) and
# W4 per-channel, calibrated on train_head.txt; beside them llama.cpp's own
# quantizers (Q4_0, Q4_K_M, Q3_K_M, Q2_K through llama-cpp-python, no
# importance matrix) applied to the same float weights. Every row is scored
# by qc's CPU path on the same tokens: valid_head.txt tokenized as one
# string, tokens [0, QC_EVAL_TOKENS) (default 65,536) in windows of 1,024,
# no BOS; perplexity, KL to the float model, bits per weight over the
# decoder's linear weights (scales, zeros and g_idx included).
# Writes bench/results/quality-smollm2.json and prints the markdown table.
# A benchmark, not a test: several hours on 2 cores (AutoRound and AWQ on 30
# blocks dominate); QC_ROWS="RTN GPTQ" limits the methods, QC_LLAMACPP=0
# skips the llama.cpp rows (which need a venv from PyPI, made here).
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
if [ -n "${QC_BIN:-}" ]; then
  bin="$QC_BIN"
else
  "$root/scripts/setup.sh" >/dev/null
  bin="$build/bin"
fi
cd "$root"
shared="../shared"
model="$shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
text="$shared/data/tinystories/valid_head.txt"
calib="$shared/data/tinystories/train_head.txt"
eval_tokens="${QC_EVAL_TOKENS:-65536}"
rows="${QC_ROWS:-RTN GPTQ GPTQ-act-order AWQ HQQ AutoRound}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="bench/results/quality-smollm2.json"

"$bin/quant-import" "$model" -o "$work/float.mlir"

json_rows=()
table_rows=()
field() { grep -m1 "\"$2\": [-0-9]" "$1" | sed 's/.*: //; s/,$//'; }

# bpw BITS GROUP SYM ACTORDER: bits per weight over SmolLM2's decoder
# linears (30 layers of q,k,v,o [576|192 x 576], gate/up [1536 x 576],
# down [576 x 1536]) with fp16 scales, BITS-bit packed zeros (asym) and an
# int32 g_idx per input column (act-order).
bpw() {
  python3 - "$@" <<'PY'
import math, sys
b, g, sym, act = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "true", sys.argv[4] == "true"
shapes = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
bits = weights = 0
for n, k in shapes:
    groups = 1 if g <= 0 else math.ceil(k / g)
    bits += n * k * b + n * groups * (16 + (0 if sym else b)) + (32 * k if act else 0)
    weights += n * k
print(f"{bits / weights:.3f}")
PY
}

# evaluate NAME CONFIG MODEL BPW QUANT_SECONDS
evaluate() {
  local name="$1" config="$2" m="$3" bpw="$4" qsec="$5" kl_args=()
  if [ "$name" != "float" ]; then kl_args=(--kl-reference "$model"); fi
  "$bin/quant-run" "$m" --tokenizer "$model" --ppl "$text" --ctx 1024 \
    --bos none --max-tokens "$eval_tokens" --no-progress \
    "${kl_args[@]}" --json "$work/r.json" >/dev/null
  local ppl kl qjson="$qsec"
  ppl=$(field "$work/r.json" perplexity)
  kl=$(field "$work/r.json" kl_divergence || true)
  [ -n "$kl" ] || kl=0
  [ "$qsec" != "-" ] || qjson=null
  json_rows+=("{\"method\": \"$name\", \"config\": \"$config\", \"bits_per_weight\": $bpw, \"perplexity\": $ppl, \"kl_divergence\": $kl, \"quantization_seconds\": $qjson}")
  table_rows+=("$(printf '| %s | %s | %s | %.4f | %.5f | %s |' "$name" "$config" "$bpw" "$ppl" "$kl" "$qsec")")
  echo "quality: $name $config: perplexity $ppl, KL $kl, $bpw bpw, quantized in $qsec s" >&2
}

evaluate float "fp32 (GGUF dequantized)" "$work/float.mlir" 32 "-"

quantize() {
  local name="$1" config="$2" pass="$3" opts="$4" bpwv="$5" start end tag
  tag="$(echo "$name-$config" | tr ' ' '_')"
  start=$(date +%s.%N)
  "$bin/quant-opt" "$work/float.mlir" \
    "--$pass=$opts weights-out=$work/$tag.safetensors" -o "$work/$tag.mlir"
  end=$(date +%s.%N)
  evaluate "$name" "$config" "$work/$tag.mlir" "$bpwv" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
  rm -f "$work/$tag.safetensors"
}

calib_start=$(date +%s.%N)
"$bin/quant-calibrate" "$work/float.mlir" --text "$calib" --no-progress \
  -o "$work/trace.safetensors" >&2
calib_end=$(date +%s.%N)
calib_seconds=$(awk -v a="$calib_start" -v b="$calib_end" 'BEGIN { printf "%.2f", b - a }')
trace="trace=$work/trace.safetensors"

# name:bits:group
configs=("W4 g128:4:128" "W3 g128:3:128" "W4 per-channel:4:-1")
for row in $rows; do
  for cfg in "${configs[@]}"; do
    IFS=: read -r label b g <<<"$cfg"
    base="sym=false layout=rows bits=$b group-size=$g"
    case "$row" in
    RTN) quantize RTN "$label" wq-rtn "$base" "$(bpw "$b" "$g" false false)" ;;
    GPTQ) quantize GPTQ "$label" wq-gptq "$base $trace" "$(bpw "$b" "$g" false false)" ;;
    GPTQ-act-order)
      quantize "GPTQ act-order" "$label" wq-gptq "$base act-order=true $trace" \
        "$(bpw "$b" "$g" false true)" ;;
    AWQ) quantize AWQ "$label" wq-awq "$base $trace" "$(bpw "$b" "$g" false false)" ;;
    HQQ) quantize HQQ "$label" wq-hqq "bits=$b group-size=$g" "$(bpw "$b" "$g" false false)" ;;
    AutoRound)
      quantize AutoRound "$label" wq-autoround "$base $trace" "$(bpw "$b" "$g" false false)" ;;
    *) echo "unknown row $row" >&2; exit 1 ;;
    esac
  done
done

# llama.cpp's quantizers on the same float weights, scored by qc.
if [ "${QC_LLAMACPP:-1}" != 0 ]; then
  venv="${QC_BENCH_VENV:-$root/.venv-bench}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "gguf==0.19.0" numpy "llama-cpp-python==0.3.36"
  fi
  "$venv/bin/python" bench/quality/llamacpp_quants.py "$model" "$work/llamacpp" \
    Q4_0 Q4_K_M Q3_K_M Q2_K > "$work/llamacpp.jsonl"
  while read -r line; do
    type=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')
    path=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
    b=$(echo "$line" | python3 -c 'import json,sys; print(f"{json.load(sys.stdin)[\"bpw\"]:.3f}")')
    evaluate "llama.cpp $type" "ggml $type" "$path" "$b" "-"
  done < "$work/llamacpp.jsonl"
fi

{
  echo "{"
  echo "  \"benchmark\": \"quality\","
  echo "  \"model\": \"SmolLM2-135M-Instruct (bundled GGUF dequantized to fp32)\","
  echo "  \"text\": \"valid_head.txt as one string, tokens [0, $eval_tokens), windows of 1024, no BOS\","
  echo "  \"calibration\": \"train_head.txt, trace recorded in $calib_seconds s\","
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

echo "| method | config | bits/weight | perplexity | KL to fp32 (nats/token) | quantization time (s) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${table_rows[@]}"
