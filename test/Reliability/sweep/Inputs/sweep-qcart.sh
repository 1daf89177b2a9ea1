#!/usr/bin/env bash
#===- sweep-qcart.sh - Cut and corrupt a compiled artifact -----------------===#
#
# Part of the qc project. MIT licence.
#
# Usage: sweep-qcart.sh QUANT-BENCH ARTIFACT.qcart WORK-DIR
#
# An artifact (runtime/include/qc/runtime/Artifact.h) is a 48-byte header
# (magic, version, header size, manifest size, total size, FNV-1a checksum,
# reserved), a JSON manifest and 64-byte aligned sections. Every case cuts a
# copy at a header field, at the manifest, at every section's start and
# middle, or overwrites a header field with all-one bits, or flips a byte of
# the magic, the manifest or a section; quant-bench must refuse it with its
# artifact-error status 2 and a line naming the file, before it looks for a
# GPU (the driver library is not even set here) and so before any launch.
#
#===------------------------------------------------------------------------===#
set -euo pipefail
tool="$1" src="$2" work="$3"
here="$(cd "$(dirname "$0")" && pwd)"
export EXPECT_STATUS=2 EXPECT_TAG="quant-bench:"
expect="$here/expect-error.sh"
mkdir -p "$work"
f="$work/k.qcart"
size=$(wc -c < "$src")
m=$(od -An -tu8 -j16 -N8 "$src" | tr -d ' ')
# Section starts and ends, from the manifest's "sections" array.
sections=$(dd if="$src" bs=1 skip=48 count="$m" status=none |
  grep -o '"sections":\[[^]]*\]' |
  grep -o '"offset":[0-9]*,"bytes":[0-9]*' | sed -e 's/[^0-9,]//g')
run() { "$expect" "$1" 'k\.qcart' -- env -u QC_CUDA_DRIVER_LIBRARY "$tool" --artifact "$f" --m 1; }

cuts="0 4 8 12 16 24 32 40 47 48 $((48 + m / 2)) $((48 + m))"
for s in $sections; do
  off=${s%,*} len=${s#*,}
  cuts+=" $off $((off + len / 2)) $((off + len - 1))"
done
for c in $cuts $((size - 1)); do
  head -c "$c" "$src" > "$f"
  run "cut-$c"
done
for field in version:8:4 header_bytes:12:4 manifest_bytes:16:8 total_bytes:24:8 \
  checksum:32:8 reserved:40:8; do
  IFS=: read -r name off bytes <<< "$field"
  cp "$src" "$f" && "$here/put-le.sh" "$f" "$off" "$bytes" -1
  run "$name=-1"
done
cp "$src" "$f" && "$here/put-le.sh" "$f" 12 4 64 && run header_bytes=64
cp "$src" "$f" && "$here/put-le.sh" "$f" 16 8 $((m + 1)) && run manifest_bytes+1
cp "$src" "$f" && "$here/put-le.sh" "$f" 24 8 $((size + 64)) && run total_bytes+64
flips="1 48 $((48 + m - 1))"
for s in $sections; do
  off=${s%,*} len=${s#*,}
  flips+=" $off $((off + len / 2))"
done
for b in $flips; do
  cp "$src" "$f"
  v=$(od -An -tu1 -j"$b" -N1 "$src" | tr -d ' ')
  "$here/put-le.sh" "$f" "$b" 1 $((v ^ 255))
  run "flip-$b"
done
{ cat "$src"; printf 'x'; } > "$f" && run trailing-byte
echo "artifact sweep: all cases refused cleanly"
