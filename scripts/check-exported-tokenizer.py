#===- scripts/check-exported-tokenizer.py - HF tokenizers on an export ----===#
#
# Part of the qc project. MIT licence.
#
# See scripts/check-exported-tokenizer.sh. Exits non-zero on the first
# disagreement, printing the text and both id lists.
#
#===------------------------------------------------------------------------===#
import argparse
import json
import os
import subprocess
import sys
import tempfile

import tokenizers
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--goldens", help="goldens.json with tokenizer.cases")
    ap.add_argument("--valid-head", help="valid_head.txt for the goldens' "
                    "first-2000-characters id list")
    ap.add_argument("--strings", required=True)
    ap.add_argument("--quant-tokenize", required=True)
    a = ap.parse_args()

    tok = Tokenizer.from_file(a.folder + "/tokenizer.json")
    scratch = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="",
                                          suffix=".txt", delete=False)
    scratch.close()

    def qc_ids(text):
        # quant-tokenize adds BOS/EOS as the folder's configuration says,
        # as tokenizers' post-processor does with add_special_tokens=True.
        with open(scratch.name, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        out = subprocess.run(
            [a.quant_tokenize, a.folder, "--json", "--file", scratch.name],
            check=True, capture_output=True, text=True).stdout
        return json.loads(out)["ids"]

    def fail(what, text, want, got):
        print(f"MISMATCH ({what}) for {text!r}:\n  tokenizers: {want}\n"
              f"  qc:         {got}")
        sys.exit(1)

    checked = 0
    try:
        if a.goldens:
            with open(a.goldens, encoding="utf-8") as f:
                g = json.load(f)["tokenizer"]
            cases = [(c["text"], c["ids"]) for c in g["cases"]]
            if a.valid_head:
                with open(a.valid_head, encoding="utf-8") as f:
                    head = f.read()
                v = g["valid_head_first_2000_chars"]
                cases.append((head[:v["text_range_chars"][1]], v["ids"]))
            for text, ids in cases:
                got = tok.encode(text, add_special_tokens=False).ids
                if got != ids:
                    fail("tokenizers vs goldens", text, ids, got)
                decoded = tok.decode(ids, skip_special_tokens=False)
                if decoded != text:
                    fail("decode", text, text, decoded)
                checked += 1
        with open(a.strings, encoding="utf-8") as f:
            strings = [c["text"] for t in json.load(f)["tokenizers"].values()
                       for c in t["cases"]]
        for text in strings:
            want = tok.encode(text, add_special_tokens=True).ids
            got = qc_ids(text)
            if got != want:
                fail("tokenizers vs quant-tokenize", text, want, got)
            checked += 1
    finally:
        os.remove(scratch.name)
    print(f"{a.folder}: {checked} texts, ids identical "
          f"(tokenizers {tokenizers.__version__})")


if __name__ == "__main__":
    main()
