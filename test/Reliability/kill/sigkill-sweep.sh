#!/usr/bin/env bash
#===- sigkill-sweep.sh - Kill an output-writing run at many points ---------===#
#
# Part of the qc project. MIT licence.
#
# Usage:
#   sigkill-sweep.sh [--kills N] [--seed S] [--previous none|file|dir]
#                    [--per-file] [--exclude NAME] --out PATH -- COMMAND...
#
# The output-safety promise is that a run killed at any moment leaves its
# output location either untouched (absent, or the previous content byte for
# byte) or complete (equal to what an uninterrupted run writes); never a
# truncated file or a folder that mixes two runs. This script checks it:
#
#  1. runs COMMAND once uninterrupted (every argument "{OUT}" is replaced by
#     PATH) and keeps its output as the reference, timing the run;
#  2. N times (default 20), prepares PATH (absent, or for every other kill
#     with --previous, a "previous run": for a file, other bytes; for a
#     folder, the reference's file names with other contents, so that a
#     folder mixing two runs is caught), starts COMMAND, sends SIGKILL after
#     a delay spread evenly over 0..1.2x the reference run time plus a
#     random jitter (bash $RANDOM seeded with --seed), and compares PATH with
#     the reference and the previous content.
#
# A folder must be untouched or complete as a whole; --per-file relaxes that
# to every file in it (each file untouched or complete, but a folder may mix
# files of two runs), for tools that replace a folder's files one by one.
#
# --exclude NAME leaves files called NAME out of folder comparisons (e.g. a
# report.json that records timings and so differs between two runs).
#
# Prints one line per kill and a summary; exits 1 if any kill left PATH in
# another state. Leftover temporary files next to PATH are counted and
# reported (they waste space but hide nothing: names ".NAME.tmp-PID-XXXXXX"
# are ignored when folders are compared), and one more uninterrupted run
# must remove them (exit 1 otherwise). Works for any tool: point
# --out at the file or folder the command writes.
#
#===------------------------------------------------------------------------===#
set -uo pipefail
kills=20 seed=1 previous=none out="" perfile=0 exclude=".sigkill-none"
while [ $# -gt 0 ]; do
  case "$1" in
  --kills) kills="$2"; shift 2 ;;
  --seed) seed="$2"; shift 2 ;;
  --previous) previous="$2"; shift 2 ;;
  --out) out="$2"; shift 2 ;;
  --per-file) perfile=1; shift ;;
  --exclude) exclude="$2"; shift 2 ;;
  --) shift; break ;;
  *) echo "sigkill-sweep: unknown option '$1'" >&2; exit 2 ;;
  esac
done
if [ -z "$out" ] || [ $# -eq 0 ]; then
  echo "usage: sigkill-sweep.sh [--kills N] [--seed S] [--previous none|file|dir] --out PATH -- COMMAND..." >&2
  exit 2
fi
cmd=()
for a in "$@"; do cmd+=("${a//\{OUT\}/$out}"); done
ref="$out.sigkill-ref" prev="$out.sigkill-prev"
RANDOM="$seed"
now_ns() { date +%s%N; }

# Everything in the output's folder that is not the output, the reference
# or the previous content, i.e. what killed runs left behind.
leftovers() {
  find "$(dirname "$out")" -maxdepth 1 -newer "$ref.stamp" \
    ! -path "$out" ! -path "$ref" ! -path "$prev" ! -path "$ref.stamp" |
    wc -l
}
# Temporary files a killed run leaves inside an output folder (the tools
# write ".NAME.tmp-PID-XXXXXX" and rename it): counted, not compared.
tmpglob='.*.tmp.*'
same() { # same A B: byte-identical files or folders
  if [ -d "$1" ] && [ -d "$2" ]; then
    diff -r -q -x "$tmpglob" -x "$exclude" "$1" "$2" >/dev/null 2>&1
  elif [ -f "$1" ] && [ -f "$2" ]; then
    cmp -s "$1" "$2"
  else
    return 1
  fi
}

mkdir -p "$(dirname "$out")"
# files_ok STATE: every file of the reference is absent (only when it was
# absent before), previous or complete in $out, and $out holds no other file.
files_ok() {
  local f
  while read -r f; do
    [ -e "$ref/$f" ] || return 1
  done < <(cd "$out" && find . -type f ! -name "$tmpglob" ! -name "$exclude")
  while read -r f; do
    if [ ! -e "$out/$f" ]; then
      [ "$1" = absent ] || return 1
    elif ! cmp -s "$out/$f" "$ref/$f"; then
      [ "$1" = previous ] && cmp -s "$out/$f" "$prev/$f" || return 1
    fi
  done < <(cd "$ref" && find . -type f ! -name "$exclude")
}

rm -rf "$out" "$ref" "$prev"
t0=$(now_ns)
if ! "${cmd[@]}" >/dev/null 2>"$out.sigkill-err"; then
  echo "sigkill-sweep: the uninterrupted run failed:" >&2
  cat "$out.sigkill-err" >&2
  exit 1
fi
t1=$(now_ns)
rm -f "$out.sigkill-err"
[ -e "$out" ] || { echo "sigkill-sweep: the run wrote no $out" >&2; exit 1; }
mv "$out" "$ref"
run_us=$(((t1 - t0) / 1000))
echo "reference run: ${run_us} us; $kills kills, seed $seed, previous=$previous"

case "$previous" in
none) ;;
file) printf 'the output of a previous run\n' > "$prev" ;;
dir)
  mkdir -p "$prev"
  (cd "$ref" && find . -type f) | while read -r f; do
    mkdir -p "$prev/$(dirname "$f")"
    printf 'previous run: %s\n' "$f" > "$prev/$f"
  done
  ;;
*) echo "sigkill-sweep: --previous must be none, file or dir" >&2; exit 2 ;;
esac
touch "$ref.stamp"

bad=0 untouched=0 complete=0 mixed=0 killed=0 intmp=0
for ((i = 0; i < kills; i++)); do
  rm -rf "$out"
  state=absent
  if [ "$previous" != none ] && ((i % 2 == 1)); then
    cp -a "$prev" "$out"
    state=previous
  fi
  # Spread over 0..1.2x the run time; jitter of +-1/(2N) of it.
  delay_us=$(((run_us * 12 * (2 * i + 1)) / (20 * kills) +
    (RANDOM % 1000 - 500) * run_us / (1000 * kills)))
  ((delay_us < 0)) && delay_us=0
  "${cmd[@]}" >/dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  how="finished"
  ((rc == 137)) && how="killed" && killed=$((killed + 1))
  if [ ! -e "$out" ] && [ "$state" = absent ]; then
    result=untouched
  elif same "$out" "$ref"; then
    result=complete
  elif [ "$state" = previous ] && same "$out" "$prev"; then
    result=untouched
  elif ((perfile)) && [ -d "$out" ] && files_ok "$state"; then
    result="untouched or complete file by file"
  else
    result=BROKEN
  fi
  if [ -d "$out" ] && [ -n "$(find "$out" -name "$tmpglob")" ]; then
    intmp=$((intmp + 1))
    result+=" (temporary file left inside)"
  fi
  echo "kill $i at ${delay_us} us ($how, exit $rc, from $state): $result"
  case "$result" in
  untouched\ or*) mixed=$((mixed + 1)) ;;
  untouched*) untouched=$((untouched + 1)) ;;
  complete*) complete=$((complete + 1)) ;;
  *)
    bad=$((bad + 1))
    if [ -d "$out" ]; then
      diff -r -q -x "$tmpglob" -x "$exclude" "$out" "$ref" 2>&1 |
        sed -e 's/^/  vs complete: /' | head -5
      [ "$state" = previous ] && diff -r -q -x "$tmpglob" -x "$exclude" "$out" "$prev" 2>&1 |
        sed -e 's/^/  vs previous: /' | head -5
    else
      ls -l "$out" 2>&1 | sed -e 's/^/  /'
    fi
    ;;
  esac
done
left=$(leftovers)
# The killed runs' temporaries carry their process id; the next run for the
# same output removes those of processes that no longer exist, so after one
# more uninterrupted run nothing may be left next to the output.
if ! "${cmd[@]}" >/dev/null 2>"$out.sigkill-err"; then
  echo "sigkill-sweep: the final uninterrupted run failed:" >&2
  cat "$out.sigkill-err" >&2
  bad=$((bad + 1))
fi
rm -f "$out.sigkill-err"
after=$(find "$(dirname "$out")" -maxdepth 1 -name ".$(basename "$out").*" | wc -l)
rm -rf "$out" "$ref" "$prev" "$ref.stamp"
echo "summary: $kills kills ($killed mid-run): $untouched untouched, $complete complete, $mixed file by file, $bad broken; temporary files left inside the output $intmp times, next to it $left, after one more run $after"
((bad == 0 && after == 0))
