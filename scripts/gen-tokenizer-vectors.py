#!/usr/bin/env python3
# ===- scripts/gen-tokenizer-vectors.py - Tokenizer test vectors -----------===#
#
# Part of the qc project. MIT licence.
#
# Writes small tokenizer.json files that exercise what the runtime's
# tokenizer must reproduce (SentencePiece-style byte fallback and the "▁"
# normalizer, Metaspace, added and special tokens with lstrip/rstrip/
# single_word, merges in both JSON spellings, the Llama-3 split regex,
# GPT-2 byte-level with a prefix space and Roberta post-processing, Split
# behaviours, Digits, Whitespace) and the ids and decoded texts Hugging Face
# `tokenizers` gives for a list of test strings. Vocabularies and merges are
# trained here with `tokenizers` on a fixed corpus (deterministic), then the
# JSON is assembled by hand around them so that every component is the one
# named above. Run through scripts/gen-tokenizer-vectors.sh (it makes the
# venv); the output is committed and the C++ tests need no Python.
#
# ===------------------------------------------------------------------------===#
import json
import os
import random
import sys

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

CORPUS = [
    "Once upon a time, there was a little robot who loved to read books.",
    "The robot lived in a small town with a cat, a dog and many friends.",
    "Every day the robot walked to the library and read a new story.",
    "hello world, hello there, lower, lowest, newer, newest, widest.",
    "She said: don't stop! We'll see. I'm here; they're there; you've won.",
    "Numbers like 12345, 3.14159 and 2024 appear in text too.",
    "def f(x):\n    return x**2\n\nprint(f(3))\n",
    "café naïve résumé — déjà vu.",
    "The quick brown fox jumps over the lazy dog. THE END.",
    "concatenate the cat category; catalog of hot dogs and dogs.",
]

SPECIAL_BYTES = ["<0x%02X>" % b for b in range(256)]
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def train(vocab_size, normalizer=None, pre=None, alphabet=None):
    """Trains a BPE model on CORPUS; returns (vocab pieces by id, merges)."""
    tk = Tokenizer(models.BPE())
    if normalizer is not None:
        tk.normalizer = normalizer
    if pre is not None:
        tk.pre_tokenizer = pre
    tr = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        initial_alphabet=alphabet or [],
        min_frequency=1,
    )
    tk.train_from_iterator(CORPUS, tr)
    model = json.loads(tk.to_str())["model"]
    pieces = sorted(model["vocab"], key=lambda p: model["vocab"][p])
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    return pieces, merges


def bpe(vocab, merges, string_merges, **kw):
    m = {
        "type": "BPE",
        "dropout": None,
        "unk_token": None,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": False,
        "byte_fallback": False,
        "ignore_merges": False,
        "vocab": vocab,
        "merges": [" ".join(p) for p in merges] if string_merges else merges,
    }
    m.update(kw)
    return m


def added(id_, content, special=True, **kw):
    t = {
        "id": id_,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": not special,
        "special": special,
    }
    t.update(kw)
    return t


def template(single_before, single_after, ids):
    def items(before, after):
        r = [{"SpecialToken": {"id": t, "type_id": 0}} for t in before]
        r.append({"Sequence": {"id": "A", "type_id": 0}})
        r += [{"SpecialToken": {"id": t, "type_id": 0}} for t in after]
        return r

    return {
        "type": "TemplateProcessing",
        "single": items(single_before, single_after),
        "pair": items(single_before, single_after)
        + [{"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {
            t: {"id": t, "ids": [ids[t]], "tokens": [t]}
            for t in single_before + single_after
        },
    }


def document(model, added_tokens, normalizer, pre, post, decoder):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": decoder,
        "model": model,
    }


def sp_byte_fallback():
    """Llama-2 style: Prepend/Replace normalizer, byte fallback, "a b"."""
    norm = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    pieces, merges = train(160, normalizer=norm)
    head = ["<unk>", "<s>", "</s>"] + SPECIAL_BYTES
    vocab = {p: i for i, p in enumerate(head)}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    norm_json = {
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ],
    }
    dec = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    doc = document(
        bpe(vocab, merges, True, unk_token="<unk>", fuse_unk=True,
            byte_fallback=True),
        [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        norm_json,
        None,
        template(["<s>"], [], vocab),
        dec,
    )
    texts = [
        "hello world",
        "Hello World",
        " leading space",
        "trailing space ",
        "two  spaces",
        "café naïve",
        "日本語のテキスト",
        "emoji 🙂👍🏽 end",
        "<s>inside</s> the text",
        "a\nb\tc",
        "the robot read a book",
        "",
    ]
    return doc, texts


def metaspace_pairs():
    """Metaspace (prepend first), merges as pairs, unk fusing, added tokens
    with lstrip/rstrip/single_word/normalized."""
    pre = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    pieces, merges = train(150, pre=pre)
    vocab = {"<unk>": 0, "</s>": 1}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    n = len(vocab)
    toks = [
        added(0, "<unk>"),
        added(1, "</s>"),
        added(n, "<|tool|>"),
        added(n + 1, "[MASK]", lstrip=True, rstrip=True),
        added(n + 2, "cat", special=False, single_word=True, normalized=False),
        added(n + 3, "dog", special=False),
    ]
    doc = document(
        bpe(vocab, merges, False, unk_token="<unk>", fuse_unk=True),
        toks,
        None,
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
         "split": True},
        template([], ["</s>"], vocab),
        {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first",
         "split": True},
    )
    texts = [
        "the cat sat",
        "concatenate the category",
        "a [MASK] b",
        "a   [MASK]   b",
        "<|tool|>call the robot",
        "hot dog and dogs",
        "日本 and ÆØÅ",
        "x 日本語 y",
        "cat",
        " leading",
        "</s> after",
    ]
    return doc, texts


def llama3_regex():
    """Llama-3 style: Split(regex) + ByteLevel(no regex), ignore_merges."""
    split = pre_tokenizers.Split(
        pattern=__import__("tokenizers").Regex(LLAMA3_REGEX),
        behavior="isolated",
    )
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pre = pre_tokenizers.Sequence([split, bl])
    pieces, merges = train(400, pre=pre,
                           alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab = {p: i for i, p in enumerate(pieces)}
    n = len(vocab)
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    ids = {t: n + i for i, t in enumerate(names)}
    doc = document(
        bpe(vocab, merges, False, ignore_merges=True),
        [added(ids[t], t) for t in names],
        None,
        {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_REGEX},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False,
                 "trim_offsets": True, "use_regex": False},
            ],
        },
        {
            "type": "Sequence",
            "processors": [
                {"type": "ByteLevel", "add_prefix_space": True,
                 "trim_offsets": False, "use_regex": True},
                template(["<|begin_of_text|>"], [], ids),
            ],
        },
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
         "use_regex": True},
    )
    texts = [
        "Hello, world! It's 12345 o'clock.",
        "I'LL DO IT, YOU'VE SEEN",
        "line1\r\nline2\n\n  indented",
        "日本語のテキスト",
        "emoji 🙂👍🏽",
        "<|begin_of_text|>hi there<|eot_id|>",
        "tabs\tand  spaces   ",
        "def f(x):\n    return x**2\n",
        "the robot",
    ]
    return doc, texts


QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def qwen2_nfc():
    """Qwen2 style: NFC normalizer, Split(regex, one digit per pre-token) +
    ByteLevel(no regex), no post-processing."""
    split = pre_tokenizers.Split(
        pattern=__import__("tokenizers").Regex(QWEN2_REGEX),
        behavior="isolated",
    )
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    pieces, merges = train(380, normalizer=normalizers.NFC(),
                           pre=pre_tokenizers.Sequence([split, bl]),
                           alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab = {p: i for i, p in enumerate(pieces)}
    n = len(vocab)
    names = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    doc = document(
        bpe(vocab, merges, False),
        [added(n + i, t) for i, t in enumerate(names)],
        {"type": "NFC"},
        {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_REGEX},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False,
                 "trim_offsets": False, "use_regex": False},
            ],
        },
        {"type": "ByteLevel", "add_prefix_space": False,
         "trim_offsets": False, "use_regex": False},
        {"type": "ByteLevel", "add_prefix_space": False,
         "trim_offsets": False, "use_regex": False},
    )
    texts = [
        "Numbers like 12345 and 3.14159",
        "café naïve résumé",
        "<|im_start|>user\nHi<|im_end|>\n",
        "日本語のテキスト 🙂",
        "I'M HERE, THEY'RE THERE",
        "Привет, мир",
    ]
    return doc, texts


def gpt2_roberta():
    """GPT-2 ByteLevel with prefix space and regex, Roberta post-processing,
    a regex Replace normalizer."""
    pre = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    norm = normalizers.Replace(__import__("tokenizers").Regex(r"\d"), "7")
    pieces, merges = train(350, normalizer=norm, pre=pre,
                           alphabet=pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    doc = document(
        bpe(vocab, merges, True),
        # "x7" is matched in the normalized text, so "x1" finds it too.
        [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"),
         added(len(vocab), "x7", special=False, normalized=True)],
        {"type": "Replace", "pattern": {"Regex": r"\d"}, "content": "7"},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
         "use_regex": True},
        {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
         "trim_offsets": True, "add_prefix_space": True},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
         "use_regex": True},
    )
    texts = [
        "Hello world",
        "hello  world",
        "12 apples and 3 pears",
        " start",
        "don't we'll",
        "<s>x</s>",
        "naïve café",
        "x1 and x7, ax9",
    ]
    return doc, texts


def splits():
    """Split behaviours, String patterns, Digits, Whitespace; unk without
    byte fallback or fusing; no decoder (tokens joined by spaces)."""
    pre_json = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Split", "pattern": {"String": "-"},
             "behavior": "MergedWithNext", "invert": False},
            {"type": "Split", "pattern": {"Regex": "[A-Z]"},
             "behavior": "MergedWithPrevious", "invert": False},
            {"type": "Split", "pattern": {"Regex": "o+"},
             "behavior": "Contiguous", "invert": True},
            {"type": "Split", "pattern": {"String": "!"},
             "behavior": "Removed", "invert": False},
            {"type": "Digits", "individual_digits": False},
            {"type": "Whitespace"},
        ],
    }
    pre = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    pieces, merges = train(120, pre=pre)
    vocab = {"[UNK]": 0}
    for p in pieces:
        vocab.setdefault(p, len(vocab))
    doc = document(
        bpe(vocab, merges, True, unk_token="[UNK]", fuse_unk=False),
        [added(0, "[UNK]")],
        None,
        pre_json,
        None,
        None,
    )
    texts = [
        "well-known e-mail",
        "CamelCaseWords here",
        "foo boooot zoo",
        "wow! such! excite!",
        "room 101 and 2024-12-05",
        "日本 x",
        "hello, world.",
    ]
    return doc, texts


# Characters the random strings are drawn from: ASCII of every class,
# whitespace of several kinds, accented and combining letters, scripts with
# combining marks, CJK, emoji with modifiers and joiners, the SentencePiece
# space mark and text that looks like special or byte tokens.
POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" \t\n\r.,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`")
    + ["  ", "\r\n", "\n\n", "   ", "\u00a0", "\u2028", "\u3000",
       "\u200b", "\u00e9", "\u00f1", "\u00fc", "\u00df", "\u00c5",
       "e\u0301", "\u0306", "\u0416", "\u043f\u0440\u0438",
       "\u0645\u0631\u062d\u0628\u0627", "\u0928\u092e\u0938\u094d\u0924\u0947",
       "\u65e5\u672c", "\u8a9e", "\u30c6\u30ad", "\ud55c\uad6d",
       "\U0001f642", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469",
       "\u2581", "'s", "'S", "'ll", "'VE", "<0x41>", "<s>", "</s>",
       "<|im_start|>", "<|im_end|>", "<|endoftext|>", "[MASK]", "cat", "dog",
       "<|tool|>", "<|eot_id|>", "the", " the", "robot", "123", "3.14"]
)


def random_texts(seed, count, pool=POOL):
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 24)))
            for _ in range(count)]


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    expected = {
        "generator": "scripts/gen-tokenizer-vectors.py with tokenizers "
        + __import__("tokenizers").__version__,
        "note": "ids: encode(text, add_special_tokens=False); ids_special: "
        "add_special_tokens=True; decoded: decode(ids, "
        "skip_special_tokens=False); decoded_skip: skip_special_tokens=True",
        "tokenizers": {},
    }
    for name, make in [
        ("sp_byte_fallback", sp_byte_fallback),
        ("metaspace_pairs", metaspace_pairs),
        ("llama3_regex", llama3_regex),
        ("gpt2_roberta", gpt2_roberta),
        ("splits", splits),
        ("qwen2_nfc", qwen2_nfc),
    ]:
        doc, texts = make()
        pool = POOL
        if name == "qwen2_nfc":
            # Only text NFC leaves unchanged (the C++ side refuses the rest).
            pool = [c for c in POOL if c not in ("e\u0301", "\u0306")
                    and "\u0928" not in c and "\u0645" not in c]
        texts = texts + random_texts(name, 40, pool)
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        with open(os.path.join(out_dir, name + ".json"), "w",
                  encoding="utf-8") as f:
            f.write(text + "\n")
        tk = Tokenizer.from_str(text)
        cases = []
        for t in texts:
            ids = tk.encode(t, add_special_tokens=False).ids
            ids_special = tk.encode(t, add_special_tokens=True).ids
            cases.append({
                "text": t,
                "ids": ids,
                "ids_special": ids_special,
                "decoded": tk.decode(ids, skip_special_tokens=False),
                "decoded_skip": tk.decode(ids, skip_special_tokens=True),
            })
        expected["tokenizers"][name] = {"file": name + ".json",
                                        "cases": cases}
    # The bundled SmolLM2 tokenizer.json (read from the shared folder, not
    # copied): many random strings, ids only, for a differential check.
    smol = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "shared", "models", "smollm2-135m", "tokenizer.json")
    if os.path.exists(smol):
        tk = Tokenizer.from_file(smol)
        cases = []
        for t in random_texts("smollm2", 300):
            ids = tk.encode(t, add_special_tokens=False).ids
            cases.append({"text": t, "ids": ids,
                          "decoded": tk.decode(ids, skip_special_tokens=False)})
        with open(os.path.join(out_dir, "smollm2_random.json"), "w",
                  encoding="utf-8") as f:
            json.dump({"generator": expected["generator"],
                       "tokenizer": "../shared/models/smollm2-135m/"
                                    "tokenizer.json",
                       "cases": cases}, f, ensure_ascii=False, indent=1)
            f.write("\n")
    with open(os.path.join(out_dir, "expected.json"), "w",
              encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
