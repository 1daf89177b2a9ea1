#!/usr/bin/env python3
# ===- scripts/plot-bench.py - Plot quant-bench results as SVG -------------=== #
#
# Part of the qc project. MIT licence.
#
# Reads the JSON written by `quant-bench --json` (schema "qc-bench-kernels")
# and draws the speedup of our fused kernel over cuBLAS FP16 against the
# batch size M, one line per layer shape (dotted: dequantize-then-cuBLAS,
# when measured). Rows whose verification failed are drawn as red crosses
# and never as valid points. Standard library only, so it runs anywhere
# the JSON lands.
#
#   scripts/plot-bench.py bench/results/h100-2026-11-23.json -o speedup.svg
#
# ===----------------------------------------------------------------------=== #

import argparse
import json
import math
import sys
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def fail(msg):
    print(f"plot-bench: {msg}", file=sys.stderr)
    sys.exit(1)


def finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(f"{path}: not JSON ({e})")
    if not isinstance(data, dict) or data.get("schema") != "qc-bench-kernels":
        fail(f"{path}: not a quant-bench kernel report (schema qc-bench-kernels)")
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        fail(f"{path}: no rows")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("layer"), str) \
                or not isinstance(r.get("M"), int) or r["M"] < 1:
            fail(f"{path}: row {i} lacks a layer name or a batch size M >= 1")
    return data


def series(rows):
    """layer -> sorted [(M, speedup, dequant_speedup, ok)]"""
    out = {}
    for r in rows:
        out.setdefault(r["layer"], []).append(
            (r["M"], r.get("speedup_vs_cublas"), r.get("dequant_speedup_vs_cublas"),
             bool(r.get("ok"))))
    for v in out.values():
        v.sort(key=lambda t: t[0])
    return out


def plot(data, width=960, height=540):
    s = series(data["rows"])
    ms = sorted({m for v in s.values() for (m, *_rest) in v})
    ys = [y for v in s.values() for (_, a, b, _ok) in v for y in (a, b) if finite(y)]
    ymax = max([1.2] + [y * 1.1 for y in ys])
    left, right, top, bottom = 70, 230, 60, 60
    pw, ph = width - left - right, height - top - bottom
    lo, hi = math.log2(ms[0]), math.log2(ms[-1])
    span = hi - lo if hi > lo else 1.0

    def X(m):
        return left + (math.log2(m) - lo) / span * pw if hi > lo else left + pw / 2

    def Y(v):
        return top + ph - v / ymax * ph

    dev = data.get("device", {}) if isinstance(data.get("device"), dict) else {}
    title = (f"speedup over cuBLAS FP16 vs batch size M - {dev.get('name', '?')}"
             f" ({dev.get('arch', '?')}), {data.get('date', '?')}")
    e = []
    e.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" '
             f'font-family="sans-serif" font-size="12">')
    e.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    e.append(f'<text x="{width / 2}" y="28" text-anchor="middle" '
             f'font-size="15">{escape(title)}</text>')
    # Axes, grid and ticks.
    e.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>')
    e.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>')
    for m in ms:
        e.append(f'<line x1="{X(m):.1f}" y1="{top + ph}" x2="{X(m):.1f}" '
                 f'y2="{top + ph + 5}" stroke="black"/>')
        e.append(f'<text x="{X(m):.1f}" y="{top + ph + 20}" text-anchor="middle">{m}</text>')
    step = 0.5 if ymax <= 4 else (1 if ymax <= 10 else 5)
    v = 0.0
    while v <= ymax:
        e.append(f'<line x1="{left}" y1="{Y(v):.1f}" x2="{left + pw}" y2="{Y(v):.1f}" '
                 f'stroke="#e0e0e0"/>')
        e.append(f'<text x="{left - 8}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += step
    e.append(f'<line x1="{left}" y1="{Y(1):.1f}" x2="{left + pw}" y2="{Y(1):.1f}" '
             f'stroke="black" stroke-dasharray="6,4"/>')
    e.append(f'<text x="{left + pw - 4}" y="{Y(1) - 6:.1f}" text-anchor="end">cuBLAS FP16 = 1</text>')
    e.append(f'<text x="{left + pw / 2}" y="{height - 18}" text-anchor="middle">'
             f'batch size M (tokens), log scale</text>')
    e.append(f'<text x="18" y="{top + ph / 2}" text-anchor="middle" '
             f'transform="rotate(-90 18 {top + ph / 2})">speedup (cuBLAS time / our time)</text>')
    # One line per layer shape.
    for i, (layer, pts) in enumerate(sorted(s.items())):
        c = COLOURS[i % len(COLOURS)]
        good = [(m, y) for (m, y, _d, ok) in pts if ok and finite(y)]
        if len(good) > 1:
            path = " ".join(f"{X(m):.1f},{Y(y):.1f}" for m, y in good)
            e.append(f'<polyline class="ours" data-layer="{escape(layer)}" points="{path}" '
                     f'fill="none" stroke="{c}" stroke-width="2"/>')
        for m, y in good:
            e.append(f'<circle cx="{X(m):.1f}" cy="{Y(y):.1f}" r="3.5" fill="{c}"/>')
        deq = [(m, d) for (m, _y, d, ok) in pts if ok and finite(d)]
        if len(deq) > 1:
            path = " ".join(f"{X(m):.1f},{Y(d):.1f}" for m, d in deq)
            e.append(f'<polyline class="dequant" data-layer="{escape(layer)}" points="{path}" '
                     f'fill="none" stroke="{c}" stroke-width="1.5" stroke-dasharray="2,3"/>')
        for (m, y, _d, ok) in pts:
            if not ok:  # failed verification: a cross at the axis, never a value
                x0, y0 = X(m), top + ph - 8
                e.append(f'<path class="failed" d="M{x0 - 5:.1f},{y0 - 5:.1f} '
                         f'L{x0 + 5:.1f},{y0 + 5:.1f} M{x0 - 5:.1f},{y0 + 5:.1f} '
                         f'L{x0 + 5:.1f},{y0 - 5:.1f}" stroke="red" stroke-width="2"/>')
        ly = top + 16 + 20 * i
        e.append(f'<line x1="{left + pw + 20}" y1="{ly}" x2="{left + pw + 45}" y2="{ly}" '
                 f'stroke="{c}" stroke-width="2"/>')
        e.append(f'<text x="{left + pw + 52}" y="{ly + 4}">{escape(layer)}</text>')
    ny = top + 16 + 20 * len(s) + 10
    e.append(f'<text x="{left + pw + 20}" y="{ny}" font-size="11">dotted: dequantize + cuBLAS</text>')
    e.append(f'<text x="{left + pw + 20}" y="{ny + 16}" font-size="11" fill="red">'
             f'x: failed verification</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("json", help="quant-bench --json output")
    ap.add_argument("-o", "--output", required=True, help="SVG file to write")
    args = ap.parse_args()
    svg = plot(load(args.json))
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(svg)
    import os
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
