#!/usr/bin/env python3
#===- bench/memory/make_checkpoint.py - A Llama-3-8B-shaped checkpoint ---===#
#
# Part of the qc project. MIT licence.
#
# Writes a Hugging Face folder with the shapes of Llama-3-8B (hidden 4096,
# MLP 14336, 32 heads / 8 KV heads of 128, vocabulary 128256, untied head)
# and N decoder layers of random bf16 weights: normal(0, 0.02) for the
# matrices, 1 + normal(0, 0.02) for the norms, from a fixed seed. One
# safetensors shard per decoder layer plus one for the embedding, the final
# norm and the head, and the index transformers writes. Memory stays at a
# few hundred MB whatever N is: tensors are produced and written in slices.
#
#   make_checkpoint.py OUT_DIR --layers N [--seed S]
#
# Only numpy is needed (the safetensors layout is written directly).
#
#===------------------------------------------------------------------------===#
import argparse
import json
import os
import struct

import numpy as np

HIDDEN, MLP, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 4096, 14336, 32, 8, 128, 128256
SLICE_ROWS = 8192  # rows produced at a time (8192 x 14336 x 4 B = 470 MB)


def layer_tensors(i):
    p = f"model.layers.{i}."
    return [
        (p + "input_layernorm.weight", (HIDDEN,), "norm"),
        (p + "self_attn.q_proj.weight", (HEADS * HEAD_DIM, HIDDEN), "w"),
        (p + "self_attn.k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "w"),
        (p + "self_attn.v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "w"),
        (p + "self_attn.o_proj.weight", (HIDDEN, HEADS * HEAD_DIM), "w"),
        (p + "post_attention_layernorm.weight", (HIDDEN,), "norm"),
        (p + "mlp.gate_proj.weight", (MLP, HIDDEN), "w"),
        (p + "mlp.up_proj.weight", (MLP, HIDDEN), "w"),
        (p + "mlp.down_proj.weight", (HIDDEN, MLP), "w"),
    ]


def to_bf16(x):
    """fp32 -> bf16 bits, rounded to nearest even (values are finite)."""
    bits = x.view(np.uint32)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype("<u2")


def write_shard(path, tensors, rng):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in tensors:
        nbytes = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, kind in tensors:
            rows = shape[0]
            cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            for r in range(0, rows, SLICE_ROWS):
                n = min(SLICE_ROWS, rows - r)
                x = rng.standard_normal((n, cols), dtype=np.float32)
                x *= np.float32(0.02)
                if kind == "norm":
                    x += np.float32(1.0)
                f.write(to_bf16(x).tobytes())
    os.replace(tmp, path)
    return offset


def main():
    ap = argparse.ArgumentParser(
        description="Writes a Llama-3-8B-shaped checkpoint of random bf16 weights.")
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    shards = [layer_tensors(i) for i in range(args.layers)]
    shards.append([("model.embed_tokens.weight", (VOCAB, HIDDEN), "w"),
                   ("model.norm.weight", (HIDDEN,), "norm"),
                   ("lm_head.weight", (VOCAB, HIDDEN), "w")])
    weight_map, total = {}, 0
    for k, tensors in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        # One stream per shard: a shard's values do not depend on N.
        rng = np.random.default_rng([args.seed, k if k < args.layers else 1 << 20])
        total += write_shard(os.path.join(args.out, name), tensors, rng)
        for t in tensors:
            weight_map[t[0]] = name
        print(f"{name}: {len(tensors)} tensors", flush=True)
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map},
                  f, indent=2)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": HIDDEN, "intermediate_size": MLP,
        "num_hidden_layers": args.layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "vocab_size": VOCAB, "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "rope_scaling": None,
        "tie_word_embeddings": False, "hidden_act": "silu",
        "attention_bias": False, "bos_token_id": 128000,
        "eos_token_id": 128001, "torch_dtype": "bfloat16",
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"{args.out}: {args.layers} layers, {total / 2**30:.2f} GiB of bf16")


if __name__ == "__main__":
    main()
