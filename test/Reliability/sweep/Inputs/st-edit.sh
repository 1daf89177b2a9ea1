#!/usr/bin/env bash
#===- st-edit.sh - Rewrite the JSON header of a safetensors file -----------===#
#
# Part of the qc project. MIT licence.
#
# Usage: st-edit.sh IN OUT SED-SCRIPT [LENGTH]
#
# Copies the safetensors file IN to OUT with its JSON header passed through
# `sed -e SED-SCRIPT` and the 8-byte little-endian header length rewritten to
# the new header's size (or to LENGTH when given, to make the length lie).
# The data section is copied unchanged. The reliability sweep uses it to
# corrupt one header field at a time without a Python dependency.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
in="$1" out="$2" script="$3"
n=$(od -An -tu8 -N8 "$in" | tr -d ' ')
hdr=$(dd if="$in" bs=1 skip=8 count="$n" status=none | sed -e "$script")
len="${4:-${#hdr}}"
# The length as eight little-endian bytes, written with printf escapes.
hex=$(printf '%016x' "$len")
le=""
for i in 14 12 10 8 6 4 2 0; do le+="\\x${hex:$i:2}"; done
{
  printf "$le"
  printf '%s' "$hdr"
  tail -c +"$((9 + n))" "$in"
} > "$out"
