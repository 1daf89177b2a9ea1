#!/usr/bin/env bash
#===- st-offset.sh - File offset of a tensor in a safetensors file ---------===#
#
# Part of the qc project. MIT licence.
#
# Usage: st-offset.sh FILE TENSOR
#
# Prints the byte offset in FILE at which TENSOR's data begins (8 + header
# length + its data_offsets begin), for patching values in place with
# put-le.sh (NaN weights, a negative Hessian diagonal, ...).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
f="$1" name="$2"
n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
begin=$(dd if="$f" bs=1 skip=8 count="$n" status=none |
  grep -o "\"$name\":{[^}]*}" | sed -e 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
[ -n "$begin" ] || { echo "st-offset: no tensor '$name' in $f" >&2; exit 1; }
echo $((8 + n + begin))
