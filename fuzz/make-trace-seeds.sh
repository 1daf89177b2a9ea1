#!/usr/bin/env bash
#===- make-trace-seeds.sh - Write the trace fuzzer's seed corpus ------------===#
#
# Part of the qc project. MIT licence.
#
# Usage: make-trace-seeds.sh [DIR]   (default: trace-corpus next to this file)
#
# Writes three small valid calibration traces (safetensors with the trace
# metadata; see include/qc/Calibration/Trace.h): one entry of width 2 used
# by one layer; two layers sharing that entry plus the sampled sequences
# (S=1, T=2, D=2); and two entries of widths 2 and 3. Real traces are about
# a megabyte, too large for libFuzzer to mutate usefully.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/trace-corpus}"
mkdir -p "$dir"

# le64 N: N as 8 little-endian bytes (printf escapes).
le64() {
  local hex le="" i
  hex=$(printf '%016x' "$1")
  for i in 14 12 10 8 6 4 2 0; do le+="\\x${hex:$i:2}"; done
  printf "$le"
}
one='\x00\x00\x80\x3f' half='\x00\x00\x00\x3f' two='\x00\x00\x00\x40'
# seed FILE HEADER DATA-ESCAPES
seed() {
  { le64 "${#2}"; printf '%s' "$2"; printf "$3"; } > "$dir/$1"
}
meta='"__metadata__":{"format":"qc-calibration-trace-v1","model_fingerprint":"0123456789abcdef","fingerprint":"fedcba9876543210","tokens":"3"'

seed one-entry.trace \
  "{$meta,\"layer:l0.q_proj\":\"l0.q_proj\",\"tokens:l0.q_proj\":\"3\"},\"l0.q_proj.abs_mean\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"l0.q_proj.hessian\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}" \
  "$half$half$two$one$one$two"

seed shared-with-sample.trace \
  "{$meta,\"layer:l0.q_proj\":\"l0.q_proj\",\"layer:l0.k_proj\":\"l0.q_proj\",\"tokens:l0.q_proj\":\"2\",\"sample_sequences\":\"1\"},\"l0.q_proj.abs_mean\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"l0.q_proj.hessian\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]},\"sample.block_input\":{\"dtype\":\"F32\",\"shape\":[1,2,2],\"data_offsets\":[24,40]},\"sample.tokens\":{\"dtype\":\"I32\",\"shape\":[1,2],\"data_offsets\":[40,48]}}" \
  "$half$one$two$one$one$two$one$half$two$one\x01\x00\x00\x00\x05\x00\x00\x00"

seed two-entries.trace \
  "{$meta,\"layer:l0.o_proj\":\"l0.o_proj\",\"layer:l0.down_proj\":\"l0.down_proj\",\"tokens:l0.o_proj\":\"3\",\"tokens:l0.down_proj\":\"0\"},\"l0.o_proj.abs_mean\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"l0.o_proj.hessian\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[8,16]},\"l0.down_proj.abs_mean\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},\"l0.down_proj.hessian\":{\"dtype\":\"F32\",\"shape\":[3,3],\"data_offsets\":[22,58]}}" \
  "$half$one\x00\x40\x00\x3c\x00\x3c\x00\x40\x80\x3f\x00\x40\x00\x3f$two$one$one$one$two$one$one$one$two"
