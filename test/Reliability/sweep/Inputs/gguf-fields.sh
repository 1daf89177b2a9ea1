#!/usr/bin/env bash
#===- gguf-fields.sh - List the header fields of a GGUF file ---------------===#
#
# Part of the qc project. MIT licence.
#
# Usage: gguf-fields.sh FILE.gguf
#
# Walks a (trusted, well-formed) GGUF v2/v3 file and prints one line per
# header field: "OFFSET BYTES KIND LABEL", where KIND is "int" for a
# little-endian integer field that a sweep may overwrite, and "str" for the
# bytes of a string. Covers the magic, version, counts, every metadata key
# (length, bytes, value type, value or array type/count/elements) and every
# tensor info (name, n_dims, dims, ggml type, offset), then prints
# "DATA OFFSET" for the end of the header (before alignment padding). The
# reliability sweep cuts and corrupts the file at these fields.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
f="$1"
u() { od -An -tu"$2" -j"$1" -N"$2" "$f" | tr -d ' '; }
pos=0
field() { echo "$pos $1 $2 $3"; pos=$((pos + $1)); }
# A string: u64 length, then the bytes.
str() {
  local n
  n=$(u "$pos" 8)
  field 8 int "$1.len"
  ((n > 0)) && field "$n" str "$1"
  return 0
}
# Sizes of the fixed-width value types 0..12 (8 = string, 9 = array).
sizes=(1 1 2 2 4 4 4 1 0 0 8 8 8)
value() {
  local t="$1" label="$2"
  if ((t == 8)); then
    str "$label"
  elif ((t == 9)); then
    local et n i
    et=$(u "$pos" 4)
    field 4 int "$label.elem_type"
    n=$(u "$pos" 8)
    field 8 int "$label.count"
    for ((i = 0; i < n; i++)); do
      if ((i < 2)); then
        value "$et" "$label[$i]"
      elif ((et == 8)); then
        pos=$((pos + 8 + $(u "$pos" 8)))
      else
        pos=$((pos + sizes[et]))
      fi
    done
  else
    field "${sizes[$t]}" int "$label"
  fi
}
field 4 str magic
field 4 int version
nt=$(u "$pos" 8)
field 8 int n_tensors
nkv=$(u "$pos" 8)
field 8 int n_kv
for ((k = 0; k < nkv; k++)); do
  # Values are labelled with their key ("kv3=llama.block_count.value").
  key=$(dd if="$f" bs=1 skip=$((pos + 8)) count="$(u "$pos" 8)" status=none |
    tr -c 'A-Za-z0-9._\n' '?')
  str "kv$k=$key.key"
  t=$(u "$pos" 4)
  field 4 int "kv$k=$key.type"
  value "$t" "kv$k=$key.value"
done
for ((k = 0; k < nt; k++)); do
  str "tensor$k.name"
  nd=$(u "$pos" 4)
  field 4 int "tensor$k.n_dims"
  for ((d = 0; d < nd; d++)); do field 8 int "tensor$k.dim$d"; done
  field 4 int "tensor$k.type"
  field 8 int "tensor$k.offset"
done
echo "DATA $pos"
