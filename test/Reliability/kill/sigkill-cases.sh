#!/usr/bin/env bash
#===- sigkill-cases.sh - The SIGKILL sweep of each output-writing tool -----===#
#
# Part of the qc project. MIT licence.
#
# Usage: sigkill-cases.sh CASE BIN-DIR SHARED-DIR WORK-DIR [KILLS]
#
# Prepares the inputs of one output-writing command on the bundled
# stories260K model and runs sigkill-sweep.sh on it (KILLS kill times,
# default 20, half of them over a previous output). CASE is one of
#   export-hf    quant-import --export-hf DIR           (a folder)
#   export-gptq  quant-import Q.mlir --export-gptq DIR  (a folder)
#   weights-out  quant-opt -wq-rtn="... weights-out=F"  (a file)
#   calibrate    quant-calibrate -o TRACE               (a file)
#   compile      quant-compile -o DIR (RTN recipe)      (a folder)
# ctest runs each case as sigkill_<case> (test/CMakeLists.txt).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
case="$1" bin="$2" shared="$3" work="$4" kills="${5:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
sweep="$here/sigkill-sweep.sh"
model="$shared/models/stories260K/stories260K.bin"
tok="$shared/models/stories260K/tok512.bin"
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$bin/quant-import" "$model" -o m.mlir

case "$case" in
export-hf)
  # The folder is written under a temporary name and exchanged with the
  # previous one (--force), so it must be the old or the new one as a whole.
  exec "$sweep" --kills "$kills" --previous dir --out "$work/out" -- \
    "$bin/quant-import" "$model" --export-hf '{OUT}' --force
  ;;
export-gptq)
  "$bin/quant-opt" m.mlir \
    -wq-rtn="bits=4 group-size=32 sym=false layout=gptq weights-out=q.safetensors" \
    -o q.mlir
  exec "$sweep" --kills "$kills" --previous dir --out "$work/out" -- \
    "$bin/quant-import" q.mlir --export-gptq '{OUT}' --force
  ;;
weights-out)
  exec "$sweep" --kills "$kills" --previous file --out "$work/w.safetensors" -- \
    "$bin/quant-opt" m.mlir -wq-rtn="bits=4 group-size=32 weights-out={OUT}" \
    -o /dev/null
  ;;
calibrate)
  exec "$sweep" --kills "$kills" --previous file --out "$work/t.trace" -- \
    "$bin/quant-calibrate" m.mlir --tokenizer "$tok" \
    --text "$shared/data/tinystories/train_head.txt" --max-tokens 512 \
    --no-progress -o '{OUT}'
  ;;
compile)
  printf '{"method": "rtn", "bits": 4, "group_size": 32}\n' > rtn.json
  # report.json records timings, so it is left out of the comparison.
  exec "$sweep" --kills "$kills" --previous dir --exclude report.json \
    --out "$work/out" -- "$bin/quant-compile" "$model" --recipe rtn.json \
    --no-progress --force -o '{OUT}'
  ;;
*)
  echo "sigkill-cases: unknown case '$case'" >&2
  exit 2
  ;;
esac
