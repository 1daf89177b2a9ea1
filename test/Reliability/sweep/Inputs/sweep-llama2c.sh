#!/usr/bin/env bash
#===- sweep-llama2c.sh - Corrupt a llama2.c checkpoint field by field -------===#
#
# Part of the qc project. MIT licence.
#
# Usage: sweep-llama2c.sh QUANT-IMPORT MODEL.bin WORK-DIR
#
# A llama2.c checkpoint starts with seven int32 fields (dim, hidden_dim,
# n_layers, n_heads, n_kv_heads, vocab_size, seq_len) followed by fp32
# weights whose sizes follow from them. Every case sets one field to 0, -1,
# INT32_MAX or an inconsistent value, or cuts the file at a field boundary
# or inside the weights, and checks with expect-error.sh that quant-import
# refuses it with an error naming the file (exit 1, no crash).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
tool="$1" src="$2" work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
expect="$here/expect-error.sh"
mkdir -p "$work"
f="$work/m.bin"
size=$(wc -c < "$src")

fields=(dim hidden_dim n_layers n_heads n_kv_heads vocab_size seq_len)
for i in "${!fields[@]}"; do
  for v in 0 -1 2147483647 3; do
    # vocab_size < 0 only marks an untied classifier; -512 is valid, -1 not.
    cp "$src" "$f"
    "$here/put-le.sh" "$f" $((4 * i)) 4 "$v"
    "$expect" "${fields[$i]}=$v" 'm\.bin' -- "$tool" "$f" -o /dev/null
  done
done
# n_heads that does not divide dim; n_kv_heads that does not divide n_heads.
cp "$src" "$f" && "$here/put-le.sh" "$f" 12 4 7
"$expect" heads-not-dividing 'm\.bin' -- "$tool" "$f" -o /dev/null
cp "$src" "$f" && "$here/put-le.sh" "$f" 16 4 3
"$expect" kv-heads-not-dividing 'm\.bin' -- "$tool" "$f" -o /dev/null

for c in 0 4 12 27 28 1000 $((size / 2)) \
  $((size - 1)); do
  head -c "$c" "$src" > "$f"
  "$expect" "cut-$c" 'm\.bin' -- "$tool" "$f" -o /dev/null
done
{ cat "$src"; printf 'xxxx'; } > "$f"
"$expect" trailing-bytes 'm\.bin' -- "$tool" "$f" -o /dev/null
echo "llama2.c sweep: all cases refused cleanly"
