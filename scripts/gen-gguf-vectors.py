#!/usr/bin/env python3
# ===- gen-gguf-vectors.py - Dequantization test vectors from gguf-py -----===#
#
# Part of the qc project. MIT licence.
#
# Writes the committed test vectors of runtime/test/GgmlQuantsTest.cpp: for
# each ggml type qc dequantizes, a run of random raw blocks (every fp16
# scale field replaced by a random *finite* fp16 bit pattern, subnormals and
# zero included; everything else uniformly random bytes) and the float32
# values the `gguf` Python package's `gguf.quants.dequantize` makes of them.
# The C++ test requires bit equality. A manifest records the package
# versions, the seed, and gguf-py's block geometry (GGML_QUANT_SIZES) of
# every type, which the test compares with qc's own table.
#
# Run it through scripts/gen-gguf-vectors.sh, which pins the packages.
#
# ===----------------------------------------------------------------------===#

import importlib.metadata
import json
import os
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

SEED = 20261205
ELEMENTS = 2048  # per type: 8 k-quant super-blocks, 64 blocks of 32

# Byte offsets of the fp16 fields (scales and mins) inside one block.
FP16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}


def finite_f16(rng, n):
    """n random finite fp16 bit patterns (no Inf/NaN), as uint16."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    inf_nan = (bits & 0x7C00) == 0x7C00
    bits[inf_nan] &= np.uint16(0xBFFF)  # clear the top exponent bit
    # A few exact zeros and subnormals on top of the uniform patterns.
    bits[::17] = 0
    bits[5::23] &= np.uint16(0x83FF)
    return bits


def raw_for(rng, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    n_blocks = ELEMENTS // block
    if qtype == T.F32:
        vals = rng.standard_normal(ELEMENTS).astype(np.float32)
        vals[::13] *= np.float32(1e30)
        vals[3::29] = np.float32(1e-42)  # subnormal
        return vals.view(np.uint8)
    if qtype in (T.F16, T.BF16):
        bits = rng.integers(0, 1 << 16, size=ELEMENTS, dtype=np.uint32).astype(np.uint16)
        mask = np.uint16(0x7C00 if qtype == T.F16 else 0x7F80)
        bad = (bits & mask) == mask
        bits[bad] &= ~np.uint16(0x4000)
        return bits.view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint32).astype(np.uint8)
    for off in FP16_FIELDS[qtype]:
        raw[:, off:off + 2] = finite_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    types = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1,
             T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
    entries = []
    for qtype in types:
        raw = raw_for(rng, qtype)
        out = gguf.quants.dequantize(raw.reshape(1, -1), qtype)
        out = np.ascontiguousarray(out, dtype=np.float32).reshape(-1)
        assert out.size == ELEMENTS, (qtype.name, out.size)
        assert np.all(np.isfinite(out)), qtype.name
        name = qtype.name
        with open(os.path.join(out_dir, name + ".in"), "wb") as f:
            f.write(raw.tobytes())
        with open(os.path.join(out_dir, name + ".out"), "wb") as f:
            f.write(out.astype("<f4").tobytes())
        entries.append({"type": name, "id": int(qtype), "elements": ELEMENTS,
                        "input": name + ".in", "expected": name + ".out"})
    sizes = [{"type": t.name, "id": int(t), "block_size": b, "type_size": s}
             for t, (b, s) in sorted(GGML_QUANT_SIZES.items(), key=lambda kv: int(kv[0]))]
    manifest = {
        "generator": "scripts/gen-gguf-vectors.py",
        "gguf_version": importlib.metadata.version("gguf"),
        "numpy_version": np.__version__,
        "seed": SEED,
        "vectors": entries,
        "quant_sizes": sizes,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
