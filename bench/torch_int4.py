#!/usr/bin/env python3
# ===- bench/torch_int4.py - Time torch's int4 weight-only matmul ----------=== #
#
# Part of the qc project. MIT licence.
#
# THIS SCRIPT NEEDS A CUDA GPU AND PYTORCH. It has not been run: the machine
# it was written on has neither (no GPU, no torch). Run it on the GPU
# machine next to quant-bench (scripts/bench-kernels.sh does) to get a third
# anchor: torch's tinygemm kernel (torch.ops.aten._weight_int4pack_mm, what
# gpt-fast and torchao's int4 weight-only use) on the same shapes and batch
# sizes, measured the same way as quant-bench (PERF.md section 4):
#
# - weights rotated through > 256 MB of copies so L2 is cold,
# - a CUDA graph of L launches replayed --warmup times, then --reps times
#   between CUDA events; the sample is graph time / L, the result the median,
# - every configuration verified before timing against a float64 reference
#   of the same dequantized weights (output poisoned with NaN first).
#
# tinygemm's format: codes packed two per byte ([N, K/2] uint8, the even k in
# the high nibble, as torchao packs them) then repacked by
# torch._convert_weight_to_int4pack(w, inner_k_tiles); bf16 activations;
# scales_and_zeros bf16 [K/G, N, 2] with w = (q - 8) * scale + zero. If a
# torch version changes any of this, the verification fails loudly rather
# than reporting a time for a wrong result.
#
#   python3 bench/torch_int4.py --shapes 4096x4096,4096x11008 --json out.json
#
# ===----------------------------------------------------------------------=== #

import argparse
import datetime
import json
import math
import os
import sys

SHAPES = ("4096x4096,4096x11008,11008x4096,4096x14336,14336x4096,"
          "8192x8192,8192x28672,28672x8192")
MS = "1,2,4,8,16,32,64,128,256"


def parse_args():
    ap = argparse.ArgumentParser(description="time torch's _weight_int4pack_mm")
    ap.add_argument("--shapes", default=SHAPES, help="NxK list (N = out features)")
    ap.add_argument("--m", default=MS, help="batch sizes")
    ap.add_argument("--group-size", type=int, default=128)
    ap.add_argument("--inner-k-tiles", type=int, default=8, choices=(2, 4, 8))
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rotate-mb", type=int, default=320)
    ap.add_argument("--max-rel-error", type=float, default=1e-2,
                    help="bf16 activations/outputs: looser than quant-bench's fp16")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write results here")
    return ap.parse_args()


def main():
    args = parse_args()
    try:
        import torch
    except ImportError:
        print("torch_int4.py: PyTorch is not installed", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print("torch_int4.py: no CUDA GPU visible to PyTorch: nothing to measure",
              file=sys.stderr)
        return 3
    dev = torch.device("cuda")
    torch.manual_seed(args.seed)
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    ms = [int(m) for m in args.m.split(",")]
    G = args.group_size

    def time_graph(fn, launches):
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):  # warm up allocations outside the graph
            for i in range(2):
                fn(i)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for i in range(launches):
                fn(i)
        for _ in range(args.warmup):
            g.replay()
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for _ in range(args.reps):
            start.record()
            g.replay()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop) * 1000.0 / launches)
        samples.sort()
        n = len(samples)
        return samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])

    rows = []
    for N, K in shapes:
        if K % G or K % (args.inner_k_tiles * 16) or N % 8:
            print(f"torch_int4.py: {N}x{K}: tinygemm needs N % 8 == 0, K % group == 0 "
                  f"and K % {args.inner_k_tiles * 16} == 0; skipped", file=sys.stderr)
            continue
        q = torch.randint(0, 16, (N, K), dtype=torch.int32, device=dev)
        scales = (torch.rand(K // G, N, device=dev) + 0.5) / (2.7 * math.sqrt(K))
        zeros = (torch.rand(K // G, N, device=dev) - 0.5) * 8 * scales
        scales, zeros = scales.to(torch.bfloat16), zeros.to(torch.bfloat16)
        sz = torch.stack([scales, zeros], dim=2).contiguous()  # [K/G, N, 2]
        w_u8 = ((q[:, ::2] << 4) | q[:, 1::2]).to(torch.uint8)
        packed = torch._convert_weight_to_int4pack(w_u8, args.inner_k_tiles)
        # The dequantized weights (float64 reference and cuBLAS baseline).
        s_full = scales.double().repeat_interleave(G, dim=0).t()  # [N, K]
        z_full = zeros.double().repeat_interleave(G, dim=0).t()
        w64 = (q.double() - 8) * s_full + z_full
        w16 = w64.to(torch.float16)
        per_copy = packed.numel() * packed.element_size() + sz.numel() * 2
        copies = max(2, -(-args.rotate_mb * 2**20 // per_copy))
        pk = [packed.clone() for _ in range(copies)]
        szs = [sz.clone() for _ in range(copies)]
        wcopies = max(2, -(-args.rotate_mb * 2**20 // (w16.numel() * 2)))
        ws = [w16.clone() for _ in range(wcopies)]
        L = copies * (-(-20 // copies))
        LW = wcopies * (-(-20 // wcopies))
        for M in ms:
            x = (torch.rand(M, K, device=dev) * 2 - 1).to(torch.bfloat16)
            ref = x.double() @ w64.t()
            out = torch.full((M, N), float("nan"), device=dev, dtype=torch.bfloat16)

            def int4(i, out=out, x=x):
                out.copy_(torch.ops.aten._weight_int4pack_mm(x, pk[i % copies], G,
                                                             szs[i % copies]))

            int4(0)
            torch.cuda.synchronize()
            rel = ((out.double() - ref).norm() / ref.norm()).item()
            x16 = x.to(torch.float16)
            out16 = torch.full((M, N), float("nan"), device=dev, dtype=torch.float16)

            def cublas(i, out16=out16, x16=x16):
                torch.matmul(x16, ws[i % wcopies].t(), out=out16)

            cublas(0)
            torch.cuda.synchronize()
            rel16 = ((out16.double() - ref).norm() / ref.norm()).item()
            ok = math.isfinite(rel) and rel <= args.max_rel_error
            row = {"layer": f"{N}x{K}", "N": N, "K": K, "M": M, "group_size": G,
                   "rel_error": {"torch_int4": rel, "cublas_fp16": rel16}, "ok": ok}
            if ok:
                row["torch_int4_us"] = time_graph(int4, L)
            else:
                row["failure"] = f"torch int4 rel. error {rel} > {args.max_rel_error}"
            row["cublas_fp16_us"] = time_graph(cublas, LW)
            if ok:
                row["speedup_vs_cublas"] = row["cublas_fp16_us"] / row["torch_int4_us"]
            rows.append(row)
            print(f"{N}x{K} M={M}: torch int4 {row.get('torch_int4_us', float('nan')):.2f} us, "
                  f"cuBLAS fp16 {row['cublas_fp16_us']:.2f} us, rel err {rel:.1e}"
                  + ("" if ok else "  FAILED VERIFICATION"))
    report = {
        "schema": "qc-bench-torch-int4", "schema_version": 1,
        "device": {"name": torch.cuda.get_device_name(),
                   "capability": list(torch.cuda.get_device_capability())},
        "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": vars(args), "rows": rows,
    }
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, args.json)
    return 0 if all(r["ok"] for r in rows) else 4


if __name__ == "__main__":
    sys.exit(main())
