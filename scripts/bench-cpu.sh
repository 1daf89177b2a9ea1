#!/usr/bin/env bash
#===- scripts/bench-cpu.sh - qc's CPU path beside llama.cpp and PyTorch --===#
#
# Part of the qc project. MIT licence.
#
# A benchmark, not CI: run it on an otherwise idle machine. SmolLM2-135M,
# the same machine, the same run, the same token ids, 2 threads each:
#
#   prefill   tokens/s evaluating a 512-token prompt (median of 5)
#   decode    tokens/s of 128 greedy steps after that prompt (median of 5)
#   ppl       wall time scoring tokens [0, 16384) of valid_head.txt in
#             non-overlapping windows of 512 (no BOS), and its perplexity
#   RSS       peak resident memory of the ppl run
#   compile   qc's load + compile before the first token: cold (an empty
#             compiled-code cache, the first generation run) and warm (the
#             machine code from the cache, median of the other runs)
#
# for qc (quant-run on the bundled GGUF, whose Q4_1 weights qc imports as
# fp32; and on RTN W4 g32 and W4 g128 asym models from quant-compile, whose
# packed weights its kernels read; in all three, decode reads the GGUF's
# tied Q8_0 classifier in its 8-bit blocks), llama.cpp (llama-cpp-python
# from PyPI, the bundled Q4_1 GGUF, and an F32 GGUF of the same weights
# dequantized, written with the gguf package by
# bench/quality/llamacpp_quants.py) and transformers (PyTorch CPU, fp32,
# the Hugging Face folder qc exports from the same GGUF, so the same
# weights). Also the host's streaming-copy bandwidth, against which decode
# is judged. Writes bench/cpu/results.json and prints the README's table.
#
# Environment: QC_BUILD_DIR (default build), QC_BENCH_VENV (default
# build/bench-venv; created from PyPI), QC_BENCH_WORK (default
# build/bench-cpu), BENCH_THREADS (2), BENCH_REPEAT (5).
#
#===------------------------------------------------------------------------===#
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${QC_BUILD_DIR:-$root/build}"
bin="$build/bin"
venv="${QC_BENCH_VENV:-$build/bench-venv}"
work="${QC_BENCH_WORK:-$build/bench-cpu}"
threads="${BENCH_THREADS:-2}"
repeat="${BENCH_REPEAT:-5}"
prompt_tokens=512
generate=128
ppl_tokens=16384
ctx=512
# Relative paths, so that the results file names no machine path.
cd "$root"
shared="../shared"
gguf="$shared/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"
text="$shared/data/tinystories/valid_head.txt"
out="$root/bench/cpu/results.json"

for t in quant-import quant-run quant-compile quant-tokenize; do
  [ -x "$bin/$t" ] || { echo "bench-cpu: $bin/$t missing; run scripts/setup.sh" >&2; exit 1; }
done
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$venv/bin/pip" install -q numpy llama-cpp-python
"$venv/bin/pip" install -q torch transformers "gguf==0.19.0"
py="$venv/bin/python"
mkdir -p "$work"

echo "bench-cpu: preparing inputs" >&2
# The same weights for transformers: the GGUF's tensors as an fp32 folder.
[ -f "$work/smollm2-hf/config.json" ] ||
  "$bin/quant-import" "$gguf" --export-hf "$work/smollm2-hf" --force > /dev/null
# The same weights as an F32 GGUF for llama.cpp's float path.
[ -f "$work/smollm2-f32.gguf" ] ||
  "$py" -c 'import sys; sys.path.insert(0, sys.argv[1]); import llamacpp_quants as q; q.write_f32(sys.argv[2], sys.argv[3])' \
    "$root/bench/quality" "$gguf" "$work/smollm2-f32.gguf"
# W4 g32 and g128 asym packed weights (RTN: the method does not change the
# speed).
for group in 32 128; do
  if [ ! -f "$work/smollm2-w4g$group/model.mlir" ]; then
    echo "{\"method\": \"rtn\", \"bits\": 4, \"group_size\": $group, \"sym\": false}" \
      > "$work/rtn-g$group.json"
    "$bin/quant-compile" "$gguf" --recipe "$work/rtn-g$group.json" --no-progress \
      -o "$work/smollm2-w4g$group" > /dev/null
  fi
done
"$bin/quant-tokenize" "$gguf" --file "$text" --no-add-special --json > "$work/text.ids.json"
# A prompt of exactly $prompt_tokens tokens: the longest prefix of the text
# (whole characters) that tokenizes to that many.
"$py" - "$bin/quant-tokenize" "$gguf" "$text" "$prompt_tokens" "$work" <<'PY'
import json, subprocess, sys
tool, model, path, want, work = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
text = open(path, encoding="utf-8").read()
def count(s):
    r = subprocess.run([tool, model, "--text", s, "--no-add-special", "--json"],
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout)
lo, hi = 1, want * 16
while lo < hi:  # largest prefix with <= want tokens
    mid = (lo + hi + 1) // 2
    if count(text[:mid])["count"] <= want:
        lo = mid
    else:
        hi = mid - 1
while count(text[:lo])["count"] < want:
    lo += 1
ids = count(text[:lo])
if ids["count"] != want:
    sys.exit(f"bench-cpu: no prefix of {path} tokenizes to exactly {want} tokens")
open(f"{work}/prompt.txt", "w", encoding="utf-8").write(text[:lo])
json.dump(ids, open(f"{work}/prompt.ids.json", "w"))
PY
prompt="$(cat "$work/prompt.txt")"

# qc's compiled-code cache, emptied before each model: its first run
# compiles, the others load the cached machine code.
jit_cache="$work/jit-cache"
qc_generate() { # model -> one line per run:
  # "prompt_tokens prefill_s generated_tokens generation_s compile_s"
  local model="$1"
  rm -rf "$jit_cache"
  for _ in $(seq "$repeat"); do
    "$bin/quant-run" "$model" --prompt "$prompt" --generate $((generate + 1)) --ignore-eos \
      --no-progress --num-threads "$threads" --cache-dir "$jit_cache" 2>&1 |
      awk '/loaded and compiled in/ { for (i = 1; i < NF; i++) if ($i == "in") c = $(i + 1) }
           /^speed: prefill/ { p = $3; ps = $6; g = $11; gs = $14 }
           END { if (p != "") print p, ps, g, gs, c }'
  done
}
qc_ppl() { # model json
  /usr/bin/time -f '%M' -o "$2.rss" "$bin/quant-run" "$1" --ppl "$text" --ctx "$ctx" --bos none \
    --max-tokens "$ppl_tokens" --no-progress --num-threads "$threads" --json "$2" \
    --cache-dir "$jit_cache" > /dev/null
}
qc_model() { # name model
  local name="$1" model="$2"
  echo "bench-cpu: qc $name" >&2
  qc_generate "$model" > "$work/qc-$name.gen"
  local start end
  start=$(date +%s.%N)
  qc_ppl "$model" "$work/qc-$name.ppl.json"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }' > "$work/qc-$name.ppl.total"
}
qc_model fp32 "$gguf"
qc_model w4g32 "$work/smollm2-w4g32/model.mlir"
qc_model w4g128 "$work/smollm2-w4g128/model.mlir"

peer() { # tool label what model ids -> json file
  local tool="$1" label="$2" what="$3" model="$4" ids="$5"
  echo "bench-cpu: $label $what" >&2
  "$py" "$root/bench/cpu/peers.py" --tool "$tool" --what "$what" --model "$model" --ids "$ids" \
    --threads "$threads" --prompt "$prompt_tokens" --generate "$generate" --repeat "$repeat" \
    --ctx "$ctx" --tokens "$ppl_tokens" > "$work/$label-$what.json"
}
for what in prefill decode; do
  peer llama.cpp llama.cpp "$what" "$gguf" "$work/prompt.ids.json"
  peer llama.cpp llama.cpp-f32 "$what" "$work/smollm2-f32.gguf" "$work/prompt.ids.json"
  peer transformers transformers "$what" "$work/smollm2-hf" "$work/prompt.ids.json"
done
peer llama.cpp llama.cpp ppl "$gguf" "$work/text.ids.json"
peer llama.cpp llama.cpp-f32 ppl "$work/smollm2-f32.gguf" "$work/text.ids.json"
peer transformers transformers ppl "$work/smollm2-hf" "$work/text.ids.json"
"$py" "$root/bench/cpu/peers.py" --tool none --what copy > "$work/copy.json"

"$py" - "$work" "$out" "$threads" "$(git -C "$root" rev-parse --short HEAD)" \
  "$prompt_tokens" "$generate" "$ppl_tokens" "$ctx" "$repeat" <<'PY'
import json, os, statistics, sys, datetime
work, out, commit = sys.argv[1], sys.argv[2], sys.argv[4]
threads, prompt, generate, ppl_tokens, ctx, repeat = map(int, sys.argv[3:4] + sys.argv[5:10])
def load(name):
    with open(os.path.join(work, name)) as f:
        return json.load(f)
flags = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        wanted = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16")
        flags = " ".join(f for f in line.split(":")[1].split() if f in wanted)
        break
cpu = next((l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rows = {}
for name in ("fp32", "w4g32", "w4g128"):
    runs = [l.split() for l in open(os.path.join(work, f"qc-{name}.gen")) if l.strip()]
    if not runs:
        sys.exit(f"bench-cpu: quant-run printed no speed line for {name}")
    prefill = [int(r[0]) / float(r[1]) for r in runs]
    decode = [int(r[2]) / float(r[3]) for r in runs]
    compile_runs = [float(r[4]) for r in runs]
    ppl = load(f"qc-{name}.ppl.json")["perplexity"]
    rss = int(open(os.path.join(work, f"qc-{name}.ppl.json.rss")).read().split()[-1]) * 1024
    rows[f"qc {name}"] = {
        "prefill_tok_s": statistics.median(prefill), "prefill_runs": prefill,
        "prompt_tokens": int(runs[0][0]),
        "decode_tok_s": statistics.median(decode), "decode_runs": decode,
        "decode_tokens": int(runs[0][2]),
        "load_compile_cold_s": compile_runs[0],
        "load_compile_warm_s": statistics.median(compile_runs[1:]) if len(compile_runs) > 1 else None,
        "load_compile_runs": compile_runs,
        "ppl_seconds": ppl["seconds"],
        "ppl_command_seconds": float(open(os.path.join(work, f"qc-{name}.ppl.total")).read()),
        "perplexity": ppl["perplexity"], "scored_tokens": ppl["scored_tokens"],
        "peak_rss_bytes": rss,
    }
for tool, label in (("llama.cpp", "llama.cpp Q4_1"), ("llama.cpp-f32", "llama.cpp F32"),
                    ("transformers", "transformers fp32")):
    pre, dec, ppl = load(f"{tool}-prefill.json"), load(f"{tool}-decode.json"), load(f"{tool}-ppl.json")
    prefill = [prompt / s for s in pre["seconds"]]
    decode = [1 / s for s in dec["seconds_per_token"]]
    rows[label] = {
        "prefill_tok_s": statistics.median(prefill), "prefill_runs": prefill,
        "decode_tok_s": statistics.median(decode), "decode_runs": decode,
        "ppl_seconds": ppl["seconds"], "perplexity": ppl["perplexity"],
        "scored_tokens": ppl["scored_tokens"], "peak_rss_bytes": ppl["peak_rss_bytes"],
    }
copy = load("copy.json")
result = {
    "benchmark": "cpu-smollm2",
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "commit": commit,
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "flags": flags},
    "threads": threads,
    "protocol": {"prompt_tokens": prompt, "decode_tokens": generate,
                 "repeats": f"median of {repeat}",
                 "ppl": f"tokens [0, {ppl_tokens}) of valid_head.txt, windows of {ctx}, no BOS"},
    "copy_bandwidth_gb_s": copy["gb_per_s"],
    "rows": rows,
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
ref = rows["llama.cpp Q4_1"]
print(f"{cpu}, {os.cpu_count()} cores ({flags}); {threads} threads; streaming copy {copy['gb_per_s']:.1f} GB/s")
print(f"| tool | prefill {prompt} (tok/s) | decode after {prompt} (tok/s) | ppl {ppl_tokens:,} tokens (s) | perplexity | peak RSS (MB) |")
print("|---|---|---|---|---|---|")
for name, r in rows.items():
    print(f"| {name} | {r['prefill_tok_s']:.1f} ({r['prefill_tok_s'] / ref['prefill_tok_s']:.2f}x) "
          f"| {r['decode_tok_s']:.1f} ({r['decode_tok_s'] / ref['decode_tok_s']:.2f}x) "
          f"| {r['ppl_seconds']:.1f} | {r['perplexity']:.4f} | {r['peak_rss_bytes'] / 1e6:.0f} |")
for name, r in rows.items():
    if "load_compile_cold_s" in r:
        warm = r["load_compile_warm_s"]
        print(f"{name}: load + compile {r['load_compile_cold_s']:.2f} s cold, "
              + (f"{warm:.2f} s from the compiled-code cache" if warm is not None else "no warm run"))
PY
