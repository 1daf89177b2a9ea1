#!/usr/bin/env bash
#===- scripts/bench-cpu-perplexity.sh - Whole-file CPU perplexity ---------===#
#
# Part of the qc project. MIT licence.
#
# Scores stories260K on the WHOLE held-out TinyStories text (392,082
# tokens) on the CPU path and records perplexity, wall time and the machine
# in bench/results/cpu-perplexity-stories260K.json; prints the README row.
# Run it on an otherwise idle machine: timings of a shared machine are noisy.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
# Relative paths, so that the results file names no machine path.
cd "$root"
shared="../shared"
out="$root/bench/results/cpu-perplexity-stories260K.json"
"$root/scripts/setup.sh" >/dev/null

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s.%N)
"$build/bin/quant-run" "$shared/models/stories260K/stories260K.bin" \
  --tokenizer "$shared/models/stories260K/tok512.bin" \
  --ppl "$shared/data/tinystories/valid_head.txt" --no-progress \
  --json "$tmp" | tee /dev/stderr > /dev/null
end=$(date +%s.%N)
total=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo "{"
  echo "  \"benchmark\": \"cpu-perplexity\","
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"commit\": \"$(git -C "$root" rev-parse --short HEAD)\","
  echo "  \"machine\": {\"cpu\": \"$cpu\", \"cores\": $(nproc)},"
  echo "  \"command_seconds\": $total,"
  echo "  \"result\": $(cat "$tmp")"
  echo "}"
} > "$out.tmp"
mv "$out.tmp" "$out"
ppl=$(grep -m1 '"perplexity": [0-9]' "$out" | sed 's/.*: //; s/,//')
secs=$(grep -m1 '"seconds"' "$out" | sed 's/.*: //; s/,//')
printf '| stories260K | whole valid_head.txt (392,082 tokens) | %.4f | %.1f s scoring, %s s with import and JIT | %s cores |\n' \
  "$ppl" "$secs" "$total" "$(nproc)"
