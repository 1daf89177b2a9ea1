#!/usr/bin/env python3
#===- scripts/interop/foreign_eval.py - Perplexity in the foreign tools ---===#
#
# Part of the qc project. MIT licence.
#
# Scores the exports that scripts/interop-check.sh wrote with the tools users
# run -- llama-cpp-python for GGUF, transformers (+ GPTQModel) for GPTQ,
# transformers + compressed-tensors for pack-quantized -- on exactly the
# token ids and protocol qc used (quant-run --bos none --ctx C --max-tokens
# M: non-overlapping windows of C tokens, no BOS, every token after the
# first of a window scored), and writes the comparison as JSON. A benchmark
# helper, not part of CI.
#
#===----------------------------------------------------------------------===#
import argparse
import json
import math
import sys
import traceback


def windows(ids, ctx, max_tokens):
    ids = ids[:max_tokens] if max_tokens else ids
    return [ids[i:i + ctx] for i in range(0, len(ids), ctx) if len(ids[i:i + ctx]) > 1]


def nll_from_logits(logits, window):
    """Sum of -log p(window[i + 1] | window[:i + 1]) from [T, V] logits."""
    import numpy as np
    x = np.asarray(logits, dtype=np.float64)[: len(window) - 1]
    x = x - x.max(axis=1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return -float(sum(logp[i, window[i + 1]] for i in range(len(window) - 1)))


def eval_gguf(path, wins, threads):
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=max(len(w) for w in wins), logits_all=True,
                verbose=False, n_threads=threads, n_batch=512)
    total, count = 0.0, 0
    for w in wins:
        llm.reset()
        llm.eval(w)
        total += nll_from_logits(llm.scores[: len(w)], w)
        count += len(w) - 1
    return total, count


def eval_hf(path, wins, compressed):
    import torch
    from transformers import AutoModelForCausalLM
    # float32 activations, as qc's CPU path computes.
    kwargs = {"device_map": "cpu", "dtype": torch.float32}
    if compressed:
        from transformers import CompressedTensorsConfig
        # The CPU has no pack-quantized kernels: decompress at load time.
        kwargs["quantization_config"] = CompressedTensorsConfig(run_compressed=False)
    else:
        from transformers import GPTQConfig
        # A loading option, not a change to the files: GPTQModel's pure
        # PyTorch kernel (TorchLinear). Its default CPU kernel
        # (TorchCpuAvx512Linear) needs in_features % group_size == 0, which
        # stories260K's down projection (K = 172) does not meet.
        bits = json.load(open(path + "/config.json"))["quantization_config"]["bits"]
        kwargs["quantization_config"] = GPTQConfig(bits=bits, backend="torch")
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for w in wins:
            out = model(torch.tensor([w]))
            total += nll_from_logits(out.logits[0].float().numpy(), w)
            count += len(w) - 1
    return total, count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("manifest", help="JSON list written by interop-check.sh")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--root", default=None,
                   help="paths in the results are written relative to this")
    a = p.parse_args()
    entries = json.load(open(a.manifest))
    results = []
    for e in entries:
        r = dict(e)
        ids = json.load(open(e["ids"]))["ids"]
        wins = windows(ids, e["ctx"], e["max_tokens"])
        try:
            if e["format"] == "gguf":
                total, count = eval_gguf(e["path"], wins, a.threads)
                r["foreign_tool"] = "llama-cpp-python"
            elif e["format"] == "gptq":
                total, count = eval_hf(e["path"], wins, False)
                r["foreign_tool"] = "transformers+optimum+gptqmodel (backend torch)"
            elif e["format"] == "compressed-tensors":
                total, count = eval_hf(e["path"], wins, True)
                r["foreign_tool"] = "transformers+compressed-tensors"
            else:
                raise ValueError("unknown format " + e["format"])
            r["foreign_ppl"] = math.exp(total / count)
            r["foreign_tokens"] = count
            qc = json.load(open(e["qc_json"]))["perplexity"]
            r["qc_ppl"] = qc["perplexity"]
            r["qc_tokens"] = qc["scored_tokens"]
            r["rel_diff"] = abs(r["foreign_ppl"] - r["qc_ppl"]) / r["qc_ppl"]
        except Exception as exc:  # record and go on: one tool missing is a row
            r["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        print(json.dumps({k: r.get(k) for k in ("name", "format", "qc_ppl", "foreign_ppl",
                                                 "rel_diff", "error")}), flush=True)
        if a.root:  # the committed results name no machine path
            import os
            for k in ("path", "ids", "qc_json"):
                r[k] = os.path.relpath(r[k], a.root)
        results.append(r)
    from importlib import metadata
    versions = {}
    for dist in ("torch", "transformers", "optimum", "gptqmodel",
                 "compressed-tensors", "llama_cpp_python"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # not installed: no version
            versions[dist] = None
    json.dump({"tool_versions": versions, "results": results},
              open(a.output, "w"), indent=1)
    print_table(results, versions)
    return 0


def print_table(results, versions):
    """The README's table (markdown) of `results`."""
    names = {"stories": "stories260K", "smollm2": "SmolLM2-135M"}
    methods = {"rtn": "RTN", "gptq": "GPTQ", "gptq-act": "GPTQ act-order"}
    formats = {"gptq": "GPTQ", "gguf": "GGUF (Q4_1)",
               "compressed-tensors": "compressed-tensors"}
    tools = {"gptq": "transformers + GPTQModel",
             "gguf": "llama.cpp (llama-cpp-python)",
             "compressed-tensors": "transformers + compressed-tensors"}
    print("| model | method | format | loaded by | qc | foreign tool | difference |")
    print("|---|---|---|---|---:|---:|---:|")
    for r in results:
        model, method, _ = r["name"].split(".")
        f = r["format"]
        head = f"| {names.get(model, model)} | {methods.get(method, method)} | {formats[f]} | {tools[f]} |"
        if r.get("error"):
            print(head + " | failed: " + r["error"].splitlines()[0][:60] + " | |")
        else:
            print(head + f" {r['qc_ppl']:.4f} | {r['foreign_ppl']:.4f} | {100 * r['rel_diff']:.3f} % |")
    print()
    print("Perplexities. Tools: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")


if __name__ == "__main__":
    sys.exit(main())
