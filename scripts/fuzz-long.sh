#!/usr/bin/env bash
#===- scripts/fuzz-long.sh - Run every fuzz target for longer --------------===#
#
# Part of the qc project. MIT licence.
#
# Usage: scripts/fuzz-long.sh [SECONDS]   (default 120 per target)
#
# Runs each libFuzzer target of the project (runtime/fuzz: safetensors,
# GGUF, artifact, tokenizer.json; fuzz/: calibration trace, recipe) for
# SECONDS, one after the other on one core, from its checked-in seed corpus
# plus a working corpus kept in $QC_BUILD_DIR/fuzz-long/ (so repeated runs
# build on each other), and writes bench/fuzz/results.json: per target the
# executions, executions per second, edge coverage ("cov") and features
# ("ft") at the end, corpus size, and findings (crash/leak/timeout/oom
# inputs saved, with their paths). Exits 1 if any target found something.
# Needs the fuzz targets built (scripts/setup.sh with clang available builds
# them; QC_BUILD_DIR defaults to build/).
#
#===------------------------------------------------------------------------===#
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
seconds="${1:-120}"
out="$root/bench/fuzz/results.json"
work="$build/fuzz-long"
mkdir -p "$work" "$(dirname "$out")"

# name binary seed-corpus [dictionary]
targets=(
  "safetensors $build/fuzz/fuzz/qc_safetensors_fuzzer $root/runtime/fuzz/corpus $root/runtime/fuzz/safetensors.dict"
  "gguf $build/fuzz/fuzz/qc_gguf_fuzzer $root/runtime/fuzz/gguf-corpus $root/runtime/fuzz/gguf.dict"
  "artifact $build/fuzz/fuzz/qc_artifact_fuzzer $root/runtime/fuzz/artifact-corpus -"
  "tokenizer $build/fuzz/fuzz/qc_tokenizer_fuzzer $root/runtime/fuzz/tokenizer-corpus $root/runtime/fuzz/tokenizer.dict"
  "trace $build/fuzz-compiler/qc_trace_fuzzer $root/fuzz/trace-corpus $root/fuzz/trace.dict"
  "recipe $build/fuzz-compiler/qc_recipe_fuzzer $root/fuzz/recipe-corpus $root/fuzz/recipe.dict"
)

entries=() found=0
for t in "${targets[@]}"; do
  read -r name bin seeds dict <<< "$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz-long: $bin is missing; build the fuzz targets first" >&2
    exit 2
  fi
  corpus="$work/$name-corpus" arts="$work/$name-findings"
  mkdir -p "$corpus" "$arts"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$arts/")
  [ "$dict" != - ] && args+=(-dict="$dict")
  echo "fuzz-long: $name for ${seconds}s"
  log="$work/$name.log"
  nice "$bin" "${args[@]}" "$corpus" "$seeds" > "$log" 2>&1
  rc=$?
  # The last status line ("#N ... cov: C ft: F corp: U/...") and the final
  # stats libFuzzer prints with -print_final_stats=1.
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<< "$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<< "$last")
  corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<< "$last")
  # (libFuzzer pads these with spaces.)
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1 | tr -d ' '; }
  execs=$(stat number_of_executed_units)
  eps=$(stat average_exec_per_sec)
  rss=$(stat peak_rss_mb)
  files=$(find "$arts" -type f \( -name 'crash-*' -o -name 'leak-*' -o \
    -name 'timeout-*' -o -name 'oom-*' \) | sort)
  n=$(grep -c . <<< "$files")
  found=$((found + n))
  # Paths relative to the build folder (no machine paths in the results).
  list=""
  [ -n "$files" ] &&
    list=$(sed -e "s|^$build/||" -e 's/.*/"&"/' <<< "$files" | paste -sd, -)
  entries+=("    {\"name\": \"$name\", \"seconds\": $seconds, \"executions\": ${execs:-0}, \"exec_per_sec\": ${eps:-0}, \"coverage_edges\": ${cov:-0}, \"features\": ${ft:-0}, \"corpus_units\": ${corp:-0}, \"peak_rss_mb\": ${rss:-0}, \"exit_status\": $rc, \"findings\": $n, \"finding_files\": [${list}]}")
  echo "fuzz-long: $name: ${execs:-0} executions, cov ${cov:-0}, ft ${ft:-0}, $n findings (exit $rc)"
done

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"commit\": \"$commit\","
  echo "  \"cpu_cores_used\": 1,"
  echo "  \"machine\": \"$(nproc) cores, $(uname -m)\","
  echo "  \"findings\": $found,"
  echo "  \"fuzzers\": ["
  for ((i = 0; i < ${#entries[@]}; i++)); do
    sep=","
    ((i == ${#entries[@]} - 1)) && sep=""
    echo "${entries[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > "$out"
echo "fuzz-long: wrote $out"
((found == 0))
