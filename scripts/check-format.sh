#!/usr/bin/env bash
#===- scripts/check-format.sh - The C++ sources are clang-format clean -----===#
#
# Part of the qc project. MIT licence.
#
# Runs clang-format (LLVM 22, the version scripts/setup.sh installs; another
# version may format differently) in dry-run mode over every tracked C++
# file and fails listing the files that are not formatted as .clang-format
# says. `scripts/check-format.sh --fix` formats them in place. A ctest
# (ClangFormat) runs the check.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cf="${CLANG_FORMAT:-$(command -v clang-format-22 || true)}"
if [ -z "$cf" ]; then
  cf="$(llvm-config-22 --bindir 2>/dev/null)/clang-format"
fi
[ -x "$cf" ] || { echo "check-format: clang-format-22 not found; run scripts/setup.sh" >&2; exit 1; }

cd "$root"
# Without git (a source tarball) every C++ file under the source folders.
# With git, tracked files and new ones not yet added (but not ignored ones):
# a file written in this checkout is checked before its first commit.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard \
    '*.cpp' '*.h' '*.inc' | sort -u)
else
  mapfile -t files < <(find dialects include lib runtime tools test fuzz bench \
    -name '*.cpp' -o -name '*.h' -o -name '*.inc' | sort)
fi
if [ "${1:-}" = --fix ]; then
  "$cf" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-format: ${#bad[@]} of ${#files[@]} files are not clang-format clean (scripts/check-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files clean ($("$cf" --version | head -1))"
