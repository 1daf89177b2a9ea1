#!/usr/bin/env bash
#===- put-le.sh - Overwrite a little-endian integer inside a file ----------===#
#
# Part of the qc project. MIT licence.
#
# Usage: put-le.sh FILE OFFSET BYTES VALUE
#
# Writes VALUE (decimal, may be negative: two's complement) as a BYTES-byte
# (1, 2, 4 or 8) little-endian integer at byte OFFSET of FILE, in place.
# Also usable for float bit patterns: put-le.sh F OFF 4 0x7fc00000 (NaN).
#
#===------------------------------------------------------------------------===#
set -euo pipefail
file="$1" off="$2" bytes="$3" value="$4"
# Bash arithmetic is 64-bit two's complement, so masking gives the pattern.
hex=$(printf '%016x' "$((value))")
esc=""
for ((i = 0; i < bytes; i++)); do
  esc+="\\x${hex:$((14 - 2 * i)):2}"
done
printf "$esc" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
