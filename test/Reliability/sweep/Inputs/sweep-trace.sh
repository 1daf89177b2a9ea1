#!/usr/bin/env bash
#===- sweep-trace.sh - Corrupt a calibration trace field by field ----------===#
#
# Part of the qc project. MIT licence.
#
# Usage: sweep-trace.sh QUANT-OPT MODEL.mlir TRACE WORK-DIR
#
# TRACE is what quant-calibrate wrote for MODEL.mlir (stories260K). Every
# case corrupts one part of a copy (the safetensors container, the trace's
# metadata: format, fingerprints, layer -> key map, token counts; the
# statistics' dtypes and shapes; the sampled sequences; non-finite values)
# and checks with expect-error.sh that wq-gptq refuses it before
# quantizing: exit 1 and an error naming the trace file (and the key or
# tensor where there is one).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
tool="$1" model="$2" src="$3" work="$4"
here="$(cd "$(dirname "$0")" && pwd)"
edit="$here/st-edit.sh" expect="$here/expect-error.sh"
mkdir -p "$work"
t="$work/t.trace"
q='model.layers.0.self_attn.q_proj'
run() { # run LABEL NEEDLE [SEQUENTIAL]
  "$expect" "$1" "$2" -- "$tool" "$model" --mlir-print-op-on-diagnostic=false \
    -wq-gptq="bits=4 group-size=32 sequential=${3:-false} trace=$t weights-out=$work/w.safetensors" \
    -o /dev/null
}
header() { # header LABEL NEEDLE SED-SCRIPT [SEQUENTIAL]
  "$edit" "$src" "$t" "$3"
  run "$1" "$2" "${4:-false}"
}
size=$(wc -c < "$src")
n=$(od -An -tu8 -N8 "$src" | tr -d ' ')

for c in 0 7 8 $((n / 2)) $((n + 8)) $((size / 2)) $((size - 1)); do
  head -c "$c" "$src" > "$t"
  run "cut-$c" 't\.trace'
done
header format 't\.trace.*not a qc calibration trace' \
  's/"qc-calibration-trace-v1"/"qc-calibration-trace-v9"/'
header format-missing 't\.trace.*not a qc calibration trace' \
  's/"format":"qc-calibration-trace-v1",//'
header model-fingerprint 't\.trace' \
  's/"model_fingerprint":"[0-9a-f]*"/"model_fingerprint":"0123456789abcdef"/'
header layer-key-missing "t\\.trace.*$q" \
  "s/\"layer:$q\":\"$q\"/\"layer:$q\":\"nowhere\"/"
header tokens-not-number "t\\.trace.*$q" \
  "s/\"tokens:$q\":\"[0-9]*\"/\"tokens:$q\":\"many\"/"
header tokens-negative "t\\.trace.*$q" \
  "s/\"tokens:$q\":\"[0-9]*\"/\"tokens:$q\":\"-5\"/"
header tokens-missing "t\\.trace.*$q" \
  "s/\"tokens:$q\":\"[0-9]*\",//"
header hessian-not-square "t\\.trace.*$q" \
  "s/\"$q.hessian\":{\"dtype\":\"F32\",\"shape\":\\[64,64\\]/\"$q.hessian\":{\"dtype\":\"F32\",\"shape\":[32,128]/"
header hessian-rank1 "t\\.trace.*$q" \
  "s/\"$q.hessian\":{\"dtype\":\"F32\",\"shape\":\\[64,64\\]/\"$q.hessian\":{\"dtype\":\"F32\",\"shape\":[4096]/"
header hessian-dtype "t\\.trace.*$q" \
  "s/\"$q.hessian\":{\"dtype\":\"F32\"/\"$q.hessian\":{\"dtype\":\"I32\"/"
header abs-mean-width "t\\.trace.*$q" \
  "s/\"$q.abs_mean\":{\"dtype\":\"F32\",\"shape\":\\[64\\]/\"$q.abs_mean\":{\"dtype\":\"F32\",\"shape\":[32,2]/"
header hessian-renamed "t\\.trace.*$q" \
  "s/\"$q.hessian\"/\"$q.hessiam\"/"
header sample-tokens-dtype 't\.trace.*sample' \
  's/"sample.tokens":{"dtype":"I32"/"sample.tokens":{"dtype":"F32"/' true
header sample-only-tokens 't\.trace.*sample' \
  's/"sample.block_input"/"sample.block_inpvt"/' true
header sample-shape 't\.trace.*sample' \
  's/"sample.tokens":{"dtype":"I32","shape":\[\([0-9]*\),\([0-9]*\)\]/"sample.tokens":{"dtype":"I32","shape":[\2,\1]/' true
# Non-finite statistics: a NaN and an Inf in the Hessian, an Inf in abs_mean.
for v in nan:0x7fc00000 inf:0x7f800000 neginf:0xff800000; do
  cp "$src" "$t"
  "$here/put-le.sh" "$t" $(($("$here/st-offset.sh" "$src" "$q.hessian") + 4 * 65)) 4 "${v#*:}"
  run "hessian-${v%%:*}" "t\\.trace.*$q.hessian.*non-finite"
done
cp "$src" "$t"
"$here/put-le.sh" "$t" "$("$here/st-offset.sh" "$src" "$q.abs_mean")" 4 0x7f800000
run abs-mean-inf "t\\.trace.*$q.abs_mean.*non-finite"
echo "trace sweep: all cases refused cleanly"
