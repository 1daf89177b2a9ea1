#!/usr/bin/env bash
#===- scripts/bench-memory.sh - Quantizing an 8B-shaped model in bounded memory -===#
#
# Part of the qc project. MIT licence.
#
# A benchmark, not CI (it writes ~19 GiB of checkpoints and runs for about
# half an hour on 2 cores). Checkpoints with Llama-3-8B's shapes and random
# bf16 weights (bench/memory/make_checkpoint.py: hidden 4096, MLP 14336,
# vocabulary 128256, untied head) are quantized with quant-compile:
#
#   rtn-4L    RTN W4 g128 asym, 4 decoder layers
#   gptq-4L   GPTQ W4 g128 asym (sequential), 4 decoder layers, calibrated
#             on 2,048 tokens of train_head.txt (8 sampled windows of 256)
#   rtn-32L   RTN W4 g128 asym, all 32 decoder layers (15 GiB of bf16)
#
# For each: peak resident memory (/usr/bin/time's maximum RSS, which counts
# mapped file pages too) and wall time, next to the sizes the issue judges
# them by: the checkpoint's bytes, one decoder block's fp32 weights, its
# Hessians (fp32 K x K for each distinct linear input) and the calibration
# activations (two streams of samples x tokens x hidden fp32). Writes
# bench/memory/results.json and prints the README's table.
#
# Environment: QC_BUILD_DIR (default build), QC_BENCH_VENV (default
# build/bench-venv; numpy from PyPI), QC_BENCH_WORK (default
# build/bench-memory; the checkpoints are kept there and reused while the
# generator is unchanged).
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
bin="$build/bin"
venv="${QC_BENCH_VENV:-$build/bench-venv}"
work="${QC_BENCH_WORK:-$build/bench-memory}"
cd "$root"
shared="../shared"
text="$shared/data/tinystories/train_head.txt"
tokenizer="$shared/models/smollm2-135m/tokenizer.json"
out="$root/bench/memory/results.json"

[ -x "$bin/quant-compile" ] || { echo "bench-memory: $bin/quant-compile missing; run scripts/setup.sh" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-memory: /usr/bin/time missing (apt install time)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q numpy
py="$venv/bin/python"
mkdir -p "$work"

# A checkpoint is regenerated when the generator changed.
stamp="$(sha256sum bench/memory/make_checkpoint.py | cut -c1-16)"
checkpoint() { # layers -> folder
  local dir="$work/llama3-8b-shape-$1L"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$dir"
    "$py" bench/memory/make_checkpoint.py "$dir" --layers "$1" >&2
    echo "$stamp" > "$dir/.stamp"
  fi
  echo "$dir"
}

cat > "$work/rtn.json" <<'EOF'
{"method": "rtn", "bits": 4, "group_size": 128, "sym": false}
EOF
cat > "$work/gptq.json" <<'EOF'
{"method": "gptq", "bits": 4, "group_size": 128, "sym": false,
 "calibration": {"window": 255, "max_tokens": 2048, "samples": 8}}
EOF

run() { # name layers recipe [extra args...]
  local name="$1" layers="$2" recipe="$3"
  shift 3
  local model
  model="$(checkpoint "$layers")"
  echo "bench-memory: $name" >&2
  sync
  /usr/bin/time -v -o "$work/$name.time" "$bin/quant-compile" "$model" \
    --recipe "$recipe" -o "$work/$name.out" --force --no-progress "$@" \
    > "$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; exit 1; }
  tail -1 "$work/$name.log" >&2
}

run rtn-4L 4 "$work/rtn.json"
run gptq-4L 4 "$work/gptq.json" --calib "$text" --tokenizer "$tokenizer"
run rtn-32L 32 "$work/rtn.json"

"$py" - "$work" "$out" <<'EOF'
import json, os, platform, re, subprocess, sys
work, out = sys.argv[1], sys.argv[2]
D, F, V, Q, KV = 4096, 14336, 128256, 4096, 1024
block_params = D * Q + 2 * D * KV + Q * D + 3 * D * F + 2 * D
samples, tokens = 8, 256
sizes = {
    "block_fp32_bytes": 4 * block_params,
    # GPTQ's Hessians of one block: q/k/v share their input, gate/up too.
    "block_hessians_fp32_bytes": 4 * (3 * D * D + F * F),
    # The float and the quantized stream of the sampled windows.
    "calibration_activation_bytes": 2 * 4 * samples * tokens * D,
}
sizes["target_gptq_bytes"] = int(1.5 * sum(sizes.values()))

def time_v(name):
    t = open(os.path.join(work, name + ".time")).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", t).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return rss, secs

def folder_bytes(layers):
    d = os.path.join(work, f"llama3-8b-shape-{layers}L")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f.endswith(".safetensors"))

runs = []
for name, layers, method in [("rtn-4L", 4, "rtn"), ("gptq-4L", 4, "gptq"),
                             ("rtn-32L", 32, "rtn")]:
    rss, secs = time_v(name)
    report = json.load(open(os.path.join(work, name + ".out", "report.json")))
    runs.append({"name": name, "layers": layers, "method": method,
                 "recipe": report["recipe"],
                 "checkpoint_bytes": folder_bytes(layers),
                 "peak_rss_bytes": rss, "wall_seconds": round(secs, 2),
                 "quantization_seconds": round(report["quantization_seconds"], 2),
                 "layers_quantized": len(report["layers"])})

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                        capture_output=True, text=True).stdout.strip()
result = {"benchmark": "scripts/bench-memory.sh", "commit": commit,
          "machine": {"cpu": cpu, "cores": os.cpu_count(),
                      "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")},
          "shapes": "Llama-3-8B (hidden 4096, MLP 14336, 32/8 heads of 128, vocabulary 128256, untied)",
          "sizes": sizes, "runs": runs}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)

gib = lambda b: f"{b / 2**30:.2f} GiB"
print("| run | checkpoint (bf16) | peak RSS | wall time |")
print("|---|---:|---:|---:|")
for r in runs:
    print(f"| {r['name']} ({r['layers_quantized']} linears) | {gib(r['checkpoint_bytes'])} | "
          f"{gib(r['peak_rss_bytes'])} | {r['wall_seconds']:.0f} s |")
print(f"\nGPTQ target (1.5 x (block {gib(sizes['block_fp32_bytes'])} + Hessians "
      f"{gib(sizes['block_hessians_fp32_bytes'])} + activations "
      f"{gib(sizes['calibration_activation_bytes'])})): {gib(sizes['target_gptq_bytes'])}")
EOF
