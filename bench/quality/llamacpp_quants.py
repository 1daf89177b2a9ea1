#!/usr/bin/env python3
# ===- bench/quality/llamacpp_quants.py - llama.cpp's quantizers as peers ---===#
#
# Part of the qc project. MIT licence.
#
# For the SmolLM2 quality table: writes the float reference (the bundled
# GGUF's weights dequantized to F32, metadata and tokenizer copied) as an F32
# GGUF, then quantizes it with llama.cpp's own quantizer (llama-cpp-python's
# llama_model_quantize, no importance matrix) to the requested types, and
# prints one JSON object per output with its bits per weight over the
# decoder's linear weights (the tensors qc's methods quantize).
#
# Usage: llamacpp_quants.py SRC.gguf OUTDIR TYPE...   (TYPE: Q4_0 Q4_K_M ...)
# ===------------------------------------------------------------------------===#
import ctypes
import json
import os
import re
import sys

import numpy as np
import gguf
import llama_cpp

# llama.h's llama_ftype values.
FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
          "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15,
          "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18}
LINEAR = re.compile(r"^blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$")


def write_f32(src, dst):
    """The source GGUF with every tensor dequantized to F32."""
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"]
    arch = bytes(arch.parts[arch.data[0]]).decode()
    writer = gguf.GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture",
                                                 "general.file_type"):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(field.parts[i]).decode("utf-8", "surrogateescape")
                       for i in field.data]
            else:
                val = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_key_value(name, val, vtype, sub_type=sub)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_key_value(name, bytes(field.parts[field.data[0]]).decode(),
                                 vtype)
        else:
            writer.add_key_value(name, field.parts[field.data[0]].tolist()[0], vtype)
    writer.add_file_type(0)  # ALL_F32
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data.reshape([int(d) for d in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def linear_bpw(path):
    """Bits per weight over the decoder's linear weights."""
    reader = gguf.GGUFReader(path)
    bits = 0
    count = 0
    for t in reader.tensors:
        if LINEAR.match(t.name):
            bits += int(t.n_bytes) * 8
            count += int(t.n_elements)
    return bits / count


def main():
    src, outdir, types = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(outdir, exist_ok=True)
    f32 = os.path.join(outdir, "float-f32.gguf")
    if not os.path.exists(f32):
        write_f32(src, f32)
    for name in types:
        dst = os.path.join(outdir, f"llamacpp-{name}.gguf")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[name]
        params.nthread = os.cpu_count() or 1
        rc = llama_cpp.llama_model_quantize(f32.encode(), dst.encode(),
                                           ctypes.byref(params))
        if rc != 0:
            raise SystemExit(f"llama_model_quantize {name} failed ({rc})")
        print(json.dumps({"type": name, "path": dst, "bpw": linear_bpw(dst),
                          "llama_cpp_python": llama_cpp.__version__}))


if __name__ == "__main__":
    main()
