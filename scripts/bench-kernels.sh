#!/usr/bin/env bash
#===- scripts/bench-kernels.sh - Kernel benchmarks: the full flow ---------===#
#
# Part of the qc project. MIT licence.
#
# Two stages, usually on two machines:
#
#   scripts/bench-kernels.sh artifact   # compiler machine (needs MLIR + CUDA toolkit)
#       Builds the project and generates the kernels for the PERF.md shapes
#       into bench/kernels.qcart with quant-kernelgen (sm_80 and sm_90a
#       cubins + PTX).
#
#   scripts/bench-kernels.sh run        # GPU machine (needs only a C++ compiler,
#                                       # CMake and the CUDA driver + cuBLAS 13)
#       Builds the runtime alone from source (no MLIR), runs its GPU tests,
#       runs quant-bench on bench/kernels.qcart and writes
#       bench/results/<gpu>-<date>.json and .svg (scripts/plot-bench.py), and,
#       when PyTorch is installed, bench/results/<gpu>-<date>-torch-int4.json
#       (bench/torch_int4.py).
#
#   scripts/bench-kernels.sh all        # both, on a GPU machine that has MLIR
#
# Environment: QC_BENCH_ARTIFACT (default bench/kernels.qcart),
# QC_BENCH_ARGS (extra quant-bench arguments, e.g. "--m 1,16 --reps 20"),
# QC_BENCH_SHAPES, QC_BENCH_GROUP (default 128), QC_BENCH_SANITIZE=1 to also
# run quant-bench on a small set under compute-sanitizer (memcheck, racecheck).
#
# Nothing here has been run on a GPU yet: the development machine has none.
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stage="${1:-}"
artifact="${QC_BENCH_ARTIFACT:-bench/kernels.qcart}"
shapes="${QC_BENCH_SHAPES:-4096x4096,4096x11008,11008x4096,4096x14336,14336x4096,8192x8192,8192x28672,28672x8192}"
group="${QC_BENCH_GROUP:-128}"

make_artifact() {
  "$root/scripts/setup.sh" >/dev/null
  local gen="${QC_BUILD_DIR:-$root/build}/bin/quant-kernelgen"
  if [[ ! -x "$gen" ]]; then
    echo "bench-kernels: $gen not built (quant-kernelgen comes with the GPU code generation)" >&2
    exit 2
  fi
  "$gen" --shape "$shapes" --bits 4 --group-size "$group" \
    --targets sm_80,sm_90a -o "$artifact"
  echo "bench-kernels: wrote $artifact"
}

run_bench() {
  if [[ ! -f "$artifact" ]]; then
    echo "bench-kernels: $artifact not found; run '$0 artifact' on the compiler machine and copy it here" >&2
    exit 2
  fi
  # The runtime alone, from source: no MLIR/LLVM needed on the GPU machine.
  local rt="$root/build-rt"
  local tests=ON
  cmake -S runtime -B "$rt" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DQC_RUNTIME_BUILD_TESTS=ON >/dev/null 2>&1 || {
    tests=OFF
    cmake -S runtime -B "$rt" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DQC_RUNTIME_BUILD_TESTS=OFF >/dev/null
  }
  ninja -C "$rt"
  if [[ "$tests" == ON ]]; then
    # The driver, launch and layout tests; the GPU ones skip without a GPU.
    ctest --test-dir "$rt" --output-on-failure -R 'CudaDriver|GpuRuntime|KernelLayout|Artifact|CpuLinear'
  fi

  mkdir -p bench/results
  local tmp
  tmp="$(mktemp --suffix=.json)"
  trap 'rm -f "$tmp"' RETURN
  set +e
  # shellcheck disable=SC2086
  "$rt/bin/quant-bench" --artifact "$artifact" --json "$tmp" --table ${QC_BENCH_ARGS:-}
  local rc=$?
  set -e
  if [[ $rc -eq 3 ]]; then
    echo "bench-kernels: no GPU here: nothing measured" >&2
    exit 3
  fi
  if [[ ! -s "$tmp" ]]; then
    echo "bench-kernels: quant-bench failed (exit $rc) before writing results" >&2
    exit "$rc"
  fi
  # <gpu>-<date>: the device name from the results, as a file name.
  local name
  name="$(python3 -c 'import json,re,sys; d=json.load(open(sys.argv[1])); print(re.sub(r"[^a-z0-9]+","-",d["device"]["name"].lower()).strip("-"))' "$tmp")"
  local base
  base="bench/results/${name}-$(date -u +%Y-%m-%d)"
  cp "$tmp" "$base.json"
  python3 scripts/plot-bench.py "$base.json" -o "$base.svg"
  echo "bench-kernels: wrote $base.json and $base.svg (quant-bench exit $rc)"

  if [[ "${QC_BENCH_SANITIZE:-0}" == 1 ]] && command -v compute-sanitizer >/dev/null; then
    local first="${shapes%%,*}"
    for tool in memcheck racecheck; do
      compute-sanitizer --tool "$tool" --error-exitcode 9 \
        "$rt/bin/quant-bench" --artifact "$artifact" --layer "$first" \
        --m 1,16,128 --reps 1 --warmup 0 --rotate-mb 257 >/dev/null
      echo "bench-kernels: compute-sanitizer $tool clean on $first"
    done
  fi

  if python3 -c 'import torch' 2>/dev/null; then
    python3 bench/torch_int4.py --shapes "$shapes" --group-size "$group" \
      --json "$base-torch-int4.json" || echo "bench-kernels: torch_int4.py exited $?" >&2
  else
    echo "bench-kernels: PyTorch not installed: skipping bench/torch_int4.py"
  fi
  return "$rc"
}

case "$stage" in
  artifact) make_artifact ;;
  run) run_bench ;;
  all) make_artifact; run_bench ;;
  *) echo "usage: $0 artifact|run|all" >&2; exit 1 ;;
esac
