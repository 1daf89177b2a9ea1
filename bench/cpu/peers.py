#!/usr/bin/env python3
# ===- bench/cpu/peers.py - The tools users would pick instead, timed -----===#
#
# Part of the qc project. MIT licence.
#
# Called by scripts/bench-cpu.sh with the same token ids qc is given (from
# quant-tokenize), so that every tool runs the same work. One measurement per
# process (--what), so that each peak RSS is that measurement's own:
#
#   prefill  seconds to evaluate the first --prompt tokens, repeated --repeat
#            times (each from an empty cache)
#   decode   seconds per token of --generate greedy steps after that prompt
#   ppl      negative log-likelihood of non-overlapping windows of --ctx
#            tokens (no BOS) over the first --tokens ids, and the time the
#            tool spent evaluating them
#   copy     the host's streaming bandwidth (a large numpy copy)
#
# Prints one JSON object.
# ===----------------------------------------------------------------------===#

import argparse
import json
import math
import resource
import statistics
import sys
import time


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def score_windows(args, ids, run, logits_of):
    """Perplexity over non-overlapping windows of --ctx of the first --tokens
    ids. Timed: run(window), the tool evaluating the window; not timed:
    logits_of(result, window) -> float64 [len(window), V] and the
    log-softmax in numpy (far slower than the tools)."""
    import numpy as np

    nll, count, seconds = 0.0, 0, 0.0
    for begin in range(0, args.tokens - 1, args.ctx):
        window = ids[begin : min(begin + args.ctx, args.tokens)]
        if len(window) < 2:
            break
        start = time.perf_counter()
        result = run(window)
        seconds += time.perf_counter() - start
        logits = logits_of(result, window)
        m = logits.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(logits - m).sum(axis=1)))[:-1]
        nll += float((lse - logits[np.arange(len(window) - 1), window[1:]]).sum())
        count += len(window) - 1
    return {"seconds": seconds, "perplexity": math.exp(nll / count), "scored_tokens": count}


def llama_cpp(args, ids):
    import llama_cpp
    import numpy as np

    # Decode reads the last position's logits from `scores`, which without
    # logits_all holds only one batch of rows; the extra rows of the prompt
    # are outside the timed steps.
    need_logits = args.what in ("ppl", "decode")
    model = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=max(args.ctx, args.prompt + args.generate + 8),
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=need_logits,
        verbose=False,
    )
    out = {}
    if args.what == "prefill":
        times = []
        for _ in range(args.repeat):
            model.reset()
            start = time.perf_counter()
            model.eval(ids[: args.prompt])
            times.append(time.perf_counter() - start)
        out["seconds"] = times
    elif args.what == "decode":
        times = []
        for _ in range(args.repeat):
            model.reset()
            model.eval(ids[: args.prompt])
            step = []
            for _ in range(args.generate):
                token = int(np.argmax(model.scores[model.n_tokens - 1]))
                start = time.perf_counter()
                model.eval([token])
                step.append(time.perf_counter() - start)
            times.append(sum(step) / len(step))
        out["seconds_per_token"] = times
    elif args.what == "ppl":
        def run(window):
            model.reset()
            model.eval(window)

        out.update(score_windows(
            args, ids, run,
            lambda _, window: np.asarray(model.scores[: len(window)], dtype=np.float64)))
    return out


def transformers_cpu(args, ids):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.eval()
    out = {}
    with torch.inference_mode():
        if args.what == "prefill":
            x = torch.tensor([ids[: args.prompt]])
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                model(x, use_cache=True)
                times.append(time.perf_counter() - start)
            out["seconds"] = times
        elif args.what == "decode":
            times = []
            for _ in range(args.repeat):
                res = model(torch.tensor([ids[: args.prompt]]), use_cache=True)
                past, logits = res.past_key_values, res.logits
                step = []
                for _ in range(args.generate):
                    token = logits[0, -1].argmax().view(1, 1)
                    start = time.perf_counter()
                    res = model(token, past_key_values=past, use_cache=True)
                    step.append(time.perf_counter() - start)
                    past, logits = res.past_key_values, res.logits
                times.append(sum(step) / len(step))
            out["seconds_per_token"] = times
        elif args.what == "ppl":
            out.update(score_windows(
                args, ids,
                lambda window: model(torch.tensor([window]), use_cache=False).logits[0],
                lambda logits, _: logits.double().numpy()))
    return out


def copy_bandwidth(args):
    import numpy as np

    src = np.ones(256 * 1024 * 1024 // 4, dtype=np.float32)  # 256 MiB
    dst = np.empty_like(src)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    # A copy reads and writes every byte.
    return {"bytes_moved": 2 * src.nbytes, "seconds": times,
            "gb_per_s": 2 * src.nbytes / statistics.median(times) / 1e9}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tool", choices=["llama.cpp", "transformers", "none"], required=True)
    p.add_argument("--what", choices=["prefill", "decode", "ppl", "copy"], required=True)
    p.add_argument("--model", default="")
    p.add_argument("--ids", default="", help="JSON file holding a list of token ids")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt", type=int, default=512)
    p.add_argument("--generate", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--ctx", type=int, default=512)
    p.add_argument("--tokens", type=int, default=16384)
    args = p.parse_args()
    if args.what == "copy":
        result = copy_bandwidth(args)
    else:
        with open(args.ids) as f:
            ids = json.load(f)
        if isinstance(ids, dict):
            ids = ids["ids"]
        result = (llama_cpp if args.tool == "llama.cpp" else transformers_cpu)(args, ids)
    result["peak_rss_bytes"] = peak_rss_bytes()
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
