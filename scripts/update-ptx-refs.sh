#!/usr/bin/env bash
#===- scripts/update-ptx-refs.sh - Regenerate the PTX reference files ------===#
#
# Part of the qc project. MIT licence.
#
# Rewrites test/Conversion/WQToGPU/ptx-ref/* from the RUN lines of
# test/Conversion/WQToGPU/ptx-ref.test with the quant-kernelgen of BIN_DIR
# (default build/bin). Only for a change that means to alter the generated
# code: a refactoring must pass that test with the files as they are.
#
#   scripts/update-ptx-refs.sh [BIN_DIR]
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/build/bin}"
test="$root/test/Conversion/WQToGPU/ptx-ref.test"
refs="$root/test/Conversion/WQToGPU/ptx-ref"
kg="$bin/quant-kernelgen"
[ -x "$kg" ] || { echo "update-ptx-refs: no $kg" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

n=0
while IFS= read -r line; do
  cmd="${line#RUN: quant-kernelgen }"
  if [[ "$cmd" == *" --print-ptx | diff -u %S/ptx-ref/"* ]]; then
    # quant-kernelgen ARGS --print-ptx | diff -u %S/ptx-ref/NAME -
    args="${cmd%% --print-ptx | diff*}"
    name="${cmd##*%S/ptx-ref/}"
    name="${name% -}"
    eval "\"\$kg\" $args --print-ptx" >"$refs/$name"
  elif [[ "$cmd" == *" --ptx-images only -o %t."* ]]; then
    # quant-kernelgen ARGS --ptx-images only -o %t.NAME.qcart: the reference
    # is the --inspect listing without its first line (the path).
    args="${cmd%% --ptx-images only -o*}"
    name="${cmd##*-o %t.}"
    name="${name%.qcart}"
    eval "\"\$kg\" $args --ptx-images only -o \"\$tmp/a.qcart\"" >/dev/null
    "$kg" --inspect "$tmp/a.qcart" | tail -n +2 >"$refs/$name.inspect"
  else
    continue
  fi
  n=$((n + 1))
done < <(grep '^RUN: quant-kernelgen ' "$test" | grep -v -- '--inspect')
echo "update-ptx-refs: $n files written under ${refs#$root/}"
