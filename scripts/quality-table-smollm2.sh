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
# blocks dominate), so it resumes: the calibration trace and every finished
# row are kept in a work folder (QC_QUALITY_WORK, default
# build/quality-smollm2; QC_FRESH=1 starts over) and a rerun only computes
# the rows that are missing, then writes the JSON and the table from all of
# them (each row records the commit it was measured at). QC_ROWS="RTN GPTQ"
# limits the methods, QC_LLAMACPP=0 skips the llama.cpp rows (which need
# build/bench-venv from PyPI, made here), QC_REPORT_ONLY=1 computes nothing
# and writes the JSON and the table from the rows kept so far.
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
report_only="${QC_REPORT_ONLY:-0}"
if [ "$report_only" = 1 ]; then
  rows=""
  QC_LLAMACPP=0
fi
work="${QC_QUALITY_WORK:-$build/quality-smollm2}"
if [ "${QC_FRESH:-0}" = 1 ]; then rm -rf "$work"; fi
mkdir -p "$work"
rows_file="$work/rows.jsonl"
touch "$rows_file"
out="bench/results/quality-smollm2.json"
commit="$(git rev-parse --short HEAD)"

"$bin/quant-import" "$model" -o "$work/float.mlir"

field() { grep -m1 "\"$2\": [-0-9]" "$1" | sed 's/.*: //; s/,$//'; }
# done NAME CONFIG: whether rows.jsonl already has that row at this length.
done_row() {
  grep -qF "\"key\": \"$1|$2|$eval_tokens\"" "$rows_file"
}

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
  if done_row "$name" "$config"; then
    echo "quality: $name $config: kept from an earlier run" >&2
    return
  fi
  if [ "$name" != "float" ]; then kl_args=(--kl-reference "$model"); fi
  "$bin/quant-run" "$m" --tokenizer "$model" --ppl "$text" --ctx 1024 \
    --bos none --max-tokens "$eval_tokens" --no-progress \
    "${kl_args[@]}" --json "$work/r.json" >/dev/null
  local ppl kl qjson="$qsec"
  ppl=$(field "$work/r.json" perplexity)
  kl=$(field "$work/r.json" kl_divergence || true)
  [ -n "$kl" ] || kl=0
  [ "$qsec" != "-" ] || qjson=null
  echo "{\"key\": \"$name|$config|$eval_tokens\", \"method\": \"$name\", \"config\": \"$config\", \"bits_per_weight\": $bpw, \"perplexity\": $ppl, \"kl_divergence\": $kl, \"quantization_seconds\": $qjson, \"commit\": \"$commit\"}" >>"$rows_file"
  echo "quality: $name $config: perplexity $ppl, KL $kl, $bpw bpw, quantized in $qsec s" >&2
}

if [ "$report_only" != 1 ]; then
  evaluate float "fp32 (GGUF dequantized)" "$work/float.mlir" 32 "-"
fi

quantize() {
  local name="$1" config="$2" pass="$3" opts="$4" bpwv="$5" start end tag
  if done_row "$name" "$config"; then
    echo "quality: $name $config: kept from an earlier run" >&2
    return
  fi
  tag="$(echo "$name-$config" | tr ' ' '_')"
  start=$(date +%s.%N)
  "$bin/quant-opt" "$work/float.mlir" \
    "--$pass=$opts weights-out=$work/$tag.safetensors" -o "$work/$tag.mlir"
  end=$(date +%s.%N)
  evaluate "$name" "$config" "$work/$tag.mlir" "$bpwv" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
  rm -f "$work/$tag.safetensors"
}

# The trace is the longest shared step (minutes on 2 cores): kept
# in the work folder, written under a temporary name so that an interrupted
# run never leaves half a trace behind.
if [ "$report_only" != 1 ] &&
  { [ ! -f "$work/trace.safetensors" ] || [ ! -f "$work/calibration_seconds" ]; }; then
  calib_start=$(date +%s.%N)
  "$bin/quant-calibrate" "$work/float.mlir" --text "$calib" --no-progress \
    -o "$work/trace.tmp.safetensors" >&2
  calib_end=$(date +%s.%N)
  mv "$work/trace.tmp.safetensors" "$work/trace.safetensors"
  awk -v a="$calib_start" -v b="$calib_end" 'BEGIN { printf "%.2f\n", b - a }' \
    >"$work/calibration_seconds"
fi
calib_seconds=$(cat "$work/calibration_seconds" 2>/dev/null || echo unknown)
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
llamacpp_types="Q4_0 Q4_K_M Q3_K_M Q2_K"
llamacpp_missing=0
for type in $llamacpp_types; do
  done_row "llama.cpp $type" "ggml $type" || llamacpp_missing=1
done
if [ "${QC_LLAMACPP:-1}" != 0 ] && [ "$llamacpp_missing" = 1 ]; then
  venv="${QC_BENCH_VENV:-$build/bench-venv}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "gguf==0.19.0" numpy "llama-cpp-python==0.3.36"
  fi
  "$venv/bin/python" bench/quality/llamacpp_quants.py "$model" "$work/llamacpp" \
    $llamacpp_types > "$work/llamacpp.jsonl"
  while read -r line; do
    type=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["type"])')
    path=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
    b=$(echo "$line" | python3 -c 'import json,sys; print(f"{json.load(sys.stdin)[\"bpw\"]:.3f}")')
    evaluate "llama.cpp $type" "ggml $type" "$path" "$b" "-"
  done < "$work/llamacpp.jsonl"
fi

# The JSON and the table from every row kept so far, in rows.jsonl's order.
python3 - "$rows_file" "$out.tmp" "$eval_tokens" "$calib_seconds" "$commit" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" <<'PY'
import json, sys
rows_file, out, tokens, calib, commit, date = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_file) if l.strip()]
rows = [r for r in rows if r["key"].endswith("|" + tokens)]
doc = {
    "benchmark": "quality",
    "model": "SmolLM2-135M-Instruct (bundled GGUF dequantized to fp32)",
    "text": f"valid_head.txt as one string, tokens [0, {tokens}), windows of 1024, no BOS",
    "calibration": f"train_head.txt, trace recorded in {calib} s",
    "date": date,
    "commit": commit,
    "rows": [{k: v for k, v in r.items() if k != "key"} for r in rows],
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("| method | config | bits/weight | perplexity | KL to fp32 (nats/token) | quantization time (s) |")
print("|---|---|---|---|---|---|")
for r in rows:
    q = "-" if r["quantization_seconds"] is None else f'{r["quantization_seconds"]:.1f}'
    print(f'| {r["method"]} | {r["config"]} | {r["bits_per_weight"]} | {r["perplexity"]:.4f} | {r["kl_divergence"]:.5f} | {q} |')
PY
mv "$out.tmp" "$out"
