#!/usr/bin/env bash
#===- expect-error.sh - Check that a command fails cleanly -----------------===#
#
# Part of the qc project. MIT licence.
#
# Usage: expect-error.sh LABEL NEEDLE -- COMMAND [ARGS...]
#
# Runs COMMAND and checks the reliability contract for bad input: the exit
# status is 1 (not 0, and not a signal or sanitizer abort, which would show
# as >= 128 or as another status), stderr holds an "error:" line, and that
# line names NEEDLE (the file, tensor or key at fault; a grep -E pattern).
# EXPECT_STATUS and EXPECT_TAG override the status and the "error:" tag for
# tools with other conventions (quant-bench: 2 and "quant-bench:").
# Prints "ok LABEL" or "FAIL LABEL: why" plus the command's stderr, and
# exits non-zero on failure so that loops in lit RUN lines can stop at the
# first bad case. Used to sweep many corruptions of one input in a loop.
#
#===------------------------------------------------------------------------===#
set -uo pipefail
label="$1" needle="$2"
shift 2
[ "${1:-}" = "--" ] && shift
err=$(mktemp)
"$@" >/dev/null 2>"$err"
rc=$?
fail() {
  echo "FAIL $label: $1"
  sed -e 's/^/  | /' "$err" | head -20
  rm -f "$err"
  exit 1
}
[ "$rc" -eq 0 ] && fail "exit status 0 (the bad input was accepted)"
status="${EXPECT_STATUS:-1}" tag="${EXPECT_TAG:-error:}"
[ "$rc" -ne "$status" ] &&
  fail "exit status $rc, expected $status (a crash or an unexpected status)"
grep -aq -- "$tag" "$err" || fail "no '$tag' line on stderr"
grep -a -- "$tag" "$err" | grep -aEq -- "$needle" ||
  fail "the error does not name '$needle'"
echo "ok $label: $(grep -a -m1 -- "$tag" "$err")"
rm -f "$err"
