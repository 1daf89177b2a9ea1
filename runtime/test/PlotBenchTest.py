#!/usr/bin/env python3
# ===- runtime/test/PlotBenchTest.py - Test of scripts/plot-bench.py -------=== #
#
# Part of the qc project. MIT licence.
#
# A PLOT TEST on a small SYNTHETIC report: the numbers below are made up to
# exercise the plotting script and are not GPU measurements. Checks that
# the SVG is well-formed XML with one line per layer shape, a dotted line
# where dequantize-then-cuBLAS was measured, a red cross (and no point) for
# a row that failed verification, and that bad input is refused.
#
#   PlotBenchTest.py path/to/plot-bench.py
#
# ===----------------------------------------------------------------------=== #

import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def row(layer, m, speedup, dequant=None, ok=True):
    return {"layer": layer, "M": m, "speedup_vs_cublas": speedup,
            "dequant_speedup_vs_cublas": dequant, "ok": ok}


def main():
    script = sys.argv[1]
    report = {
        "schema": "qc-bench-kernels", "schema_version": 1,
        "device": {"name": "SYNTHETIC plot-test data, not a GPU measurement",
                   "arch": "none"},
        "date": "2026-01-01T00:00:00Z",
        "rows": [row("4096x4096", 1, 3.1, 0.4), row("4096x4096", 16, 2.0, 0.6),
                 row("4096x4096", 256, 0.9, 0.8),
                 row("4096x11008", 1, 3.5), row("4096x11008", 16, 2.2),
                 row("4096x11008", 256, None, ok=False)],
    }
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "r.json"), os.path.join(d, "r.svg")
        with open(src, "w") as f:
            json.dump(report, f)
        subprocess.run([sys.executable, script, src, "-o", out], check=True)
        root = ET.parse(out).getroot()
        assert root.tag == SVG + "svg", root.tag
        lines = root.findall(f"{SVG}polyline")
        ours = sorted(p.get("data-layer") for p in lines if p.get("class") == "ours")
        assert ours == ["4096x11008", "4096x4096"], ours
        deq = [p.get("data-layer") for p in lines if p.get("class") == "dequant"]
        assert deq == ["4096x4096"], deq
        failed = [p for p in root.findall(f"{SVG}path") if p.get("class") == "failed"]
        assert len(failed) == 1, failed
        # 5 verified points, the failed row has none.
        assert len(root.findall(f"{SVG}circle")) == 5
        text = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
        assert "SYNTHETIC" in text and "cuBLAS FP16 = 1" in text, text

        # Refused: a JSON that is not a quant-bench report.
        with open(src, "w") as f:
            json.dump({"rows": []}, f)
        r = subprocess.run([sys.executable, script, src, "-o", out],
                           capture_output=True, text=True)
        assert r.returncode == 1 and "not a quant-bench kernel report" in r.stderr, r
    print("plot-bench: synthetic plot test passed (not GPU data)")


if __name__ == "__main__":
    main()
