#!/usr/bin/env bash
#===- sweep-gguf.sh - Cut and corrupt a GGUF file at every header field -----===#
#
# Part of the qc project. MIT licence.
#
# Usage: sweep-gguf.sh cuts|fields QUANT-IMPORT MODEL.gguf WORK-DIR
#
# Lists MODEL.gguf's header fields with gguf-fields.sh, then either cuts the
# file at the start of every field and in its data ("cuts"), or overwrites
# every integer field (version, counts, string lengths, value types, values,
# n_dims, dims, ggml types, tensor offsets) with all-one bits, i.e. -1 or
# the type's maximum, and the first byte of every string with 0xff
# ("fields"). Each result must be refused by quant-import with an error
# naming the file (expect-error.sh: exit 1, no crash). The two modes are two
# lit tests so that each stays short.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
mode="$1" tool="$2" src="$3" work="$4"
here="$(cd "$(dirname "$0")" && pwd)"
expect="$here/expect-error.sh"
mkdir -p "$work"
f="$work/m.gguf"
size=$(wc -c < "$src")
"$here/gguf-fields.sh" "$src" > "$work/fields.txt"
data=$(sed -n 's/^DATA //p' "$work/fields.txt")

if [ "$mode" = cuts ]; then
  while read -r off bytes kind label; do
    [ "$off" = DATA ] && continue
    head -c "$off" "$src" > "$f"
    "$expect" "cut-at-$label" 'm\.gguf' -- "$tool" "$f" -o /dev/null
  done < "$work/fields.txt"
  # (Not the last bytes: padding after the last tensor may be cut off.)
  for c in "$data" $((data + 1)) $(((data + size) / 2)); do
    head -c "$c" "$src" > "$f"
    "$expect" "cut-$c" 'm\.gguf' -- "$tool" "$f" -o /dev/null
  done
fi

if [ "$mode" = fields ]; then
  while read -r off bytes kind label; do
    [ "$off" = DATA ] && continue
    # The training context is only an upper bound on positions (quant-run
    # checks --ctx against it): any positive value is a valid file.
    case "$label" in *=llama.context_length.value) continue ;; esac
    # Renaming an optional key (0xff in its first byte) leaves a file
    # without it, which is valid: the defaults apply and unknown keys are
    # ignored, as in llama.cpp.
    case "$label" in
    *=llama.rope.freq_base.key | *=tokenizer.ggml.bos_token_id.key | \
      *=tokenizer.ggml.eos_token_id.key) continue ;;
    esac
    cp "$src" "$f"
    if [ "$kind" = int ]; then
      "$here/put-le.sh" "$f" "$off" "$bytes" -1
    else
      "$here/put-le.sh" "$f" "$off" 1 255
    fi
    "$expect" "$label" 'm\.gguf' -- "$tool" "$f" -o /dev/null
  done < "$work/fields.txt"
fi
echo "GGUF sweep ($mode): all cases refused cleanly"
