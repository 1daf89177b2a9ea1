#!/usr/bin/env bash
#===- scripts/readme-examples.sh - Run every example command of the README ===#
#
# Part of the qc project. MIT licence.
#
# Extracts every fenced ```sh block of README.md and runs it, block by block
# and in order (later blocks use what earlier ones wrote), in a fresh scratch
# workspace that looks like a checkout: its entries are links to this
# repository's files, its build/ is the build under test and ../shared is the
# real shared folder, so the commands run exactly as a user types them from
# the repository root, and everything they write lands in the workspace, never
# in the sources. A block fails on the first command that exits non-zero; the
# script names the README line of that command and exits 1.
#
# A comment line `#=> TEXT` in a block is an expected output: TEXT must
# appear in what the block printed (stdout or stderr), so the numbers the
# README quotes are the numbers the commands print.
#
# A block preceded by the line
#   <!-- readme-examples: skip: REASON -->
# is listed with its reason and not run (the two set-up commands, which are
# this suite itself; the GPU-only commands).
#
# scripts/setup.sh is replaced in the workspace by a check that the build
# exists: the build under test is already built, and ctest must not
# reconfigure the build it runs from.
#
# Usage: scripts/readme-examples.sh [--build DIR] [--keep] [--list]
#   --build DIR  the build to test (default: build/ of this checkout)
#   --shared DIR the shared models/data folder (default: ../shared)
#   --keep       keep the workspace (its path is printed) instead of removing it
#   --list       print the blocks and the skip reasons, run nothing
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
keep=0
list=0
shared_arg=""
while (($#)); do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --shared) shared_arg="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '3,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "readme-examples: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
readme="$root/README.md"
shared="${shared_arg:-$(cd "$root/.." && pwd)/shared}"
[ -f "$readme" ] || { echo "readme-examples: $readme not found" >&2; exit 2; }
if ((!list)); then
  [ -d "$shared" ] || { echo "readme-examples: ../shared not found next to the checkout" >&2; exit 2; }
  [ -x "$build/bin/quant-opt" ] || { echo "readme-examples: $build is not a build (no bin/quant-opt)" >&2; exit 2; }
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/qc-readme.XXXXXX")"
cleanup() { if ((keep)); then echo "readme-examples: workspace kept: $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# Split the README into blocks: blocks/N.sh holds block N's lines, N.line the
# README line of its first command line, N.skip the skip reason if any.
mkdir -p "$work/blocks"
awk -v dir="$work/blocks" '
  /^<!-- readme-examples: skip: .* -->[ \t]*$/ {
    reason = $0; sub(/^<!-- readme-examples: skip: /, "", reason); sub(/ -->[ \t]*$/, "", reason)
    pending = reason; next
  }
  inblock && /^```[ \t]*$/ { inblock = 0; close(file); next }
  inblock { print > file; next }
  /^```sh[ \t]*$/ {
    n++; inblock = 1; file = dir "/" n ".sh"; printf "" > file
    print NR + 1 > (dir "/" n ".line"); close(dir "/" n ".line")
    if (pending != "") { print pending > (dir "/" n ".skip"); close(dir "/" n ".skip") }
    pending = ""; next
  }
  /[^ \t]/ { pending = "" }
' "$readme"
blocks=$(ls "$work/blocks" | grep -c '\.sh$' || true)
if ((blocks == 0)); then echo "readme-examples: no \`\`\`sh block in README.md" >&2; exit 1; fi

if ((list)); then
  for ((i = 1; i <= blocks; i++)); do
    line=$(cat "$work/blocks/$i.line")
    if [ -f "$work/blocks/$i.skip" ]; then
      echo "block $i (README.md:$line): skipped: $(cat "$work/blocks/$i.skip")"
    else
      echo "block $i (README.md:$line): $(grep -cv '^[[:space:]]*\(#.*\)\{0,1\}$' "$work/blocks/$i.sh") command lines"
    fi
  done
  exit 0
fi

# The workspace: a checkout made of links, a real scripts/ folder (so that
# setup.sh can be replaced) and the build under test.
repo="$work/repo"
mkdir -p "$repo/scripts"
ln -s "$shared" "$work/shared"
ln -s "$build" "$repo/build"
for entry in "$root"/* "$root"/.[!.]*; do
  name="$(basename "$entry")"
  case "$name" in
    build|build*|scratch|scripts|.git|.venv*) continue ;;
  esac
  ln -s "$entry" "$repo/$name"
done
for s in "$root"/scripts/*; do ln -s "$s" "$repo/scripts/$(basename "$s")"; done
rm "$repo/scripts/setup.sh"
cat > "$repo/scripts/setup.sh" <<'EOF'
#!/usr/bin/env bash
# readme-examples: the build under test is already built; only check it.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -x "$root/build/bin/quant-opt" ] || { echo "setup: no build at $root/build" >&2; exit 1; }
EOF
chmod +x "$repo/scripts/setup.sh"

failed=0
ran=0
skipped=0
start_all=$SECONDS
for ((i = 1; i <= blocks; i++)); do
  line=$(cat "$work/blocks/$i.line")
  if [ -f "$work/blocks/$i.skip" ]; then
    echo "readme-examples: block $i (README.md:$line): skipped: $(cat "$work/blocks/$i.skip")"
    skipped=$((skipped + 1))
    continue
  fi
  # Each block runs as one bash script: errexit and pipefail stop it at the
  # first failing command; the ERR trap maps the script's line back to the
  # README. The preamble is exactly three lines (offset below).
  script="$work/blocks/$i.run.sh"
  {
    echo 'set -eEuo pipefail'
    echo "trap 'rc=\$?; echo \"readme-examples: README.md:\$((LINENO + $line - 4)): command failed (exit \$rc)\" >&2' ERR"
    echo 'unset QC_BUILD_DIR'
    cat "$work/blocks/$i.sh"
  } > "$script"
  echo "readme-examples: block $i (README.md:$line) ..."
  t0=$SECONDS
  if (cd "$repo" && bash "$script" > "$work/blocks/$i.log" 2>&1); then
    missing=0
    n=0
    while IFS= read -r expect; do
      n=$((n + 1))
      at=$((line - 1 + ${expect%%:*}))
      text="${expect#*:#=> }"
      if ! grep -qF -- "$text" "$work/blocks/$i.log"; then
        echo "readme-examples: README.md:$at: expected output not printed: $text" >&2
        missing=$((missing + 1))
      fi
    done < <(grep -n '^#=> ' "$work/blocks/$i.sh" || true)
    if ((missing)); then
      echo "readme-examples: block $i (README.md:$line) FAILED: $missing of $n expected outputs missing; its output is in $work/blocks/$i.log" >&2
      keep=1
      failed=$((failed + 1))
      break
    fi
    echo "readme-examples: block $i passed in $((SECONDS - t0)) s ($n expected outputs found)"
    ran=$((ran + 1))
  else
    echo "readme-examples: block $i (README.md:$line) FAILED after $((SECONDS - t0)) s; its last output:" >&2
    tail -n 40 "$work/blocks/$i.log" >&2
    keep=1
    failed=$((failed + 1))
    break  # later blocks use what this one writes
  fi
done
# The examples write only under scratch/ (the README says so): anything
# else that appeared in the workspace checkout (all links but scripts/,
# build and scratch/) would land in a user's repository.
stray=$(cd "$repo" && find . -mindepth 1 -maxdepth 1 ! -type l \
  ! -name scratch ! -name scripts | sed 's|^\./||')
if [ -n "$stray" ]; then
  echo "readme-examples: the examples wrote outside scratch/: $stray" >&2
  keep=1
  failed=$((failed + 1))
fi
echo "readme-examples: $ran blocks passed, $failed failed, $skipped skipped, $((SECONDS - start_all)) s"
((failed == 0))
