#!/usr/bin/env bash
#===- scripts/interop-check.sh - Exports loaded by the tools users run ----===#
#
# Part of the qc project. MIT licence.
#
# A benchmark, not CI. Creates its own virtual environment from PyPI,
# quantizes stories260K and SmolLM2-135M with RTN and GPTQ (act-order off
# and on), exports each in the formats it fits -- GPTQ (transformers +
# GPTQModel), GGUF (llama.cpp via llama-cpp-python), compressed-tensors
# (transformers + compressed-tensors) -- scores every export in its foreign
# tool and in qc (quant-run on the export itself) with the same token ids
# and protocol, writes bench/interop/results.json and prints the README's
# table.
#
# Environment: QC_BUILD_DIR (default build), QC_INTEROP_VENV (default
# build/interop-venv), INTEROP_HF=0 to skip the torch/transformers tools
# (GGUF only), INTEROP_CTX (256), INTEROP_TOKENS (2048),
# INTEROP_CALIB_TOKENS (4096), INTEROP_MODELS ("stories smollm2").
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
bin="$build/bin"
shared="$root/../shared"
venv="${QC_INTEROP_VENV:-$build/interop-venv}"
work="${QC_INTEROP_WORK:-$build/interop}"
ctx="${INTEROP_CTX:-256}"
tokens="${INTEROP_TOKENS:-2048}"
# Calibration tokens for GPTQ (the check is about the files, not about the
# best quantization; the whole train_head.txt takes half an hour on
# SmolLM2 with 2 cores).
calib_tokens="${INTEROP_CALIB_TOKENS:-4096}"
models="${INTEROP_MODELS:-stories smollm2}"
text="$shared/data/tinystories/valid_head.txt"
calib="$shared/data/tinystories/train_head.txt"

for t in quant-import quant-opt quant-run quant-calibrate quant-tokenize; do
  [ -x "$bin/$t" ] || { echo "interop-check: $bin/$t missing; run scripts/setup.sh" >&2; exit 1; }
done

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# llama-cpp-python builds llama.cpp from source (CPU only).
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$venv/bin/pip" install -q gguf numpy llama-cpp-python
if [ "${INTEROP_HF:-1}" = 1 ]; then
  # transformers loads GPTQ checkpoints through optimum's GPTQ quantizer,
  # which in turn runs GPTQModel's kernels.
  "$venv/bin/pip" install -q torch transformers accelerate optimum compressed-tensors
  # GPTQModel's CPU path (TorchQuantLinear) needs no compiled kernels.
  BUILD_CUDA_EXT=0 "$venv/bin/pip" install -q --no-build-isolation gptqmodel ||
    echo "interop-check: gptqmodel did not install; GPTQ rows will record the error" >&2
fi

mkdir -p "$work" "$root/bench/interop"
manifest="$work/manifest.json"
echo "[" > "$manifest"
first=1
add() { # name format path ids-json (uses the model's ${tok[@]})
  local name="$1" format="$2" path="$3" ids="$4"
  "$bin/quant-run" "$path" "${tok[@]}" --ppl "$text" --ctx "$ctx" --bos none --max-tokens "$tokens" \
    --no-progress --json "$work/$name.qc.json" > "$work/$name.qc.log" 2>&1 ||
    { echo "interop-check: qc could not score $path (see $work/$name.qc.log)" >&2; return 0; }
  [ $first = 1 ] || echo "," >> "$manifest"
  first=0
  printf '{"name": "%s", "format": "%s", "path": "%s", "ids": "%s", "ctx": %s, "max_tokens": %s, "qc_json": "%s"}\n' \
    "$name" "$format" "$path" "$ids" "$ctx" "$tokens" "$work/$name.qc.json" >> "$manifest"
}

for model in $models; do
  case "$model" in
    stories)
      src="$shared/models/stories260K/stories260K.bin"
      tok=(--tokenizer "$shared/models/stories260K/tok512.bin")
      "$bin/quant-tokenize" "$shared/models/stories260K/tok512.bin" --vocab-size 512 \
        --file "$text" --no-add-special --json > "$work/stories.ids.json"
      ;;
    smollm2)
      src="$shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
      tok=()
      "$bin/quant-tokenize" "$src" --file "$text" --no-add-special --json > "$work/smollm2.ids.json"
      ;;
    *) echo "interop-check: unknown model $model" >&2; exit 1 ;;
  esac
  m="$work/$model"
  "$bin/quant-import" "$src" -o "$m.mlir"
  "$bin/quant-calibrate" "$m.mlir" "${tok[@]}" --text "$calib" --max-tokens "$calib_tokens" \
    --no-progress -o "$m.trace.safetensors"
  for method in rtn gptq gptq-act; do
    case "$method" in
      rtn) pass="wq-rtn=bits=4 group-size=32 sym=false" ;;
      gptq) pass="wq-gptq=bits=4 group-size=32 sym=false act-order=false trace=$m.trace.safetensors" ;;
      gptq-act) pass="wq-gptq=bits=4 group-size=32 sym=false act-order=true trace=$m.trace.safetensors" ;;
    esac
    q="$m.$method"
    "$bin/quant-opt" "$m.mlir" -o "$q.mlir" "-${pass} weights-out=$q.safetensors"
    # GPTQ: every configuration.
    if "$bin/quant-import" "$q.mlir" --export-gptq "$q.gptq" --force; then
      if [ "$model" = smollm2 ]; then
        cp "$shared/models/smollm2-135m/tokenizer.json" "$shared/models/smollm2-135m/tokenizer_config.json" "$q.gptq/"
      fi
      add "$model.$method.gptq" gptq "$q.gptq" "$work/$model.ids.json"
    fi
    # GGUF: group-32 without act-order, with a tokenizer to carry (SmolLM2).
    if [ "$model" = smollm2 ] && [ "$method" != gptq-act ]; then
      "$bin/quant-import" "$q.mlir" --export-gguf "$q.gguf" &&
        add "$model.$method.gguf" gguf "$q.gguf" "$work/$model.ids.json"
    fi
    # compressed-tensors: K % 32 == 0 for the group strategy (SmolLM2), and
    # no act-order g_idx (compressed-tensors removed actorder "group"; qc's
    # exporter refuses it).
    if [ "$model" = smollm2 ] && [ "$method" != gptq-act ]; then
      "$bin/quant-import" "$q.mlir" --export-compressed-tensors "$q.ct" --force &&
        cp "$shared/models/smollm2-135m/tokenizer.json" "$shared/models/smollm2-135m/tokenizer_config.json" "$q.ct/" &&
        add "$model.$method.ct" compressed-tensors "$q.ct" "$work/$model.ids.json"
    fi
  done
done
echo "]" >> "$manifest"

"$venv/bin/python" "$root/scripts/interop/foreign_eval.py" "$manifest" \
  --root "$root" -o "$root/bench/interop/results.json"
echo "interop-check: wrote bench/interop/results.json"
