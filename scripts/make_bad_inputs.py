#!/usr/bin/env python3
"""Builds a seeded corpus of broken model inputs for the `wick` CLI (issue 18).

    python3 scripts/make_bad_inputs.py --out DIR [--seed N] [--count-report]

Standard library only. From the tiny fixtures in tests/fixtures/tiny/<name>/ it writes, under
DIR, one folder per case:

    DIR/<case-id>/case.json     what the case is and how to run it
    DIR/<case-id>/model/        a copy of a fixture with one thing broken (or model.gguf, ...)

case.json:
    id      the folder's name
    what    one line: what was broken
    model   the model path, relative to the case folder ("model", "model.gguf", ...)
    argv    the `wick` arguments; the token "{model}" (also inside an argument) is replaced by
            the model's absolute path
    stdin   optional: {"text": str} | {"hex": str} | {"repeat": str, "bytes": n} |
            {"file": name-in-case-folder}; no stdin means an empty one
    expect  "error-or-ok" (default: exit 0 or 1 with a one-line message) or "ok" (controls:
            an unbroken fixture, must exit 0)

"Huge" sizes are lies in headers, never real bytes: the corpus stays a few tens of MB. Unchanged
files are hard links into DIR/_fixtures (a private copy of the fixtures), so breaking a file
always writes a new one and never touches the repository.

Everything random comes from one `random.Random(seed)`, so a seed gives the same corpus.
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
from collections import Counter
from random import Random

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "tiny"))
MARKER = ".wick-bad-inputs-corpus"
SKIP_FILES = {"expected.json"}

U64_MAX = 2**64 - 1


# ---------------------------------------------------------------------------------------------
# What each fixture runs.
# ---------------------------------------------------------------------------------------------

def mask_token(fixture):
    try:
        with open(os.path.join(FIXTURES, fixture, "tokenizer_config.json")) as f:
            tc = json.load(f)
    except (OSError, ValueError):
        return "[MASK]"
    m = tc.get("mask_token")
    if isinstance(m, dict):
        m = m.get("content")
    return m or "[MASK]"


def task_argv(fixture, text=None):
    """The CLI call that exercises a fixture's task, with "{model}" for its path."""
    m = ["-m", "{model}"]
    if fixture.endswith("causal-lm"):
        return ["run", "text-generation"] + m + [
            "--max-new-tokens", "8", "--do-sample", "false",
            text if text is not None else "Hello there"]
    if fixture.startswith("marian"):
        return ["run", "translation"] + m + [
            "--max-new-tokens", "8", text if text is not None else "Hello world"]
    if fixture.endswith("seq2seq-lm"):
        return ["run", "summarization"] + m + [
            "--max-new-tokens", "8",
            text if text is not None else "The quick brown fox jumps over the lazy dog."]
    if fixture.endswith("sequence-classification") or fixture.endswith(
            "multi-label-classification"):
        return ["run", "text-classification"] + m + [text if text is not None else
                                                      "I love this movie"]
    if fixture.endswith("-nli"):
        return ["run", "zero-shot-classification"] + m + [
            "--candidate-labels", "sports,politics",
            text if text is not None else "The match was great"]
    if fixture.endswith("token-classification"):
        return ["run", "token-classification"] + m + [
            text if text is not None else "John lives in Paris"]
    if fixture.endswith("question-answering"):
        return ["run", "question-answering"] + m + [
            "--question", "Where does John live?",
            "--context", text if text is not None else "John lives in Paris."]
    if fixture.endswith("masked-lm"):
        return ["run", "fill-mask"] + m + [
            text if text is not None else "Paris is the %s of France." % mask_token(fixture)]
    if fixture.endswith("-base"):
        return ["run", "feature-extraction"] + m + [text if text is not None else "hello world"]
    raise ValueError("no task for fixture " + fixture)


def stdin_argv(fixture):
    """The task call with no text argument: the CLI reads the text(s) from stdin."""
    if fixture.endswith("question-answering"):
        return None  # question-answering has no stdin
    return task_argv(fixture, text="")[:-1]


def tokenize_argv(text="Hello world, this is a test."):
    return ["tokenize", "-m", "{model}", text]


# ---------------------------------------------------------------------------------------------
# The corpus.
# ---------------------------------------------------------------------------------------------

class Case:
    def __init__(self, corpus, cid, what, fixture, argv, model_rel, stdin, expect):
        self.corpus = corpus
        self.id = cid
        self.what = what
        self.fixture = fixture
        self.argv = argv
        self.model_rel = model_rel
        self.stdin = stdin
        self.expect = expect
        self.dir = os.path.join(corpus.out, cid)
        os.makedirs(self.dir)
        self.model = os.path.join(self.dir, model_rel)
        if fixture is not None:
            src = corpus.pool_dir(fixture)
            os.makedirs(self.model)
            for name in sorted(os.listdir(src)):
                link_or_copy(os.path.join(src, name), os.path.join(self.model, name))

    # Files of the model folder, by name.
    def path(self, rel):
        return os.path.join(self.model, rel)

    def read(self, rel):
        with open(self.path(rel), "rb") as f:
            return f.read()

    def write(self, rel, data):
        p = self.path(rel)
        if os.path.lexists(p):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)  # never write through a hard link
        os.makedirs(os.path.dirname(p), exist_ok=True)
        self.corpus.put(p, data if isinstance(data, bytes) else data.encode("utf-8"))

    def json(self, rel):
        return json.loads(self.read(rel).decode("utf-8"))

    def write_json(self, rel, obj, **kw):
        self.write(rel, json.dumps(obj, indent=1, **kw))

    def remove(self, rel):
        p = self.path(rel)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)

    def has(self, rel):
        return os.path.lexists(self.path(rel))

    def finish(self):
        meta = {"id": self.id, "what": self.what, "model": self.model_rel, "argv": self.argv}
        if self.fixture:
            meta["fixture"] = self.fixture
        if self.stdin is not None:
            meta["stdin"] = self.stdin
        if self.expect != "error-or-ok":
            meta["expect"] = self.expect
        with open(os.path.join(self.dir, "case.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class Corpus:
    def __init__(self, out, seed):
        self.out = out
        self.rng = Random(seed)
        self.cases = []
        self.pool = os.path.join(out, "_fixtures")
        self.categories = Counter()

    def put(self, path, data):
        """Writes `data` at `path`, as a hard link to one stored copy of equal bytes."""
        blob = os.path.join(self.out, "_blobs", hashlib.sha1(data).hexdigest())
        if not os.path.exists(blob):
            os.makedirs(os.path.dirname(blob), exist_ok=True)
            with open(blob, "wb") as f:
                f.write(data)
        link_or_copy(blob, path)

    def pool_dir(self, fixture):
        dst = os.path.join(self.pool, fixture)
        if not os.path.isdir(dst):
            src = os.path.join(FIXTURES, fixture)
            if not os.path.isdir(src):
                raise SystemExit("no fixture %s" % src)
            os.makedirs(dst)
            for name in sorted(os.listdir(src)):
                if name in SKIP_FILES:
                    continue
                shutil.copy2(os.path.join(src, name), os.path.join(dst, name))
        return dst

    def case(self, category, short, what, fixture=None, argv=None, model_rel="model",
             stdin=None, expect="error-or-ok"):
        """A new case folder with a copy of `fixture` (None: an empty case folder)."""
        n = len(self.cases)
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in short)[:60]
        cid = "%04d-%s-%s" % (n, category, slug)
        if fixture and not slug.endswith(fixture):
            cid = cid[:80] + "--" + fixture
        if argv is None:
            argv = task_argv(fixture)
        c = Case(self, cid, what, fixture, argv, model_rel, stdin, expect)
        self.cases.append(c)
        self.categories[category] += 1
        return c


def rotate(items, i):
    return items[i % len(items)]


# ---------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------

def st_parse(b):
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n].decode("utf-8"))
    return header, b[8 + n:], n


def st_build(header, data, raw_header=None, length=None):
    if raw_header is None:
        raw_header = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if isinstance(raw_header, str):
        raw_header = raw_header.encode("utf-8")
    raw_header += b" " * (-len(raw_header) % 8)
    n = len(raw_header) if length is None else length
    return struct.pack("<Q", n) + raw_header + data


def tensors_of(header):
    return [k for k in header if k != "__metadata__"]


def main_tensor(header):
    """The embedding table, or else the biggest tensor."""
    names = tensors_of(header)
    for n in names:
        if "embed" in n or n.endswith("wte.weight") or "shared" in n:
            return n
    return max(names, key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0])


def flip_bit(b, pos, bit):
    b = bytearray(b)
    b[pos] ^= 1 << bit
    return bytes(b)


ST_FIXTURES = [
    "bert-sequence-classification", "llama-causal-lm", "gpt2-causal-lm", "t5-seq2seq-lm",
    "distilbert-token-classification", "qwen2-causal-lm", "deberta-v2-masked-lm",
    "bart-seq2seq-lm", "gemma3-causal-lm", "bert-question-answering", "marian-seq2seq-lm",
    "roberta-nli", "xlm-roberta-base", "deberta-v2-question-answering", "bert-masked-lm",
    "distilbert-sequence-classification", "roberta-token-classification",
]


def gen_safetensors(corpus):
    rng = corpus.rng
    i = [0]

    def fx():
        i[0] += 1
        return rotate(ST_FIXTURES, i[0])

    def new(short, what, fixture=None, argv=None):
        f = fixture or fx()
        c = corpus.case("st", short, what, f, argv)
        b = c.read("model.safetensors")
        return c, b

    # Truncations.
    for k in range(4):
        c, b = new("trunc-header-%d" % k, "")
        n = struct.unpack("<Q", b[:8])[0]
        at = rng.randint(9, 8 + n - 1)
        c.what = "model.safetensors truncated inside its JSON header (at %d of %d bytes)" % (
            at, len(b))
        c.write("model.safetensors", b[:at])
    for k in range(4):
        c, b = new("trunc-data-%d" % k, "")
        n = struct.unpack("<Q", b[:8])[0]
        at = rng.randint(8 + n, len(b) - 1)
        c.what = "model.safetensors truncated in its tensor data (at %d of %d bytes)" % (
            at, len(b))
        c.write("model.safetensors", b[:at])
    for at in (0, 3, 8):
        c, b = new("trunc-at-%d" % at, "model.safetensors truncated to %d bytes" % at)
        c.write("model.safetensors", b[:at])
    c, b = new("trunc-last-byte", "model.safetensors missing its last byte")
    c.write("model.safetensors", b[:-1])
    c, b = new("extra-trailing", "model.safetensors with 4096 extra zero bytes after the data")
    c.write("model.safetensors", b + b"\0" * 4096)

    # Bit flips.
    for k in range(5):
        c, b = new("flip-len-%d" % k, "")
        pos, bit = rng.randrange(8), rng.randrange(8)
        c.what = "bit flip in the 8-byte header length (byte %d bit %d)" % (pos, bit)
        c.write("model.safetensors", flip_bit(b, pos, bit))
    for k in range(8):
        c, b = new("flip-header-%d" % k, "")
        n = struct.unpack("<Q", b[:8])[0]
        flips = []
        for _ in range(rng.choice([1, 1, 2, 4])):
            pos, bit = rng.randrange(8, 8 + n), rng.randrange(8)
            b = flip_bit(b, pos, bit)
            flips.append("%d.%d" % (pos, bit))
        c.what = "bit flips in the JSON header (byte.bit %s)" % ",".join(flips)
        c.write("model.safetensors", b)
    for k in range(3):
        c, b = new("flip-data-%d" % k, "")
        n = struct.unpack("<Q", b[:8])[0]
        b = bytearray(b)
        for _ in range(64):
            b[rng.randrange(8 + n, len(b))] ^= 1 << rng.randrange(8)
        c.what = "64 random bit flips in the tensor data"
        c.write("model.safetensors", bytes(b))

    # Non-finite weights.
    for k, (val, label) in enumerate([(float("nan"), "NaN"), (float("inf"), "+Inf"),
                                      (float("-inf"), "-Inf"), (3.0e38, "3e38")]):
        for whole in (False, True):
            c, b = new("nonfinite-%s-%s" % (label, "all" if whole else "some"), "")
            header, data, n = st_parse(b)
            names = [t for t in tensors_of(header) if header[t]["dtype"] == "F32"]
            data = bytearray(data)
            if whole:
                # The output side: a classifier / LM head / the last tensor by name.
                pick = [t for t in names if any(s in t for s in (
                    "classifier", "lm_head", "qa_outputs", "vocab_projector", "predictions",
                    "final_logits", "norm"))] or names
                t = sorted(pick)[-1]
                s, e = header[t]["data_offsets"]
                data[s:e] = struct.pack("<f", val) * ((e - s) // 4)
                c.what = "every value of tensor %s is %s" % (t, label)
            else:
                for _ in range(32):
                    t = rng.choice(names)
                    s, e = header[t]["data_offsets"]
                    at = s + 4 * rng.randrange((e - s) // 4)
                    data[at:at + 4] = struct.pack("<f", val)
                c.what = "32 random weights set to %s" % label
            c.write("model.safetensors", b[:8 + n] + bytes(data))

    # Header length lies.
    for lie, label in [(2**63, "2**63"), (U64_MAX, "2**64-1"), (2**32, "2**32"),
                       (0, "0"), (1, "1"), (2, "2"), ("file+1", "file size + 1"),
                       ("file-8", "file size - 8 (the header swallows the data)"),
                       ("n+8", "8 more than the real header (into the data)"),
                       ("n-8", "8 less than the real header")]:
        c, b = new("hlen-" + label.split(" ")[0], "header length field = %s" % label)
        n = struct.unpack("<Q", b[:8])[0]
        v = {"file+1": len(b) + 1, "file-8": len(b) - 8, "n+8": n + 8, "n-8": n - 8}.get(lie, lie)
        c.write("model.safetensors", struct.pack("<Q", v) + b[8:])

    # Field edits of the header JSON.
    def edit(short, what, fn, fixture=None, argv=None):
        c, b = new(short, what, fixture, argv)
        header, data, _ = st_parse(b)
        res = fn(header, data)
        if res is not None:
            header, data = res
        c.write("model.safetensors", st_build(header, data))
        return c

    def on_main(fn):
        def go(h, d):
            fn(h[main_tensor(h)], h, d)
        return go

    def on_random(fn):
        def go(h, d):
            fn(h[rng.choice(tensors_of(h))], h, d)
        return go

    for dt in ["F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "I4", "XYZ", "",
               5, None, ["F32"]]:
        edit("dtype-%s" % dt, "dtype of the embedding tensor changed to %r" % (dt,),
             on_main(lambda t, h, d, dt=dt: t.__setitem__("dtype", dt)))
    edit("dtype-random-F16", "dtype of a random tensor changed to F16",
         on_random(lambda t, h, d: t.__setitem__("dtype", "F16")))

    def reinterpret(dtype, factor):
        def go(t, h, d):
            t["dtype"] = dtype
            if factor > 1:
                t["shape"] = t["shape"][:-1] + [t["shape"][-1] * factor]
            elif factor < 1:
                t["shape"] = t["shape"][:-1] + [int(t["shape"][-1] * factor)]
        return go
    edit("dtype-I32-samesize", "embedding dtype F32 -> I32 (same byte size, integer data)",
         on_main(reinterpret("I32", 1)))
    edit("dtype-F16-doubled", "embedding dtype F32 -> F16 with the last dim doubled "
         "(sizes agree, shape does not)", on_main(reinterpret("F16", 2)))
    edit("dtype-F64-halved", "embedding dtype F32 -> F64 with the last dim halved",
         on_main(reinterpret("F64", 0.5)))
    edit("dtype-U8-x4", "embedding dtype F32 -> U8 with the last dim x4",
         on_main(reinterpret("U8", 4)))

    for shape, label in [([2**40, 2**40], "2**40x2**40"), ([2**62], "2**62"),
                         ([U64_MAX], "2**64-1"), ([2**32, 2**32], "2**32x2**32-overflow"),
                         ([2**64], "2**64"), ([-1, 32], "negative"), ([], "empty"),
                         ([0], "zero"), ([1], "one"), ("32", "string"), (None, "null"),
                         ([32.0, 1000.0], "floats"), ([1] * 64, "64-dims"),
                         ([1, 1, 1, 1, 1, 1, 1, 1], "8-dims")]:
        edit("shape-" + label, "embedding tensor shape set to %s" % label,
             on_main(lambda t, h, d, s=shape: t.__setitem__("shape", s)))
    edit("shape-transposed", "embedding shape transposed (same size, dims swapped)",
         on_main(lambda t, h, d: t.__setitem__("shape", list(reversed(t["shape"])))))
    edit("shape-extra-dim", "random tensor gets an extra trailing dim of 1",
         on_random(lambda t, h, d: t.__setitem__("shape", t["shape"] + [1])))
    edit("shape-random-1", "random tensor shape [1] (size no longer matches offsets)",
         on_random(lambda t, h, d: t.__setitem__("shape", [1])))

    def offsets(fn):
        def go(t, h, d):
            t["data_offsets"] = fn(t["data_offsets"], len(d))
        return go
    for fn, label in [
            (lambda o, n: [o[1], o[0]], "swapped"),
            (lambda o, n: [0, o[1] - o[0]], "overlapping (start at 0)"),
            (lambda o, n: [n, n + o[1] - o[0]], "out of range (after the data)"),
            (lambda o, n: [0, U64_MAX], "[0, 2**64-1]"),
            (lambda o, n: [2**63, 2**63 + o[1] - o[0]], "at 2**63"),
            (lambda o, n: [U64_MAX - 4, U64_MAX + 4], "overflowing u64"),
            (lambda o, n: [-8, o[1] - o[0] - 8], "negative"),
            (lambda o, n: [o[0] + 1, o[1] + 1], "misaligned by one byte"),
            (lambda o, n: [o[0], o[1], o[1]], "three entries"),
            (lambda o, n: [o[0]], "one entry"),
            (lambda o, n: [], "empty"),
            (lambda o, n: None, "null"),
            (lambda o, n: [str(o[0]), str(o[1])], "strings"),
            (lambda o, n: [o[0], o[0]], "zero-length")]:
        edit("offsets-" + label.split(" ")[0], "embedding data_offsets %s" % label,
             on_main(offsets(fn)))
    edit("offsets-random-swap", "data_offsets of a random tensor swapped",
         on_random(offsets(lambda o, n: [o[1], o[0]])))

    def all_overlap(h, d):
        for t in tensors_of(h):
            s, e = h[t]["data_offsets"]
            h[t]["data_offsets"] = [0, e - s]
    edit("offsets-all-at-0", "every tensor's data_offsets start at 0 (all overlap)", all_overlap)

    def drop(pred, label):
        def go(h, d):
            names = [t for t in tensors_of(h) if pred(t)] or tensors_of(h)
            del h[sorted(names)[0]]
        return go
    for fixture in ["bert-sequence-classification", "llama-causal-lm", "t5-seq2seq-lm",
                    "gpt2-causal-lm", "deberta-v2-token-classification", "bart-seq2seq-lm",
                    "qwen2-causal-lm", "distilbert-question-answering", "gemma3-causal-lm"]:
        edit("missing-embed", "the embedding tensor removed from the header (data kept)",
             drop(lambda t: "embed" in t or "wte" in t or "shared" in t, "embed"), fixture)
        edit("missing-layer", "a layer-1 tensor removed from the header",
             drop(lambda t: (".1." in t) and t.endswith("weight"), "layer"), fixture)
    for fixture in ["bert-sequence-classification", "roberta-token-classification",
                    "distilbert-question-answering", "llama-causal-lm", "xlm-roberta-masked-lm"]:
        edit("missing-head", "the task head (classifier / qa_outputs / lm_head) removed",
             drop(lambda t: any(s in t for s in ("classifier", "qa_outputs", "lm_head",
                                                 "lm_head", "vocab_projector", "predictions")),
                  "head"), fixture)

    def extra(h, d):
        h["bogus.extra.weight"] = {"dtype": "F32", "shape": [4],
                                   "data_offsets": [len(d), len(d) + 16]}
        return h, d + b"\0" * 16
    edit("extra-tensor", "an extra unknown tensor appended", extra)

    def extra_huge(h, d):
        h["zz.extra.weight"] = {"dtype": "F32", "shape": [2**40],
                                "data_offsets": [len(d), len(d) + 4 * 2**40]}
    edit("extra-tensor-huge", "an extra tensor of 2**40 floats that the file does not hold",
         extra_huge)

    def meta_bad(h, d):
        h["__metadata__"] = {"format": 5, "nested": {"a": [1, 2]}}
    edit("metadata-types", "__metadata__ holds a number and an object (must be strings)",
         meta_bad)

    def meta_list(h, d):
        h["__metadata__"] = ["format", "pt"]
    edit("metadata-list", "__metadata__ is a list", meta_list)

    def tensor_is_list(h, d):
        h[main_tensor(h)] = ["F32", [1000, 32]]
    edit("tensorinfo-list", "the embedding's tensor info is a list, not an object",
         tensor_is_list)

    # Raw JSON header replacements.
    for raw, label in [(b"[]", "a JSON array"), (b"null", "null"), (b"42", "a number"),
                       (b'"x"', "a string"), (b"{}", "an empty object"),
                       (b"\xef\xbb\xbf{}", "a BOM then {}"), (b"\xff\xfe\xfd\xfc", "invalid UTF-8"),
                       (b"[" * 100000 + b"]" * 100000, "an array nested 100000 deep"),
                       (b'{"a":' * 50000 + b"1" + b"}" * 50000, "objects nested 50000 deep"),
                       (b"{" + b" " * 4000, "an unterminated object")]:
        c, b = new("rawheader-" + label.split(" ")[-1][:12], "JSON header replaced by %s" % label)
        header, data, _ = st_parse(b)
        c.write("model.safetensors", st_build(None, data, raw_header=raw))

    c, b = new("dup-key", "the embedding appears twice in the header (duplicate JSON key, "
               "second copy with a huge shape)")
    header, data, _ = st_parse(b)
    t = main_tensor(header)
    raw = json.dumps(header, separators=(",", ":"))
    dup = json.dumps({"dtype": "F32", "shape": [2**40], "data_offsets": [0, 4]})
    raw = raw[:-1] + ",%s:%s}" % (json.dumps(t), dup)
    c.write("model.safetensors", st_build(None, data, raw_header=raw))

    c, b = new("header-nan-shape", "a shape holds the JSON literal NaN")
    header, data, _ = st_parse(b)
    t = main_tensor(header)
    header[t]["shape"] = "__NAN__"
    raw = json.dumps(header, separators=(",", ":")).replace('"__NAN__"', "[NaN,32]")
    c.write("model.safetensors", st_build(None, data, raw_header=raw))

    c, b = new("header-bigint", "a shape holds 1e400 and an integer of 40 digits")
    header, data, _ = st_parse(b)
    t = main_tensor(header)
    header[t]["shape"] = "__BIG__"
    raw = json.dumps(header, separators=(",", ":")).replace(
        '"__BIG__"', "[1e400,1234567890123456789012345678901234567890]")
    c.write("model.safetensors", st_build(None, data, raw_header=raw))

    # Valid but unusual storage: the engine must either run or refuse cleanly.
    def to_f16(h, d):
        out = bytearray()
        for t in tensors_of(h):
            s, e = h[t]["data_offsets"]
            vals = struct.unpack("<%df" % ((e - s) // 4), d[s:e])
            start = len(out)
            out += struct.pack("<%de" % len(vals), *vals)
            h[t]["dtype"] = "F16"
            h[t]["data_offsets"] = [start, len(out)]
        return h, bytes(out)
    edit("valid-all-F16", "whole model converted to a valid F16 safetensors (not broken)",
         to_f16, "llama-causal-lm")
    edit("valid-all-F16", "whole model converted to a valid F16 safetensors (not broken)",
         to_f16, "bert-sequence-classification")

    def to_bf16(h, d):
        out = bytearray()
        for t in tensors_of(h):
            s, e = h[t]["data_offsets"]
            start = len(out)
            for k in range(s, e, 4):
                out += d[k + 2:k + 4]
            h[t]["dtype"] = "BF16"
            h[t]["data_offsets"] = [start, len(out)]
        return h, bytes(out)
    edit("valid-all-BF16", "whole model converted to a valid BF16 safetensors (not broken)",
         to_bf16, "qwen2-causal-lm")

    # The file itself.
    c, b = new("missing", "model.safetensors removed (no weights at all)")
    c.remove("model.safetensors")
    c, b = new("is-directory", "model.safetensors is a directory")
    c.remove("model.safetensors")
    os.makedirs(c.path("model.safetensors"))
    c, b = new("symlink-loop", "model.safetensors is a symlink to itself")
    c.remove("model.safetensors")
    os.symlink("model.safetensors", c.path("model.safetensors"))
    c, b = new("symlink-dangling", "model.safetensors is a dangling symlink")
    c.remove("model.safetensors")
    os.symlink("/nonexistent/model.safetensors", c.path("model.safetensors"))
    c, b = new("random-bytes", "model.safetensors replaced by 4 KiB of random bytes")
    c.write("model.safetensors", bytes(rng.randrange(256) for _ in range(4096)))
    c, b = new("is-gguf", "model.safetensors holds a GGUF header")
    c.write("model.safetensors", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    c, b = new("is-devnull", "model.safetensors is a symlink to /dev/zero (endless zeros)")
    c.remove("model.safetensors")
    os.symlink("/dev/zero", c.path("model.safetensors"))

    # Sharded checkpoints.
    def shard(short, what, index, files=None, fixture=None, keep_single=False):
        c, b = new("index-" + short, what, fixture)
        header, data, _ = st_parse(b)
        if not keep_single:
            c.remove("model.safetensors")
        for name, content in (files or {}).items():
            c.write(name, content(header, data, b) if callable(content) else content)
        c.write("model.safetensors.index.json",
                index if isinstance(index, (bytes, str)) else json.dumps(index(header)))
        return c

    def split_halves(which):
        def go(h, d, b):
            names = tensors_of(h)
            half = names[:len(names) // 2] if which == 0 else names[len(names) // 2:]
            sub = {k: h[k] for k in half}
            out = bytearray()
            for k in half:
                s, e = h[k]["data_offsets"]
                start = len(out)
                out += d[s:e]
                sub[k] = dict(h[k], data_offsets=[start, len(out)])
            return st_build(sub, bytes(out))
        return go

    def halves_index(h):
        names = tensors_of(h)
        return {"metadata": {}, "weight_map": {
            k: ("model-00001-of-00002.safetensors" if i < len(names) // 2
                else "model-00002-of-00002.safetensors") for i, k in enumerate(names)}}
    shard("missing-shard", "sharded: the index lists a shard that is not there", halves_index,
          {"model-00001-of-00002.safetensors": split_halves(0)})
    shard("valid", "sharded into two valid shards (not broken)", halves_index,
          {"model-00001-of-00002.safetensors": split_halves(0),
           "model-00002-of-00002.safetensors": split_halves(1)})
    shard("trunc-shard", "sharded: the second shard truncated", halves_index,
          {"model-00001-of-00002.safetensors": split_halves(0),
           "model-00002-of-00002.safetensors": lambda h, d, b: split_halves(1)(h, d, b)[:100]})
    shard("incomplete-map", "sharded: the index maps only half of the tensors",
          lambda h: {"weight_map": {k: "model-00001-of-00002.safetensors"
                                    for k in tensors_of(h)[:len(tensors_of(h)) // 2]}},
          {"model-00001-of-00002.safetensors": split_halves(0)})
    shard("invalid-json", "sharded: index is invalid JSON", "{\"weight_map\": {",
          {"model-00001-of-00002.safetensors": split_halves(0)})
    shard("map-list", "sharded: weight_map is a list", json.dumps({"weight_map": [1, 2]}))
    shard("map-numbers", "sharded: weight_map values are numbers",
          lambda h: {"weight_map": {k: 1 for k in tensors_of(h)}})
    shard("traversal", "sharded: the index points at ../../../../../../etc/passwd",
          lambda h: {"weight_map": {k: "../../../../../../../../etc/passwd"
                                    for k in tensors_of(h)}})
    shard("absolute", "sharded: the index points at /dev/zero",
          lambda h: {"weight_map": {k: "/dev/zero" for k in tensors_of(h)}})
    shard("empty-map", "sharded: weight_map is empty", json.dumps({"weight_map": {}}))
    shard("to-directory", "sharded: the index points at the model folder itself",
          lambda h: {"weight_map": {k: "." for k in tensors_of(h)}})

    # pytorch_model.bin (pickle in a zip) when there is no safetensors.
    def pickle_case(short, what, content):
        c, b = new("bin-" + short, what)
        c.remove("model.safetensors")
        c.write("pytorch_model.bin", content)
    pickle_case("empty", "only a pytorch_model.bin, and it is empty", b"")
    pickle_case("random", "only a pytorch_model.bin of 2 KiB random bytes",
                bytes(rng.randrange(256) for _ in range(2048)))
    pickle_case("zip-header", "only a pytorch_model.bin: a truncated zip local header",
                b"PK\x03\x04" + bytes(20))
    pickle_case("zip-empty", "only a pytorch_model.bin: an empty zip archive",
                b"PK\x05\x06" + bytes(18))
    pickle_case("pickle-raw", "only a pytorch_model.bin: a bare (legacy) pickle of a dict",
                b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.")
    pickle_case("pickle-list", "only a pytorch_model.bin: a bare pickle of a list",
                b"\x80\x02]q\x00(" + b"K\x01" * 16 + b"e.")


# ---------------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------------

ALIASES = {
    "layers": ["num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers"],
    "hidden": ["hidden_size", "n_embd", "d_model", "dim"],
    "heads": ["num_attention_heads", "n_head", "num_heads", "n_heads",
              "encoder_attention_heads"],
    "inter": ["intermediate_size", "n_inner", "d_ff", "hidden_dim", "encoder_ffn_dim"],
    "vocab": ["vocab_size"],
    "maxpos": ["max_position_embeddings", "n_positions"],
    "eps": ["layer_norm_eps", "rms_norm_eps", "layer_norm_epsilon"],
    "head_dim": ["head_dim", "d_kv"],
    "kv_heads": ["num_key_value_heads"],
    "model_type": ["model_type"],
    "architectures": ["architectures"],
    "rope_theta": ["rope_theta"],
}

CFG_FIXTURES = [
    "bert-sequence-classification", "llama-causal-lm", "gpt2-causal-lm", "t5-seq2seq-lm",
    "distilbert-token-classification", "qwen2-causal-lm", "deberta-v2-nli",
    "bart-seq2seq-lm", "gemma3-causal-lm", "bert-question-answering", "marian-seq2seq-lm",
    "roberta-masked-lm", "xlm-roberta-sequence-classification", "deberta-v2-base",
    "distilbert-masked-lm", "bert-multi-label-classification", "roberta-question-answering",
]

CAUSAL = ["llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm", "gpt2-causal-lm"]
SEQ2SEQ = ["t5-seq2seq-lm", "bart-seq2seq-lm", "marian-seq2seq-lm"]
LABELLED = ["bert-sequence-classification", "distilbert-token-classification",
            "roberta-nli", "deberta-v2-sequence-classification",
            "xlm-roberta-token-classification", "bert-multi-label-classification"]

MISSING = object()


def gen_config(corpus):
    rng = corpus.rng
    counter = [0]

    def set_field(cfg, role, value):
        keys = [k for k in ALIASES.get(role, [role]) if k in cfg] or [ALIASES.get(role,
                                                                               [role])[0]]
        for k in keys[:1]:
            if value is MISSING:
                cfg.pop(k, None)
            else:
                cfg[k] = value
        return keys[0]

    # Values that most often break shape arithmetic go to every fixture of the list.
    sweep = {("layers", "0"), ("hidden", "0"), ("hidden", "7"), ("heads", "0"),
             ("heads", "3 (does not divide hidden)"), ("inter", "0"), ("vocab", "0"),
             ("maxpos", "0"), ("maxpos", "1"), ("head_dim", "0"), ("kv_heads", "0")}

    def edit(role, value, label, fixtures=None, per=2):
        if (role, label) in sweep:
            per = len(fixtures or CFG_FIXTURES)
        for _ in range(per):
            counter[0] += 1
            f = rotate(fixtures or CFG_FIXTURES, counter[0])
            c = corpus.case("cfg", "%s-%s" % (role, label), "", f)
            cfg = c.json("config.json")
            key = set_field(cfg, role, value)
            c.what = "config.json %s %s" % (key, "removed" if value is MISSING else
                                            "= " + label)
            c.write_json("config.json", cfg)

    for v, l in [(0, "0"), (-1, "-1"), (10**9, "10**9"), (2**64, "2**64"), (1.5, "1.5"),
                 ("2", "string"), (None, "null"), (3, "3 (more than the weights)"),
                 (1, "1 (fewer than the weights)"), (MISSING, "missing")]:
        edit("layers", v, l)
    for v, l in [(0, "0"), (7, "7"), (2**40, "2**40"), (64, "64 (weights are 32)"),
                 (-32, "-32"), (MISSING, "missing"), ([32], "[32]")]:
        edit("hidden", v, l)
    for v, l in [(0, "0"), (3, "3 (does not divide hidden)"), (2**31, "2**31"), (-4, "-4"),
                 (64, "64 (head_dim 0)"), (1, "1"), (MISSING, "missing")]:
        edit("heads", v, l)
    for v, l in [(0, "0"), (2**40, "2**40"), (65, "65"), (-1, "-1")]:
        edit("inter", v, l)
    for v, l in [(0, "0"), (2**40, "2**40"), (10, "10 (smaller than the tokenizer)"),
                 (1001, "1001 (weights have 1000)"), (-1, "-1"), (MISSING, "missing")]:
        edit("vocab", v, l)
    for v, l in [(0, "0"), (1, "1"), (2**62, "2**62"), (-1, "-1"), (4, "4")]:
        edit("maxpos", v, l)
    for v, l in [(2**40, "2**40"), (0, "0"), (3, "3"), (-8, "-8")]:
        edit("head_dim", v, l, CAUSAL + ["t5-seq2seq-lm"])
    for v, l in [(0, "0"), (3, "3 (does not divide heads)"), (2**40, "2**40"), (8, "8 > heads")]:
        edit("kv_heads", v, l, ["llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm"])
    for v, l in [(-1.0, "-1"), (0, "0"), (1e308, "1e308"), ("abc", "string")]:
        edit("eps", v, l)
    for v, l in [("unknown-arch", "unknown"), (MISSING, "missing"), (42, "42"), ("", "empty"),
                 (None, "null"), (["bert"], "list")]:
        edit("model_type", v, l)
    for v, l in [("LlamaForCausalLM", "a string"), ([42], "[42]"), ([], "[]"),
                 (["NopeForEverything"], "unknown class"), (None, "null"),
                 (["BertForSequenceClassification", "GPT2LMHeadModel"], "two classes")]:
        edit("architectures", v, l)
    for v, l in [(0, "0"), (-1.0, "-1"), (1e308, "1e308"), ("x", "string")]:
        edit("rope_theta", v, l, ["llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm"])

    rope_scalings = [
        ({"type": "linear", "factor": 0}, "linear factor 0"),
        ({"type": "linear", "factor": -1}, "linear factor -1"),
        ({"rope_type": "linear", "factor": 1e308}, "linear factor 1e308"),
        ({"rope_type": "llama3", "factor": 8}, "llama3 without its fields"),
        ({"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 1,
          "original_max_position_embeddings": 8192}, "llama3 low == high freq factor"),
        ({"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4,
          "original_max_position_embeddings": 0}, "llama3 original max 0"),
        ({"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 0}, "yarn"),
        ({"rope_type": "dynamic", "factor": 0}, "dynamic factor 0"),
        ({"rope_type": "nonsense"}, "unknown type"),
        ("linear", "a string"), ([1, 2], "a list"), ({}, "an empty object"),
        ({"type": "linear", "factor": "two"}, "factor a string"),
        ({"rope_type": "longrope", "short_factor": [], "long_factor": [1]}, "longrope empty"),
    ]
    for k, (v, l) in enumerate(rope_scalings):
        f = rotate(["llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm"], k)
        c = corpus.case("cfg", "rope-scaling-%d" % k, "config.json rope_scaling = %s (%s)" % (
            json.dumps(v)[:80], l), f)
        cfg = c.json("config.json")
        cfg["rope_scaling"] = v
        c.write_json("config.json", cfg)

    # id2label.
    id2labels = [
        ({str(i): "L%d" % i for i in range(100000)}, "100000 labels (head has 3)"),
        ({"a": "x", "b": "y", "c": "z"}, "non-numeric keys"),
        ({"-1": "neg", "0": "a", "1": "b"}, "a negative key"),
        ({"99999999999999999999": "x", "0": "a", "1": "b"}, "a key beyond u64"),
        ({"0": "a", "5": "b", "9": "c"}, "gaps in the keys"),
        ({}, "empty"),
        (["a", "b", "c"], "a list"),
        ({"0": 1, "1": 2, "2": 3}, "numbers as labels"),
        ({"0": None, "1": None, "2": None}, "null labels"),
        ("labels", "a string"),
        ({"0": "a"}, "fewer labels than the head"),
    ]
    for k, (v, l) in enumerate(id2labels):
        f = rotate(LABELLED, k)
        c = corpus.case("cfg", "id2label-%d" % k, "config.json id2label: %s" % l, f)
        cfg = c.json("config.json")
        cfg["id2label"] = v
        c.write("config.json", json.dumps(cfg, separators=(",", ":")))
    for k, (v, l) in enumerate([(10**6, "10**6"), (0, "0"), (-1, "-1"), (2**40, "2**40")]):
        f = rotate(LABELLED, k + 3)
        c = corpus.case("cfg", "num-labels-%s" % l, "config.json num_labels = %s, id2label "
                        "removed" % l, f)
        cfg = c.json("config.json")
        cfg.pop("id2label", None)
        cfg.pop("label2id", None)
        cfg["num_labels"] = v
        c.write_json("config.json", cfg)
    c = corpus.case("cfg", "label2id-mismatch", "config.json label2id disagrees with id2label "
                    "and has ids out of range", "bert-sequence-classification")
    cfg = c.json("config.json")
    cfg["label2id"] = {"x": 10**9, "y": -3}
    c.write_json("config.json", cfg)
    c = corpus.case("cfg", "problem-type", "config.json problem_type unknown",
                    "bert-multi-label-classification")
    cfg = c.json("config.json")
    cfg["problem_type"] = "quantum_classification"
    c.write_json("config.json", cfg)

    # Whole-file breakage.
    raws = [
        (b"", "empty file"), (b"{", "just '{'"), (b"not json at all", "not JSON"),
        (b"[]", "a JSON array"), (b"null", "null"), (b"42", "a number"),
        (b"\xef\xbb\xbf", "a BOM only"), (b"\xff\xfe{\x00}\x00", "UTF-16"),
        (b"\xc3\x28\xa0\xa1", "invalid UTF-8"),
        (b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}", "an array nested 100000 deep"),
        (b'{"a":' * 100000 + b"1" + b"}" * 100000, "objects nested 100000 deep"),
    ]
    for k, (raw, l) in enumerate(raws):
        f = rotate(CFG_FIXTURES, k)
        c = corpus.case("cfg", "raw-%d" % k, "config.json is %s" % l, f)
        c.write("config.json", raw)
    for k in range(6):
        f = rotate(CFG_FIXTURES, k + 5)
        c = corpus.case("cfg", "trunc-%d" % k, "", f)
        b = c.read("config.json")
        at = rng.randrange(1, len(b) - 1)
        c.what = "config.json truncated at byte %d of %d" % (at, len(b))
        c.write("config.json", b[:at])
    for k in range(4):
        f = rotate(CFG_FIXTURES, k + 2)
        c = corpus.case("cfg", "flip-%d" % k, "", f)
        b = c.read("config.json")
        pos, bit = rng.randrange(len(b)), rng.randrange(8)
        c.what = "config.json bit flip at byte %d bit %d" % (pos, bit)
        c.write("config.json", flip_bit(b, pos, bit))
    for lit in ["NaN", "Infinity", "-Infinity", "1e999", "-0", "123456789012345678901234567890"]:
        for role in ("eps", "hidden"):
            counter[0] += 1
            f = rotate(CFG_FIXTURES, counter[0])
            c = corpus.case("cfg", "literal-%s-%s" % (role, lit[:12]), "", f)
            cfg = c.json("config.json")
            key = set_field(cfg, role, "__LIT__")
            c.what = "config.json %s = %s (raw JSON literal)" % (key, lit)
            c.write("config.json", json.dumps(cfg).replace('"__LIT__"', lit))
    c = corpus.case("cfg", "dup-key", "config.json has hidden_size twice (second = 2**40)",
                    "bert-sequence-classification")
    c.write("config.json", c.read("config.json").rstrip()[:-1] + b', "hidden_size": '
            + str(2**40).encode() + b"}")
    c = corpus.case("cfg", "missing", "config.json removed", "llama-causal-lm")
    c.remove("config.json")
    c = corpus.case("cfg", "missing", "config.json removed", "bert-token-classification")
    c.remove("config.json")
    c = corpus.case("cfg", "is-dir", "config.json is a directory", "gpt2-causal-lm")
    c.remove("config.json")
    os.makedirs(c.path("config.json"))

    # Family-specific fields.
    specific = [
        ("gpt2-causal-lm", "activation_function", "no_such_act"),
        ("llama-causal-lm", "hidden_act", "no_such_act"),
        ("llama-causal-lm", "hidden_act", 5),
        ("bert-sequence-classification", "hidden_act", ["gelu"]),
        ("qwen2-causal-lm", "tie_word_embeddings", False),
        ("llama-causal-lm", "tie_word_embeddings", "yes"),
        ("llama-causal-lm", "dtype", "float8_e4m3"),
        ("llama-causal-lm", "torch_dtype", 5),
        ("llama-causal-lm", "bos_token_id", 10**9),
        ("llama-causal-lm", "eos_token_id", [10**9, -1]),
        ("qwen2-causal-lm", "pad_token_id", 2**40),
        ("gemma3-causal-lm", "sliding_window", 0),
        ("gemma3-causal-lm", "sliding_window", 2**62),
        ("gemma3-causal-lm", "sliding_window", -1),
        ("gemma3-causal-lm", "layer_types", ["full_attention"]),
        ("gemma3-causal-lm", "layer_types", ["weird_attention", "full_attention"]),
        ("gemma3-causal-lm", "query_pre_attn_scalar", 0),
        ("gemma3-causal-lm", "final_logit_softcapping", 0),
        ("gemma3-causal-lm", "final_logit_softcapping", -1.0),
        ("gemma3-causal-lm", "attn_logit_softcapping", 0),
        ("gemma3-causal-lm", "rope_local_base_freq", 0),
        ("gemma3-causal-lm", "_sliding_window_pattern", 0),
        ("qwen2-causal-lm", "use_sliding_window", True),
        ("qwen2-causal-lm", "sliding_window", 0),
        ("qwen2-causal-lm", "max_window_layers", -5),
        ("t5-seq2seq-lm", "relative_attention_num_buckets", 0),
        ("t5-seq2seq-lm", "relative_attention_max_distance", 0),
        ("t5-seq2seq-lm", "relative_attention_num_buckets", 2**40),
        ("t5-seq2seq-lm", "feed_forward_proj", "gated-"),
        ("t5-seq2seq-lm", "feed_forward_proj", "weird-act"),
        ("t5-seq2seq-lm", "num_decoder_layers", 0),
        ("t5-seq2seq-lm", "num_decoder_layers", 10**9),
        ("t5-seq2seq-lm", "decoder_start_token_id", 10**9),
        ("t5-seq2seq-lm", "task_specific_params", {"summarization": {"prefix": 5}}),
        ("t5-seq2seq-lm", "task_specific_params", "x"),
        ("bart-seq2seq-lm", "decoder_start_token_id", 10**6),
        ("bart-seq2seq-lm", "forced_eos_token_id", 10**6),
        ("bart-seq2seq-lm", "decoder_layers", 0),
        ("bart-seq2seq-lm", "decoder_attention_heads", 3),
        ("bart-seq2seq-lm", "decoder_ffn_dim", 2**40),
        ("marian-seq2seq-lm", "decoder_vocab_size", 10),
        ("marian-seq2seq-lm", "decoder_vocab_size", 2**40),
        ("marian-seq2seq-lm", "share_encoder_decoder_embeddings", False),
        ("marian-seq2seq-lm", "pad_token_id", 10**6),
        ("marian-seq2seq-lm", "decoder_start_token_id", -1),
        ("bert-sequence-classification", "type_vocab_size", 0),
        ("bert-token-classification", "position_embedding_type", "relative_key"),
        ("bert-question-answering", "pad_token_id", 10**9),
        ("roberta-sequence-classification", "pad_token_id", 10**9),
        ("roberta-sequence-classification", "max_position_embeddings", 2),
        ("xlm-roberta-masked-lm", "pad_token_id", -1),
        ("distilbert-sequence-classification", "sinusoidal_pos_embds", True),
        ("distilbert-sequence-classification", "dim", 7),
        ("distilbert-question-answering", "n_heads", 0),
        ("deberta-v2-sequence-classification", "position_buckets", 0),
        ("deberta-v2-sequence-classification", "max_relative_positions", 0),
        ("deberta-v2-token-classification", "max_relative_positions", 2**40),
        ("deberta-v2-question-answering", "pos_att_type", ["xyz"]),
        ("deberta-v2-question-answering", "pos_att_type", "p2c|c2p"),
        ("deberta-v2-masked-lm", "relative_attention", False),
        ("deberta-v2-masked-lm", "share_att_key", False),
        ("deberta-v2-nli", "norm_rel_ebd", "nonsense"),
        ("deberta-v2-base", "type_vocab_size", 2**40),
        ("deberta-v2-base", "position_biased_input", True),
        ("deberta-v2-multi-label-classification", "pooler_hidden_size", 7),
    ]
    for f, key, value in specific:
        c = corpus.case("cfg", "%s-%s" % (key, str(value)[:16]),
                        "config.json %s = %s" % (key, json.dumps(value)), f)
        cfg = c.json("config.json")
        cfg[key] = value
        c.write_json("config.json", cfg)


# ---------------------------------------------------------------------------------------------
# generation_config.json
# ---------------------------------------------------------------------------------------------

GEN_FIXTURES = ["llama-causal-lm", "gpt2-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm",
                "t5-seq2seq-lm", "bart-seq2seq-lm", "marian-seq2seq-lm"]


def gen_argv(fixture):
    """The task call without --max-new-tokens / --do-sample, so generation_config decides."""
    argv = task_argv(fixture)
    out = []
    skip = 0
    for a in argv:
        if skip:
            skip -= 1
            continue
        if a in ("--max-new-tokens", "--do-sample"):
            skip = 1
            continue
        out.append(a)
    return out


def gen_generation(corpus):
    rng = corpus.rng
    edits = [
        {"num_beams": 10**6}, {"num_beams": 0}, {"num_beams": -1}, {"num_beams": 2**40},
        {"num_return_sequences": 10**9}, {"num_return_sequences": 0},
        {"num_return_sequences": 10**9, "do_sample": True},
        {"num_beams": 2, "num_return_sequences": 5},
        {"max_new_tokens": 10**12}, {"max_new_tokens": 0}, {"max_new_tokens": -1},
        {"max_length": -1}, {"max_length": 0}, {"max_length": 10**12}, {"max_length": 2**64},
        {"min_length": 10**9}, {"min_new_tokens": 10**9}, {"min_new_tokens": 10**9,
                                                          "max_new_tokens": 4},
        {"top_k": 2**40, "do_sample": True}, {"top_k": 0, "do_sample": True},
        {"top_k": -1, "do_sample": True},
        {"top_p": 7, "do_sample": True}, {"top_p": 0, "do_sample": True},
        {"top_p": -1, "do_sample": True},
        {"temperature": -1, "do_sample": True}, {"temperature": 0, "do_sample": True},
        {"temperature": 1e308, "do_sample": True}, {"temperature": 1e-308, "do_sample": True},
        {"temperature": 1e-45, "do_sample": True},
        {"typical_p": 0, "do_sample": True}, {"typical_p": 2, "do_sample": True},
        {"min_p": 2, "do_sample": True}, {"min_p": -1, "do_sample": True},
        {"epsilon_cutoff": 1, "do_sample": True}, {"eta_cutoff": 1, "do_sample": True},
        {"repetition_penalty": 0}, {"repetition_penalty": -1}, {"repetition_penalty": 1e308},
        {"no_repeat_ngram_size": 10**9}, {"no_repeat_ngram_size": 1, "max_new_tokens": 50},
        {"length_penalty": 1e308, "num_beams": 3}, {"early_stopping": "sometimes"},
        {"eos_token_id": 10**12}, {"eos_token_id": -1}, {"eos_token_id": "x"},
        {"eos_token_id": [[1, 2]]}, {"eos_token_id": []},
        {"bos_token_id": 10**12}, {"pad_token_id": 10**12}, {"pad_token_id": -7},
        {"decoder_start_token_id": 10**9}, {"decoder_start_token_id": [1, 2]},
        {"forced_bos_token_id": 10**9}, {"forced_eos_token_id": 10**9},
        {"bad_words_ids": [[10**9]]}, {"bad_words_ids": [[]]}, {"bad_words_ids": "x"},
        {"suppress_tokens": [10**9]}, {"begin_suppress_tokens": [-1]},
        {"sequence_bias": {"x": 1}}, {"num_beam_groups": 3, "num_beams": 4,
                                      "diversity_penalty": 1.0},
        {"num_beams": "4"}, {"do_sample": "yes"}, {"temperature": None}, {"top_k": 1.5},
        {"max_new_tokens": "many"}, {"stop_strings": [""]}, {"stop_strings": ""},
        {"stop_strings": [None]}, {"max_time": -1}, {"guidance_scale": 0},
        {"watermarking_config": {"bias": 1e308}}, {"cache_implementation": "nonsense"},
        {"use_cache": "no"},
    ]
    for k, e in enumerate(edits):
        f = rotate(GEN_FIXTURES, k)
        c = corpus.case("gen", "-".join("%s-%s" % (a, str(b)[:10]) for a, b in e.items()),
                        "generation_config.json " + json.dumps(e)[:150], f, gen_argv(f))
        g = c.json("generation_config.json")
        g.update(e)
        c.write_json("generation_config.json", g)
    c = corpus.case("gen", "eos-list-1e6", "generation_config.json eos_token_id is a list of "
                    "10**6 ids", "llama-causal-lm", gen_argv("llama-causal-lm"))
    g = c.json("generation_config.json")
    g["eos_token_id"] = "__EOS__"
    c.write("generation_config.json", json.dumps(g).replace(
        '"__EOS__"', "[" + ",".join(str(i) for i in range(3, 10**6 + 3)) + "]"))
    for k, (raw, l) in enumerate([(b"", "empty"), (b"{", "just '{'"), (b"[]", "an array"),
                                  (b"null", "null"), (b"\xff\xfe", "invalid UTF-8"),
                                  (b'{"max_new_tokens": NaN}', "NaN literal"),
                                  (b'{"temperature": 1e999, "do_sample": true}', "1e999")]):
        f = rotate(GEN_FIXTURES, k)
        c = corpus.case("gen", "raw-%d" % k, "generation_config.json is %s" % l, f, gen_argv(f))
        c.write("generation_config.json", raw)
    for k in range(4):
        f = rotate(GEN_FIXTURES, k + 1)
        c = corpus.case("gen", "trunc-%d" % k, "", f, gen_argv(f))
        b = c.read("generation_config.json")
        at = rng.randrange(1, len(b) - 1)
        c.what = "generation_config.json truncated at byte %d of %d" % (at, len(b))
        c.write("generation_config.json", b[:at])


# ---------------------------------------------------------------------------------------------
# tokenizer.json / tokenizer_config.json / vocab files
# ---------------------------------------------------------------------------------------------

TOK_FIXTURES = ["bert-sequence-classification", "llama-causal-lm", "gpt2-causal-lm",
                "t5-seq2seq-lm", "deberta-v2-token-classification", "qwen2-causal-lm",
                "xlm-roberta-masked-lm", "bart-seq2seq-lm", "gemma3-causal-lm",
                "marian-seq2seq-lm", "distilbert-question-answering", "roberta-nli"]


def gen_tokenizer(corpus):
    rng = corpus.rng
    k_ = [0]

    def fx(fixtures=None):
        k_[0] += 1
        return rotate(fixtures or TOK_FIXTURES, k_[0])

    def tj_edit(short, what, fn, fixtures=None, also_tokenize=True):
        """The same broken tokenizer.json, run through the task and through `tokenize`."""
        f = fx(fixtures)
        data = None
        for argv in ([task_argv(f)] + ([tokenize_argv()] if also_tokenize else [])):
            c = corpus.case("tok", short + ("-tokcmd" if argv[0] == "tokenize" else ""), what,
                            f, argv)
            if data is None:
                t = c.json("tokenizer.json")
                res = fn(t, c)
                if res is None:
                    res = t
                data = res if isinstance(res, bytes) else json.dumps(
                    res, ensure_ascii=False).encode("utf-8")
            c.write("tokenizer.json", data)

    for k in range(6):
        def trunc(t, c):
            b = c.read("tokenizer.json")
            return b[:rng.randrange(1, len(b) - 1)]
        tj_edit("trunc-%d" % k, "tokenizer.json truncated at a random point", trunc)
    for raw, l in [(b"", "empty"), (b"{", "just '{'"), (b"null", "null"), (b"[]", "an array"),
                   (b"\xff\xfe\x00", "invalid UTF-8"), (b"{}", "an empty object"),
                   (b'{"model":' + b"[" * 100000 + b"]" * 100000 + b"}", "nested 100000 deep")]:
        tj_edit("raw-" + l.split(" ")[0], "tokenizer.json is %s" % l, lambda t, c, r=raw: r)
    for k in range(4):
        def flip(t, c):
            b = bytearray(c.read("tokenizer.json"))
            for _ in range(3):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            return bytes(b)
        tj_edit("flip-%d" % k, "tokenizer.json with 3 random bit flips", flip)

    def setm(key, value):
        def go(t, c):
            if value is MISSING:
                t["model"].pop(key, None)
            else:
                t["model"][key] = value
        return go
    tj_edit("vocab-removed", "tokenizer.json model.vocab removed", setm("vocab", MISSING))
    tj_edit("vocab-removed", "tokenizer.json model.vocab removed", setm("vocab", MISSING))
    tj_edit("vocab-empty-obj", "tokenizer.json model.vocab = {}", setm("vocab", {}),
            ["bert-sequence-classification", "gpt2-causal-lm", "llama-causal-lm"])
    tj_edit("vocab-empty-list", "tokenizer.json model.vocab = [] (Unigram)", setm("vocab", []),
            ["t5-seq2seq-lm", "xlm-roberta-masked-lm", "deberta-v2-token-classification"])
    tj_edit("merges-removed", "tokenizer.json model.merges removed", setm("merges", MISSING),
            ["gpt2-causal-lm", "qwen2-causal-lm", "llama-causal-lm"])
    tj_edit("merges-garbage", "tokenizer.json merges reference unknown tokens",
            setm("merges", [["zzq", "qzz"], ["a"], "x y z"]),
            ["gpt2-causal-lm", "qwen2-causal-lm", "llama-causal-lm"])
    tj_edit("model-type-unknown", "tokenizer.json model.type = 'Nonsense'",
            setm("type", "Nonsense"))
    tj_edit("model-type-unknown", "tokenizer.json model.type = 'Nonsense'",
            setm("type", "Nonsense"))
    tj_edit("model-null", "tokenizer.json model = null",
            lambda t, c: t.__setitem__("model", None))
    tj_edit("unk-missing", "tokenizer.json unk_token names a token not in the vocab",
            setm("unk_token", "<<no such unk>>"),
            ["bert-sequence-classification", "llama-causal-lm", "gemma3-causal-lm"])
    tj_edit("unk-id-huge", "tokenizer.json (Unigram) unk_id = 10**9", setm("unk_id", 10**9),
            ["t5-seq2seq-lm", "xlm-roberta-masked-lm", "deberta-v2-token-classification",
             "marian-seq2seq-lm"])
    tj_edit("unk-id-huge", "tokenizer.json (Unigram) unk_id = 10**9", setm("unk_id", 10**9),
            ["t5-seq2seq-lm", "xlm-roberta-masked-lm", "deberta-v2-token-classification",
             "marian-seq2seq-lm"])
    tj_edit("wp-maxchars-0", "tokenizer.json WordPiece max_input_chars_per_word = 0",
            setm("max_input_chars_per_word", 0),
            ["bert-sequence-classification", "distilbert-question-answering"])

    def vocab_ids(fn, label):
        def go(t, c):
            v = t["model"].get("vocab")
            if isinstance(v, dict):
                keys = list(v)
                for key in keys[5:10]:
                    v[key] = fn(v[key])
            elif isinstance(v, list):
                for i in range(5, 10):
                    v[i] = [v[i][0], float("nan") if label == "nan" else -1e308]
        return go
    tj_edit("vocab-ids-huge", "tokenizer.json: 5 vocab ids set to 2**40",
            vocab_ids(lambda i: 2**40, "huge"), ["bert-sequence-classification",
                                                 "gpt2-causal-lm", "llama-causal-lm"])
    tj_edit("vocab-ids-beyond", "tokenizer.json: 5 vocab ids set to 10**6 (beyond the model)",
            vocab_ids(lambda i: 10**6 + i, "beyond"), ["bert-sequence-classification",
                                                      "gpt2-causal-lm", "llama-causal-lm",
                                                      "roberta-nli"])
    tj_edit("vocab-ids-neg", "tokenizer.json: 5 vocab ids set to -1",
            vocab_ids(lambda i: -1, "neg"), ["bert-sequence-classification", "qwen2-causal-lm"])
    tj_edit("vocab-ids-dup", "tokenizer.json: 5 vocab ids all set to 7 (duplicates)",
            vocab_ids(lambda i: 7, "dup"), ["bert-sequence-classification", "gpt2-causal-lm"])
    tj_edit("unigram-scores", "tokenizer.json (Unigram): 5 scores -1e308",
            vocab_ids(None, "neg"), ["t5-seq2seq-lm", "xlm-roberta-masked-lm"])

    def added(fn):
        def go(t, c):
            fn(t["added_tokens"])
        return go
    tj_edit("added-id-beyond", "tokenizer.json added_tokens get ids 10**6.. (beyond the model)",
            added(lambda a: [x.__setitem__("id", 10**6 + i) for i, x in enumerate(a)]))
    tj_edit("added-id-beyond", "tokenizer.json added_tokens get ids 10**6.. (beyond the model)",
            added(lambda a: [x.__setitem__("id", 10**6 + i) for i, x in enumerate(a)]))
    tj_edit("added-new-beyond", "tokenizer.json: a new added token 'hello' with id 50000",
            added(lambda a: a.append({"id": 50000, "content": "hello", "single_word": False,
                                      "lstrip": False, "rstrip": False, "normalized": False,
                                      "special": False})))
    tj_edit("added-new-beyond", "tokenizer.json: a new added token 'Hello' with id 50000",
            added(lambda a: a.append({"id": 50000, "content": "Hello", "single_word": False,
                                      "lstrip": False, "rstrip": False, "normalized": True,
                                      "special": False})))
    tj_edit("added-id-u32max", "tokenizer.json added_tokens[0].id = 2**32",
            added(lambda a: a[0].__setitem__("id", 2**32)))
    tj_edit("added-empty", "tokenizer.json: an added token with empty content",
            added(lambda a: a.append({"id": 3, "content": "", "special": True})))
    tj_edit("added-null", "tokenizer.json added_tokens = null",
            lambda t, c: t.__setitem__("added_tokens", None))
    tj_edit("normalizer-unknown", "tokenizer.json normalizer type unknown",
            lambda t, c: t.__setitem__("normalizer", {"type": "Nonsense"}))
    tj_edit("pretok-bad-regex", "tokenizer.json pre_tokenizer Split with an invalid regex '('",
            lambda t, c: t.__setitem__("pre_tokenizer", {
                "type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated",
                "invert": False}))
    tj_edit("pretok-slow-regex", "tokenizer.json pre_tokenizer Split with a catastrophic "
            "regex '(a+)+$'", lambda t, c: t.__setitem__("pre_tokenizer", {
                "type": "Split", "pattern": {"Regex": "(a|a)+(a|a)+(a|a)+$"},
                "behavior": "Isolated", "invert": False}))
    tj_edit("pretok-empty-regex", "tokenizer.json pre_tokenizer Split with an empty regex",
            lambda t, c: t.__setitem__("pre_tokenizer", {
                "type": "Split", "pattern": {"Regex": ""}, "behavior": "Isolated",
                "invert": False}))
    tj_edit("decoder-unknown", "tokenizer.json decoder type unknown",
            lambda t, c: t.__setitem__("decoder", {"type": "Nonsense"}))

    def bad_post(t, c):
        t["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<nope>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {}}
    tj_edit("post-unknown-special", "tokenizer.json post_processor uses an undefined special "
            "token", bad_post)

    def post_huge_id(t, c):
        t["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<x>", "type_id": 0}},
                                          {"Sequence": {"id": "A", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                        {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<x>": {"id": "<x>", "ids": [10**9],
                                                          "tokens": ["<x>"]}}}
    tj_edit("post-special-id-huge", "tokenizer.json post_processor adds a special token id "
            "10**9", post_huge_id)

    def post_type_id(t, c):
        t["post_processor"] = {"type": "TemplateProcessing",
                               "single": [{"Sequence": {"id": "A", "type_id": 10**6}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 10**6}},
                                        {"Sequence": {"id": "B", "type_id": 10**6}}],
                               "special_tokens": {}}
    tj_edit("post-type-id-huge", "tokenizer.json post_processor type_id 10**6 (token types)",
            post_type_id, ["bert-sequence-classification", "bert-question-answering",
                           "bert-nli"])
    tj_edit("truncation-0", "tokenizer.json truncation max_length 0",
            lambda t, c: t.__setitem__("truncation", {"direction": "Right", "max_length": 0,
                                                      "strategy": "LongestFirst",
                                                      "stride": 0}))
    tj_edit("truncation-stride", "tokenizer.json truncation stride >= max_length",
            lambda t, c: t.__setitem__("truncation", {"direction": "Right", "max_length": 4,
                                                      "strategy": "LongestFirst",
                                                      "stride": 10}))
    tj_edit("padding-huge", "tokenizer.json padding Fixed(2**40) with pad_id 10**9",
            lambda t, c: t.__setitem__("padding", {
                "strategy": {"Fixed": 2**40}, "direction": "Right", "pad_to_multiple_of": None,
                "pad_id": 10**9, "pad_type_id": 0, "pad_token": "[PAD]"}))
    tj_edit("padding-multiple-0", "tokenizer.json padding pad_to_multiple_of 0",
            lambda t, c: t.__setitem__("padding", {
                "strategy": "BatchLongest", "direction": "Left", "pad_to_multiple_of": 0,
                "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}))

    # A tokenizer from another fixture: ids beyond the model's vocabulary.
    for dst, src in [("xlm-roberta-sequence-classification", "llama-causal-lm"),
                     ("deberta-v2-masked-lm", "bert-masked-lm"),
                     ("t5-seq2seq-lm", "gpt2-causal-lm"),
                     ("marian-seq2seq-lm", "qwen2-causal-lm"),
                     ("llama-causal-lm", "t5-seq2seq-lm"),
                     ("bert-question-answering", "xlm-roberta-question-answering"),
                     ("deberta-v2-nli", "roberta-nli")]:
        for argv in (task_argv(dst), tokenize_argv()):
            c = corpus.case("tok", "foreign-from-%s%s" % (
                src, "-tokcmd" if argv[0] == "tokenize" else ""),
                "tokenizer.json (and tokenizer_config.json) taken from %s" % src, dst, argv)
            for name in ("tokenizer.json", "tokenizer_config.json"):
                c.remove(name)
                link_or_copy(os.path.join(corpus.pool_dir(src), name), c.path(name))
    for f in ["bert-sequence-classification", "gpt2-causal-lm", "t5-seq2seq-lm",
              "marian-seq2seq-lm", "deberta-v2-token-classification", "roberta-nli"]:
        c = corpus.case("tok", "tokenizer-json-missing", "tokenizer.json removed (other "
                        "vocab files left)", f)
        c.remove("tokenizer.json")
    for f in ["bert-sequence-classification", "gpt2-causal-lm"]:
        c = corpus.case("tok", "all-tokenizer-files-missing", "every tokenizer file removed",
                        f)
        for name in os.listdir(c.model):
            if "token" in name or name.startswith("vocab") or name.startswith("merges") or \
                    name.endswith(".spm"):
                c.remove(name)
    c = corpus.case("tok", "vocab-txt-broken", "tokenizer.json removed; vocab.txt is invalid "
                    "UTF-8 and empty lines", "bert-token-classification")
    c.remove("tokenizer.json")
    c.write("vocab.txt", b"\xff\xfe\n\n\n[PAD]\n")
    c = corpus.case("tok", "spm-broken", "tokenizer.json removed; source.spm / target.spm "
                    "truncated", "marian-seq2seq-lm")
    c.remove("tokenizer.json")
    c.write("source.spm", c.read("source.spm")[:100])
    c.write("target.spm", b"")
    c = corpus.case("tok", "merges-txt-broken", "tokenizer.json removed; merges.txt has "
                    "1-token lines, vocab.json is a list", "gpt2-causal-lm")
    c.remove("tokenizer.json")
    c.write("merges.txt", "#version: 0.2\na\nb c d\n\n")
    c.write("vocab.json", "[1, 2, 3]")

    # tokenizer_config.json
    def tc_edit(short, what, fn, fixtures=None, argv_fn=task_argv):
        f = fx(fixtures)
        c = corpus.case("tokcfg", short, what, f, argv_fn(f))
        tc = c.json("tokenizer_config.json")
        res = fn(tc, c)
        if isinstance(res, bytes):
            c.write("tokenizer_config.json", res)
        else:
            c.write_json("tokenizer_config.json", tc if res is None else res)

    for raw, l in [(b"", "empty"), (b"{", "just '{'"), (b"[]", "an array"),
                   (b"\xff", "invalid UTF-8"), (b"null", "null")]:
        tc_edit("raw-" + l.split(" ")[0], "tokenizer_config.json is %s" % l,
                lambda tc, c, r=raw: r)
    for k in range(3):
        def trunc(tc, c):
            b = c.read("tokenizer_config.json")
            return b[:rng.randrange(1, len(b) - 1)]
        tc_edit("trunc-%d" % k, "tokenizer_config.json truncated at a random point", trunc)
    for v, l in [(0, "0"), (-1, "-1"), (1e30, "1e30"), (2**64, "2**64"), ("big", "a string")]:
        tc_edit("model-max-length-" + l, "tokenizer_config.json model_max_length = %s" % l,
                lambda tc, c, v=v: tc.__setitem__("model_max_length", v))
    tc_edit("bos-int", "tokenizer_config.json bos_token = 5 (a number)",
            lambda tc, c: tc.__setitem__("bos_token", 5), CAUSAL)
    tc_edit("eos-unknown", "tokenizer_config.json eos_token = '<<no such token>>'",
            lambda tc, c: tc.__setitem__("eos_token", "<<no such token>>"), CAUSAL)
    tc_edit("eos-dict-bad", "tokenizer_config.json eos_token = {'content': 5}",
            lambda tc, c: tc.__setitem__("eos_token", {"content": 5}), CAUSAL)
    tc_edit("pad-unknown", "tokenizer_config.json pad_token unknown",
            lambda tc, c: tc.__setitem__("pad_token", "<<no pad>>"))
    for f in ["bert-masked-lm", "roberta-masked-lm", "deberta-v2-masked-lm",
              "xlm-roberta-masked-lm", "distilbert-masked-lm"]:
        tc_edit("mask-removed", "tokenizer_config.json mask_token removed (and the text has the "
                "old mask)", lambda tc, c: tc.pop("mask_token", None), [f])
        tc_edit("mask-unknown", "tokenizer_config.json mask_token = '<<nomask>>'",
                lambda tc, c: tc.__setitem__("mask_token", "<<nomask>>"), [f])
    tc_edit("added-decoder-bad", "tokenizer_config.json added_tokens_decoder keys not numbers",
            lambda tc, c: tc.__setitem__("added_tokens_decoder", {"x": {"content": "<s>"}}))
    tc_edit("added-decoder-huge", "tokenizer_config.json added_tokens_decoder id 2**40",
            lambda tc, c: tc.__setitem__("added_tokens_decoder", {
                str(2**40): {"content": "<huge>", "special": True}}))
    tc_edit("add-bos-string", "tokenizer_config.json add_bos_token = 'yes'",
            lambda tc, c: tc.__setitem__("add_bos_token", "yes"), CAUSAL)
    tc_edit("padding-side", "tokenizer_config.json padding_side = 'middle'",
            lambda tc, c: tc.__setitem__("padding_side", "middle"))
    tc_edit("tokenizer-class", "tokenizer_config.json tokenizer_class = 'NoSuchTokenizer'",
            lambda tc, c: tc.__setitem__("tokenizer_class", "NoSuchTokenizer"))
    tc_edit("extra-special-huge", "tokenizer_config.json additional_special_tokens: 10000 "
            "entries", lambda tc, c: tc.__setitem__("additional_special_tokens",
                                                     ["<x%d>" % i for i in range(10000)]))
    c = corpus.case("tokcfg", "special-map-broken", "special_tokens_map.json is invalid JSON",
                    "bert-sequence-classification")
    c.write("special_tokens_map.json", "{")
    c = corpus.case("tokcfg", "added-tokens-json-broken", "added_tokens.json maps a token to "
                    "id 10**9", "roberta-nli")
    c.write("added_tokens.json", json.dumps({"<extra>": 10**9}))


# ---------------------------------------------------------------------------------------------
# Chat templates
# ---------------------------------------------------------------------------------------------

NESTED_RANGES = ("{% for a in range(100000) %}{% for b in range(100000) %}"
                 "{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}")
NESTED_RANGES_SILENT = ("{% for a in range(100000) %}{% for b in range(100000) %}"
                        "{% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}")
DOUBLING_NS = ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
               "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}")
DOUBLING_UNROLLED = "{% set s = 'ab' %}" + "{% set s = s ~ s %}" * 64 + "{{ s }}"
DOUBLING_FILTER = "{% set s = 'ab' %}" + "{% set s = [s, s] | join %}" * 64 + "{{ s | length }}"
BIG_PRINT = "{% for i in range(1000) %}{{ 'x' * 100000000 }}{% endfor %}"
HUGE_MULT = "{{ 'x' * 1000000000000000000 }}"
LIST_MULT = "{{ ([1] * 1000000000) | length }}"
RECURSE_MACRO = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
FANOUT_MACRO = ("{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                "{% endmacro %}{{ f(0) }}")
RECURSE_CALLER = ("{% macro f() %}{{ caller() }}{% endmacro %}"
                  "{% call f() %}{% call f() %}{{ messages }}{% endcall %}{% endcall %}"
                  + "{% macro g(n) %}{% call f() %}{{ g(n) }}{% endcall %}{% endmacro %}"
                  "{{ g(1) }}")
DEEP_PARENS = "{{ " + "(" * 100000 + "1" + ")" * 100000 + " }}"
DEEP_IFS = "{% if true %}" * 5000 + "x" + "{% endif %}" * 5000
DEEP_LIST = "{{ " + "[" * 100000 + "]" * 100000 + " }}"
MANY_FILTERS = "{{ 'x'" + " | upper" * 100000 + " }}"

CHAT_TEMPLATES = [
    (NESTED_RANGES, "three nested range(100000) loops printing 'x'"),
    (NESTED_RANGES_SILENT, "three nested range(100000) loops with an empty body"),
    ("{% for a in range(1000000000000) %}{% endfor %}", "range(10**12)"),
    ("{% for a in range(0, 10, 0) %}x{% endfor %}", "range with step 0"),
    (DOUBLING_NS, "a string doubled 64 times through a namespace"),
    (DOUBLING_UNROLLED, "a string doubled 64 times, unrolled {% set s = s ~ s %}"),
    (DOUBLING_FILTER, "a string doubled 64 times with join"),
    (BIG_PRINT, "prints 'x' * 100000000 a thousand times"),
    (HUGE_MULT, "'x' * 10**18"),
    ("{{ 'x' * -1 }}{{ 'ab' * 9223372036854775807 }}", "'ab' * i64::MAX"),
    (LIST_MULT, "[1] * 10**9"),
    (RECURSE_MACRO, "unbounded macro recursion"),
    (FANOUT_MACRO, "macro recursion with fan-out 2, depth 40 (2**40 calls)"),
    (RECURSE_CALLER, "recursion through caller()"),
    ("{{ raise_exception('boom') }}", "raise_exception('boom')"),
    ("{{ raise_exception() }}", "raise_exception() without a message"),
    ("{{ raise_exception('line one\nline two\nline three') }}",
     "raise_exception with a three-line message"),
    ("{% for %}", "syntax error: '{% for %}'"),
    ("{{", "syntax error: unclosed '{{'"),
    ("{% if messages %}never closed", "syntax error: unclosed if"),
    ("{% endfor %}", "syntax error: stray endfor"),
    ("{{ }}", "syntax error: empty expression"),
    ("{% set %}", "syntax error: empty set"),
    (DEEP_PARENS, "an expression nested in 100000 parentheses"),
    (DEEP_IFS, "5000 nested if blocks"),
    (DEEP_LIST, "a list literal nested 100000 deep"),
    (MANY_FILTERS, "100000 chained filters"),
    ("{{ foo.bar.baz }}", "undefined variable foo.bar.baz"),
    ("{{ messages[100]['content'] }}", "messages[100] (out of range)"),
    ("{{ messages[0]['nope']['deeper'] }}", "undefined key of a message"),
    ("{{ undefined_function() }}", "call of an undefined function"),
    ("{{ messages() }}", "call of a list"),
    ("", "an empty template"),
    ("{% if false %}x{% endif %}", "a template that renders nothing"),
    ("   \n\n  ", "a template of whitespace only"),
    ("{{ 'x' * 1000000 }}", "renders 1 MB of text (beyond the model's positions)"),
    ("{{ 1 // 0 }}", "integer division by zero"),
    ("{{ 1 % 0 }}", "modulo by zero"),
    ("{{ 1.0 / 0 }}", "float division by zero"),
    ("{{ -9223372036854775807 - 1 }}{{ (-9223372036854775807 - 1) // -1 }}",
     "i64::MIN // -1"),
    ("{{ (-9223372036854775807 - 1) % -1 }}", "i64::MIN % -1"),
    ("{{ 2 ** 100000 }}", "2 ** 100000"),
    ("{{ 9223372036854775807 + 1 }}", "i64::MAX + 1"),
    ("{{ 99999999999999999999999999999999999999999 * 99999999999999999999999999 }}",
     "i128 overflow"),
    ("{{ 'abc'[::0] }}", "slice with step 0"),
    ("{{ messages[0]['content'].split('') }}", "str.split('') (Python raises)"),
    ("{{ messages[0]['content'].center(1000000000000) }}", "str.center(10**12)"),
    ("{{ messages[0]['content'].ljust(9223372036854775807) }}", "str.ljust(i64::MAX)"),
    ("{{ messages[0]['content'] | indent(1000000000000) }}", "indent(10**12)"),
    ("{{ messages[0]['content'] | center(1000000000000) }}", "center filter 10**12"),
    ("{{ messages[0]['content'] | truncate(-1) }}", "truncate(-1)"),
    ("{{ messages[0]['content'] | wordwrap(0) }}", "wordwrap(0)"),
    ("{{ [1,2,3] | batch(0) | list }}", "batch(0)"),
    ("{{ [1,2,3] | slice(0) | list }}", "slice(0)"),
    ("{{ [] | first }}{{ [] | last }}{{ [] | random }}", "first/last/random of []"),
    ("{{ 'a' | int }}{{ 'a' | float }}{{ none | length }}", "bad conversions"),
    ("{{ range(10) | sum(attribute='x') }}", "sum(attribute) of ints"),
    ("{{ messages | map(attribute='role') | join(123) }}", "join with a number"),
    ("{{ messages[0]['content'].replace('', 'xxxxxxxxxx' * 100000) }}",
     "str.replace('' -> 1 MB)"),
    ("{{ ' '.join(['x'] * 100000000) }}", "join of a 10**8 list"),
    ("{{ messages[0]['content'] | format(1, 2, 3) }}{{ '%d' % 'x' }}", "bad % formatting"),
    ("{{ strftime_now('%') }}{{ strftime_now('%Q%') }}{{ strftime_now('') }}",
     "strftime_now with broken formats"),
    ("{{ strftime_now(5) }}", "strftime_now with a number"),
    ("{% include 'other.jinja' %}", "include of a missing template"),
    ("{% extends 'base.jinja' %}", "extends a missing template"),
    ("{% import 'x' as y %}{{ y.z }}", "import of a missing template"),
    ("{{ messages | tojson(indent=1000000000) }}", "tojson(indent=10**9)"),
    ("{{ messages | pprint }}{{ messages | dictsort }}", "pprint/dictsort of a list"),
    ("{% set x = x %}{{ x.y }}", "self-referential set"),
    ("{% for m in messages recursive %}{{ loop(messages) }}{% endfor %}",
     "recursive loop over the same list forever"),
    ("{% filter upper %}" * 2000 + "x" + "{% endfilter %}" * 2000, "2000 nested filter blocks"),
    ("{{ '\\u0000\\ud800\\uffff' }}", "escapes of NUL and a lone surrogate"),
    ("{{ '<|im_start|>' * 100 }}", "100 special tokens (beyond max positions? no)"),
    ("{{ messages[0]['content'] | replace('H', '\\x00') }}", "NUL bytes in the prompt"),
    ("{% set ns = namespace(a=1) %}{% set ns.a = ns %}{{ ns }}", "a namespace holding itself"),
    ("{{ cycler(1, 2).next() }}{{ joiner() }}{{ lipsum(1000000000) }}",
     "cycler/joiner/lipsum(10**9)"),
    ("{{ dict(a=1) | items | list }}{{ dict(**messages) }}", "dict(**list)"),
]


def gen_chat(corpus):
    argv_chat = ["run", "text-generation", "-m", "{model}", "--chat", "--max-new-tokens", "4",
                 "--do-sample", "false", "Hello"]
    for k, (tmpl, label) in enumerate(CHAT_TEMPLATES):
        # Alternate: tokenizer_config.json's chat_template (llama) or chat_template.jinja (qwen2,
        # gemma3).
        where = k % 3
        f = ["llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm"][where]
        argv = list(argv_chat)
        if k % 5 == 4:
            argv = argv[:-1] + ["--system", "Be brief.", "Hello"]
        c = corpus.case("chat", "tmpl-%02d" % k, "chat template: %s (%s)" % (
            label, "tokenizer_config.json" if where == 0 else "chat_template.jinja"), f, argv)
        if where == 0:
            tc = c.json("tokenizer_config.json")
            tc["chat_template"] = tmpl
            c.write_json("tokenizer_config.json", tc)
        else:
            c.write("chat_template.jinja", tmpl)
    # The template's container.
    for v, l in [(42, "a number"), ([], "an empty list"), ([{"name": "default"}],
                                                            "named, without template"),
                 ([{"name": "x", "template": 5}], "template is a number"),
                 ({"default": "x"}, "an object"), (None, "null")]:
        c = corpus.case("chat", "container-%s" % l.split(" ")[-1],
                        "tokenizer_config.json chat_template is %s" % l, "llama-causal-lm",
                        argv_chat)
        tc = c.json("tokenizer_config.json")
        tc["chat_template"] = v
        c.write_json("tokenizer_config.json", tc)
    c = corpus.case("chat", "jinja-invalid-utf8", "chat_template.jinja is invalid UTF-8",
                    "qwen2-causal-lm", argv_chat)
    c.write("chat_template.jinja", b"{{ '\xff\xfe' }}\xc3\x28")
    c = corpus.case("chat", "jinja-is-dir", "chat_template.jinja is a directory",
                    "gemma3-causal-lm", argv_chat)
    c.remove("chat_template.jinja")
    os.makedirs(c.path("chat_template.jinja"))
    c = corpus.case("chat", "jinja-empty", "chat_template.jinja is empty",
                    "qwen2-causal-lm", argv_chat)
    c.write("chat_template.jinja", b"")
    c = corpus.case("chat", "no-template", "--chat on a model without a chat template "
                    "(gpt2)", "gpt2-causal-lm", argv_chat)


# ---------------------------------------------------------------------------------------------
# Text inputs and CLI values
# ---------------------------------------------------------------------------------------------

def gen_text(corpus):
    fixtures = ["bert-sequence-classification", "llama-causal-lm", "t5-seq2seq-lm",
                "distilbert-token-classification", "qwen2-causal-lm", "deberta-v2-nli",
                "bart-seq2seq-lm", "xlm-roberta-masked-lm", "gpt2-causal-lm",
                "marian-seq2seq-lm", "roberta-base", "gemma3-causal-lm"]
    for k, f in enumerate(fixtures):
        corpus.case("text", "empty", "an empty text argument", f, task_argv(f, text=""))
        if k % 2 == 0:
            corpus.case("text", "spaces", "a text of spaces and newlines", f,
                        task_argv(f, text="   \n\t  \n"))
        argv = stdin_argv(f)
        corpus.case("text", "stdin-empty", "no text argument and an empty stdin", f, argv,
                    stdin={"text": ""})
        corpus.case("text", "stdin-1MB", "1 MB of text on stdin (one line)", f, argv,
                    stdin={"repeat": "the quick brown fox ", "bytes": 1 << 20})
        if k % 2 == 1:
            corpus.case("text", "stdin-10MB", "10 MB of text on stdin (one line)", f, argv,
                        stdin={"repeat": "lorem ipsum dolor sit amet ", "bytes": 10 << 20})
        corpus.case("text", "stdin-invalid-utf8", "invalid UTF-8 bytes on stdin", f, argv,
                    stdin={"hex": "48656c6c6f20ff fe c328 a0a1 e28228 f0288cbc 0a 776f726c64"
                           .replace(" ", "")})
        if k % 3 == 0:
            corpus.case("text", "stdin-nul", "NUL bytes and control characters on stdin", f,
                        argv, stdin={"hex": "00" * 16 + "1b5b306d07080b0c7f" + "0a" + "00"})
            corpus.case("text", "stdin-many-lines", "2000 short lines on stdin", f, argv,
                        stdin={"repeat": "hi\n", "bytes": 6000})
    for f in ["bert-sequence-classification", "llama-causal-lm", "deberta-v2-token-classification",
              "t5-seq2seq-lm"]:
        corpus.case("text", "long-word", "one 100 KB word without spaces", f,
                    task_argv(f, text="a" * 100000))
        corpus.case("text", "zalgo", "50 KB of combining characters", f,
                    task_argv(f, text="e" + "\u0301\u0308\u0327" * 8000))
        corpus.case("text", "specials", "the text is only special tokens", f,
                    task_argv(f, text="<s></s>[CLS][SEP][MASK]<pad><unk><|im_start|>"
                              "<|endoftext|><mask></s>" * 50))
    # Invalid UTF-8 in argv (clap).
    corpus.case("text", "argv-invalid-utf8", "invalid UTF-8 bytes in the text argument",
                "bert-sequence-classification",
                task_argv("bert-sequence-classification", text="ok \udcff\udcfe"))

    # Task options.
    def t(f, short, what, argv):
        corpus.case("opt", short, what, f, argv)
    g = "llama-causal-lm"
    base = ["run", "text-generation", "-m", "{model}"]
    for flags, what in [
            (["--num-beams", "1000000"], "--num-beams 10**6"),
            (["--num-beams", "0"], "--num-beams 0"),
            (["--num-return-sequences", "1000000000", "--do-sample", "true"],
             "--num-return-sequences 10**9 with sampling"),
            (["--num-return-sequences", "0"], "--num-return-sequences 0"),
            (["--max-new-tokens", "1000000000000"], "--max-new-tokens 10**12"),
            (["--max-length", "1000000000000"], "--max-length 10**12"),
            (["--max-length", "0"], "--max-length 0"),
            (["--max-new-tokens", "0"], "--max-new-tokens 0"),
            (["--min-new-tokens", "1000000000", "--max-new-tokens", "5"],
             "--min-new-tokens 10**9 > --max-new-tokens"),
            (["--top-k", "1099511627776", "--do-sample", "true"], "--top-k 2**40"),
            (["--top-k", "0", "--do-sample", "true"], "--top-k 0"),
            (["--top-k=-5", "--do-sample", "true"], "--top-k -5 (a string arg)"),
            (["--top-p=7", "--do-sample", "true"], "--top-p 7"),
            (["--top-p=NaN", "--do-sample", "true"], "--top-p NaN"),
            (["--temperature=-1", "--do-sample", "true"], "--temperature -1"),
            (["--temperature=0", "--do-sample", "true"], "--temperature 0"),
            (["--temperature=NaN", "--do-sample", "true"], "--temperature NaN"),
            (["--temperature=inf", "--do-sample", "true"], "--temperature inf"),
            (["--temperature=1e-45", "--do-sample", "true"], "--temperature 1e-45"),
            (["--min-p=NaN", "--do-sample", "true"], "--min-p NaN"),
            (["--typical-p=0", "--do-sample", "true"], "--typical-p 0"),
            (["--repetition-penalty=0"], "--repetition-penalty 0"),
            (["--repetition-penalty=NaN"], "--repetition-penalty NaN"),
            (["--repetition-penalty=-inf"], "--repetition-penalty -inf"),
            (["--no-repeat-ngram-size", "1", "--max-new-tokens", "2000"],
             "--no-repeat-ngram-size 1 with 2000 new tokens"),
            (["--length-penalty=NaN", "--num-beams", "3"], "--length-penalty NaN, 3 beams"),
            (["--early-stopping", "sometimes", "--num-beams", "2"], "--early-stopping sometimes"),
            (["--logprobs", "1000"], "--logprobs 1000 (max 20)"),
            (["--logprobs", "20", "--num-beams", "4", "--num-return-sequences", "4"],
             "--logprobs 20 with beams"),
            (["--stop-sequence", ""], "--stop-sequence ''"),
            (["--stop-strings", "", "--stop-strings", ""], "--stop-strings '' twice"),
            (["--stream", "--num-beams", "3", "--max-new-tokens", "4"], "--stream with beams"),
            (["--stream", "--json", "--num-return-sequences", "3", "--do-sample", "true"],
             "--stream --json with 3 sampled sequences"),
            (["--quantize", "q4_k"], "--quantize q4_k on a 32-wide model"),
            (["--quantize", "q8_0", "--max-new-tokens", "4"], "--quantize q8_0"),
            (["--quantize", "f16", "--max-new-tokens", "4"], "--quantize f16"),
            (["--prefix", "x" * 100000], "--prefix of 100 KB"),
            (["--system", ""], "--system '' (implies --chat; llama has no template)"),
            (["--return-full-text", "false", "--max-new-tokens", "0"],
             "--return-full-text false and no new tokens"),
            (["--seed", "18446744073709551615", "--do-sample", "true"], "--seed u64::MAX"),
    ]:
        t(g, "gen" + "".join(flags)[:40], "text-generation " + what,
          base + flags + (["Hello"] if "--max-new-tokens" in flags else
                          ["--max-new-tokens", "6", "Hello"]))
    for f in ["t5-seq2seq-lm", "bart-seq2seq-lm", "marian-seq2seq-lm"]:
        task = "translation" if f.startswith("marian") else "summarization"
        for flags, what in [(["--num-beams", "1000000"], "--num-beams 10**6"),
                            (["--max-new-tokens", "1000000000000"], "--max-new-tokens 10**12"),
                            (["--min-length", "1000000000", "--max-new-tokens", "8"],
                             "--min-length 10**9"),
                            (["--num-return-sequences", "100000", "--num-beams", "2"],
                             "more sequences than beams"),
                            (["--src-lang", "xx", "--tgt-lang", "yy"], "unknown languages"),
                            (["--truncation", "--max-new-tokens", "3"],
                             "--truncation with a 100 KB text")]:
            text = "word " * 20000 if "--truncation" in flags else "Some text to condense."
            t(f, task[:5] + "".join(flags)[:40], "%s %s" % (task, what),
              ["run", task, "-m", "{model}"] + flags + [text])
    cls = "bert-sequence-classification"
    for flags, what in [(["--top-k", "0"], "--top-k 0"), (["--top-k", "1000000000000"],
                                                          "--top-k 10**12"),
                        (["--top-k=-3"], "--top-k -3"),
                        (["--batch-size", "0"], "--batch-size 0"),
                        (["--batch-size", "1000000000"], "--batch-size 10**9"),
                        (["--function-to-apply", "cosine"], "--function-to-apply cosine"),
                        (["--text-pair", "b" * 100000], "--text-pair of 100 KB")]:
        t(cls, "cls" + "".join(flags)[:30], "text-classification " + what,
          ["run", "text-classification", "-m", "{model}"] + flags + ["a", "b"])
    qa = "bert-question-answering"
    for flags, what in [(["--doc-stride", "0"], "--doc-stride 0"),
                        (["--doc-stride", "1000000"], "--doc-stride 10**6 > max-seq-len"),
                        (["--max-seq-len", "0"], "--max-seq-len 0"),
                        (["--max-seq-len", "1"], "--max-seq-len 1"),
                        (["--max-seq-len", "1000000000"], "--max-seq-len 10**9"),
                        (["--max-answer-len", "0"], "--max-answer-len 0"),
                        (["--top-k", "0"], "--top-k 0"),
                        (["--top-k", "1000000000"], "--top-k 10**9"),
                        (["--handle-impossible-answer", "--max-seq-len", "8",
                          "--doc-stride", "7"], "max-seq-len 8 doc-stride 7")]:
        t(qa, "qa" + "".join(flags)[:30], "question-answering " + what,
          ["run", "question-answering", "-m", "{model}", "--question", "Where?",
           "--context", "John lives in Paris. " * 20] + flags)
    t(qa, "qa-empty", "question-answering with empty question and context",
      ["run", "question-answering", "-m", "{model}", "--question", "", "--context", ""])
    t(qa, "qa-long-question", "question-answering with a 100 KB question",
      ["run", "question-answering", "-m", "{model}", "--question", "why " * 25000,
       "--context", "because"])
    t("deberta-v2-question-answering", "qa-long-context", "question-answering with a 120 KB "
      "context", ["run", "question-answering", "-m", "{model}", "--question", "Where?",
                  "--context", "Paris is nice. " * 8000])
    nli = "bert-nli"
    for flags, what in [(["--candidate-labels", ""], "--candidate-labels ''"),
                        (["--candidate-labels", ",,,"], "--candidate-labels ',,,'"),
                        (["--candidate-labels", ",".join("l%d" % i for i in range(5000))],
                         "5000 candidate labels"),
                        (["--candidate-labels", "a,b", "--hypothesis-template", "no slot"],
                         "hypothesis template without {}"),
                        (["--candidate-labels", "a,b", "--hypothesis-template", "{}{}{"],
                         "hypothesis template '{}{}{'"),
                        (["--candidate-labels", "a,b", "--hypothesis-template", "{0} {x}"],
                         "hypothesis template '{0} {x}'")]:
        t(nli, "zs" + "".join(flags)[:30], "zero-shot-classification " + what,
          ["run", "zero-shot-classification", "-m", "{model}"] + flags + ["some text"])
    mlm = "bert-masked-lm"
    for flags, text, what in [([], "no mask here", "fill-mask text without a mask"),
                              ([], "[MASK] " * 5000, "5000 masks"),
                              (["--top-k", "0"], "a [MASK] b", "--top-k 0"),
                              (["--top-k", "1000000000000"], "a [MASK] b", "--top-k 10**12"),
                              (["--targets", ""], "a [MASK] b", "--targets ''"),
                              (["--targets", ",,,"], "a [MASK] b", "--targets ',,,'"),
                              (["--targets", "zzqqxxyyww"], "a [MASK] b",
                               "--targets of an unknown word")]:
        t(mlm, "fm" + "".join(flags)[:24] + ("-" + text[:10]),
          "fill-mask " + what, ["run", "fill-mask", "-m", "{model}"] + flags + [text])
    tok = "bert-token-classification"
    for flags, what in [(["--aggregation-strategy", "nonsense"], "unknown aggregation"),
                        (["--aggregation-strategy", "max", "--ignore-labels", ""],
                         "max aggregation, nothing ignored"),
                        (["--ignore-labels", ",,,"], "--ignore-labels ',,,'")]:
        t(tok, "ner" + "".join(flags)[:30], "token-classification " + what,
          ["run", "token-classification", "-m", "{model}"] + flags + ["John lives in Paris"])
    for f in ["bert-base", "llama-causal-lm", "t5-seq2seq-lm", "xlm-roberta-base"]:
        for flags, what in [(["--padding", "max_length", "--max-length", "4294967295"],
                             "pad to u32::MAX tokens"),
                            (["--padding", "max_length", "--max-length", "0"], "pad to 0"),
                            (["--truncation=max_length", "--max-length", "0"], "truncate to 0"),
                            (["--truncation=baked", "--padding", "baked"], "baked settings")]:
            t(f, "tok" + "".join(flags)[:30], "tokenize " + what,
              ["tokenize", "-m", "{model}"] + flags + ["Hello world"])
    t("bert-base", "fe-sentence", "feature-extraction --sentence-embedding without a "
      "sentence-transformers config", ["run", "feature-extraction", "-m", "{model}",
                                       "--sentence-embedding", "hello"])
    for f in ["bert-sequence-classification", "llama-causal-lm"]:
        t(f, "info-context-huge", "info --context 2**62",
          ["info", "{model}", "--context", str(2**62)])
        t(f, "info-quantize-q4k", "info --quantize q4_k", ["info", "{model}", "--quantize",
                                                           "q4_k"])

    # Model paths.
    c = corpus.case("path", "empty-folder", "the model folder is empty", None,
                    task_argv("bert-sequence-classification"))
    os.makedirs(c.model)
    c = corpus.case("path", "nonexistent", "the model path does not exist", None,
                    task_argv("bert-sequence-classification"), model_rel="does-not-exist")
    c = corpus.case("path", "file-not-folder", "the model path is a JSON file", None,
                    task_argv("bert-sequence-classification"), model_rel="config.json")
    with open(c.model, "w") as fh:
        fh.write("{}")
    c = corpus.case("path", "dev-zero", "the model path is /dev/zero", None,
                    ["run", "text-classification", "-m", "/dev/zero", "x"],
                    model_rel="unused")
    c = corpus.case("path", "hub-like-bad", "the model is a Hub id with odd characters "
                    "(offline)", None, ["run", "text-classification", "-m",
                                        "../..//@@@/x@y@z", "x"], model_rel="unused")
    c = corpus.case("path", "only-config", "the model folder holds only config.json",
                    "llama-causal-lm")
    for name in os.listdir(c.model):
        if name != "config.json":
            c.remove(name)


# ---------------------------------------------------------------------------------------------
# GGUF
# ---------------------------------------------------------------------------------------------

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = \
    range(13)
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8
SCALAR_FMT = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
              T_F32: "<f", T_BOOL: "<B", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}


def gguf_str(s, length=None):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b) if length is None else length) + b


class Gguf:
    """A GGUF v3 file, as data that a case can edit before `build` writes the bytes.

    kv: list of dicts {key, type, value, atype (arrays), key_len / val_len (lies)}
    tensors: list of dicts {name, dims (ne0 first), type, data, n_dims / offset (lies)}
    """

    def __init__(self):
        self.kv = []
        self.tensors = []
        self.magic = b"GGUF"
        self.version = 3
        self.tensor_count = None
        self.kv_count = None
        self.layout_alignment = 32

    def add(self, key, vtype, value, atype=None):
        self.kv.append({"key": key, "type": vtype, "value": value, "atype": atype})

    def get(self, key):
        for e in self.kv:
            if e["key"] == key:
                return e
        return None

    def set(self, key, vtype, value, atype=None):
        e = self.get(key)
        if e is None:
            self.add(key, vtype, value, atype)
        else:
            e.update(type=vtype, value=value, atype=atype)
            e.pop("val_len", None)

    def drop(self, key):
        self.kv = [e for e in self.kv if e["key"] != key]

    def tensor(self, name):
        for t in self.tensors:
            if t["name"] == name:
                return t
        return None

    @staticmethod
    def value_bytes(vtype, value, atype=None, val_len=None):
        if vtype == T_STR:
            return gguf_str(value, val_len)
        if vtype == T_ARR:
            out = struct.pack("<I", atype) + struct.pack(
                "<Q", len(value) if val_len is None else val_len)
            if atype in SCALAR_FMT:
                fmt = SCALAR_FMT[atype]
                out += struct.pack("<%d%s" % (len(value), fmt[1]), *value)
            else:
                for v in value:
                    if atype == T_STR:
                        out += gguf_str(v)
                    elif atype == T_ARR:
                        out += Gguf.value_bytes(T_ARR, v[1], v[0])
                    else:
                        out += v  # raw bytes for unknown types
            return out
        if vtype in SCALAR_FMT:
            return struct.pack(SCALAR_FMT[vtype], value)
        # An unknown type: the value's bytes as a string would be written.
        return value if isinstance(value, bytes) else gguf_str(value)

    def build(self):
        out = bytearray()
        out += self.magic
        out += struct.pack("<I", self.version)
        out += struct.pack("<Q", len(self.tensors) if self.tensor_count is None
                           else self.tensor_count)
        out += struct.pack("<Q", len(self.kv) if self.kv_count is None else self.kv_count)
        for e in self.kv:
            out += gguf_str(e["key"], e.get("key_len"))
            out += struct.pack("<I", e["type"])
            if e.get("raw") is not None:
                out += e["raw"]
            else:
                out += self.value_bytes(e["type"], e["value"], e.get("atype"),
                                        e.get("val_len"))
        align = self.layout_alignment
        offset = 0
        placed = []
        for t in self.tensors:
            offset += -offset % align
            placed.append(offset)
            offset += len(t["data"])
        for t, off in zip(self.tensors, placed):
            out += gguf_str(t["name"])
            dims = t["dims"]
            out += struct.pack("<I", len(dims) if t.get("n_dims") is None else t["n_dims"])
            out += struct.pack("<%dQ" % len(dims), *dims)
            out += struct.pack("<I", t["type"])
            out += struct.pack("<Q", off if t.get("offset") is None else t["offset"])
        out += b"\0" * (-len(out) % align)
        base = len(out)
        self.data_start = base
        for t, off in zip(self.tensors, placed):
            out += b"\0" * (base + off - len(out))
            out += t["data"]
        return bytes(out)


def f32_to_q8_0(data):
    vals = struct.unpack("<%df" % (len(data) // 4), data)
    out = bytearray()
    for i in range(0, len(vals), 32):
        block = vals[i:i + 32]
        amax = max(abs(v) for v in block)
        d = amax / 127.0 if amax else 0.0
        qs = [max(-127, min(127, int(round(v / d)))) if d else 0 for v in block]
        out += struct.pack("<e", d) + struct.pack("<32b", *qs)
    return bytes(out)


def permute_qk(data, out_dim, in_dim, n_head):
    """llama.cpp's permutation of Llama query/key rows (half rotation -> interleaved)."""
    row = in_dim * 4
    rows = [data[i * row:(i + 1) * row] for i in range(out_dim)]
    d = out_dim // n_head
    half = d // 2
    new = [None] * out_dim
    for h in range(n_head):
        for j in range(half):
            for t in range(2):
                new[h * d + j * 2 + t] = rows[h * d + t * half + j]
    return b"".join(new)


def load_fixture_tensors(fixture):
    with open(os.path.join(FIXTURES, fixture, "model.safetensors"), "rb") as f:
        b = f.read()
    header, data, _ = st_parse(b)
    out = {}
    for name in tensors_of(header):
        s, e = header[name]["data_offsets"]
        out[name] = (header[name]["shape"], data[s:e])
    return out


def add_one(data):
    vals = struct.unpack("<%df" % (len(data) // 4), data)
    return struct.pack("<%df" % len(vals), *[v + 1.0 for v in vals])


def sp_vocab(tok):
    """tokens, scores, types of a SentencePiece-style BPE tokenizer.json (llama, gemma3)."""
    vocab = tok["model"]["vocab"]
    n = max(vocab.values()) + 1
    for a in tok["added_tokens"]:
        n = max(n, a["id"] + 1)
    tokens = ["<unused%d>" % i for i in range(n)]
    for piece, i in vocab.items():
        tokens[i] = piece
    special = {a["id"] for a in tok["added_tokens"] if a.get("special")}
    for a in tok["added_tokens"]:
        tokens[a["id"]] = a["content"]
    rank = {}
    for r, m in enumerate(tok["model"].get("merges", [])):
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        rank.setdefault(a + b, r)
    scores, types = [], []
    unk = tok["model"].get("unk_token")
    for i, piece in enumerate(tokens):
        if piece == unk:
            types.append(2)
            scores.append(0.0)
        elif i in special:
            types.append(3)
            scores.append(0.0)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            types.append(6)
            scores.append(0.0)
        else:
            types.append(1)
            scores.append(-float(rank.get(piece, len(rank) + i)) - 1.0)
    return tokens, scores, types


CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
          "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\n' }}{% endif %}")


def gguf_from_fixture(fx, arch):
    """A GGUF under way for fixture `fx`: its config, tokenizer.json, tensors, and the header's
    first keys (architecture and name)."""
    with open(os.path.join(FIXTURES, fx, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(FIXTURES, fx, "tokenizer.json")) as f:
        tok = json.load(f)
    g = Gguf()
    g.add("general.architecture", T_STR, arch)
    g.add("general.name", T_STR, "tiny %s (wick bad-input corpus)" % arch)
    return cfg, tok, load_fixture_tensors(fx), g


def add_shape(g, arch, cfg):
    """The llama.cpp keys every causal family has, from the transformers config."""
    g.add(arch + ".block_count", T_U32, cfg["num_hidden_layers"])
    g.add(arch + ".context_length", T_U32, cfg["max_position_embeddings"])
    g.add(arch + ".embedding_length", T_U32, cfg["hidden_size"])
    g.add(arch + ".feed_forward_length", T_U32, cfg["intermediate_size"])
    g.add(arch + ".attention.head_count", T_U32, cfg["num_attention_heads"])
    g.add(arch + ".attention.head_count_kv", T_U32, cfg["num_key_value_heads"])


def put_tensor(g, ts, name, hf, convert=None):
    """Fixture tensor `hf` as F32 GGUF tensor `name` (dims reversed, as GGUF stores them)."""
    shape, data = ts[hf]
    if convert:
        data = convert(data, shape)
    g.tensors.append({"name": name, "dims": list(reversed(shape)), "type": GGML_F32,
                      "data": data})


def gguf_llama():
    cfg, tok, ts, g = gguf_from_fixture("llama-causal-lm", "llama")
    g.add("general.alignment", T_U32, 32)
    g.add("general.file_type", T_U32, 0)
    add_shape(g, "llama", cfg)
    g.add("llama.rope.freq_base", T_F32, cfg["rope_theta"])
    g.add("llama.rope.dimension_count", T_U32, cfg["head_dim"])
    g.add("llama.attention.layer_norm_rms_epsilon", T_F32, cfg["rms_norm_eps"])
    tokens, scores, types = sp_vocab(tok)
    g.add("tokenizer.ggml.model", T_STR, "llama")
    g.add("tokenizer.ggml.tokens", T_ARR, tokens, T_STR)
    g.add("tokenizer.ggml.scores", T_ARR, scores, T_F32)
    g.add("tokenizer.ggml.token_type", T_ARR, types, T_I32)
    g.add("tokenizer.ggml.bos_token_id", T_U32, 1)
    g.add("tokenizer.ggml.eos_token_id", T_U32, 2)
    g.add("tokenizer.ggml.unknown_token_id", T_U32, 0)
    g.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    g.add("tokenizer.ggml.add_eos_token", T_BOOL, False)
    g.add("tokenizer.chat_template", T_STR, CHATML)

    def permuted(heads):
        # llama.cpp stores Llama's query and key rows interleaved for its rotary.
        return lambda data, shape: permute_qk(data, shape[0], shape[1], heads)

    def put(name, hf, convert=None):
        put_tensor(g, ts, name, hf, convert)
    put("token_embd.weight", "model.embed_tokens.weight")
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        b = "blk.%d." % layer
        put(b + "attn_norm.weight", p + "input_layernorm.weight")
        put(b + "attn_q.weight", p + "self_attn.q_proj.weight",
            permuted(cfg["num_attention_heads"]))
        put(b + "attn_k.weight", p + "self_attn.k_proj.weight",
            permuted(cfg["num_key_value_heads"]))
        put(b + "attn_v.weight", p + "self_attn.v_proj.weight")
        put(b + "attn_output.weight", p + "self_attn.o_proj.weight")
        put(b + "ffn_norm.weight", p + "post_attention_layernorm.weight")
        put(b + "ffn_gate.weight", p + "mlp.gate_proj.weight")
        put(b + "ffn_up.weight", p + "mlp.up_proj.weight")
        put(b + "ffn_down.weight", p + "mlp.down_proj.weight")
    put("output_norm.weight", "model.norm.weight")
    put("output.weight", "lm_head.weight")
    return g


def gguf_qwen2():
    cfg, tok, ts, g = gguf_from_fixture("qwen2-causal-lm", "qwen2")
    add_shape(g, "qwen2", cfg)
    g.add("qwen2.rope.freq_base", T_F32, cfg["rope_theta"])
    g.add("qwen2.attention.layer_norm_rms_epsilon", T_F32, cfg["rms_norm_eps"])
    vocab = tok["model"]["vocab"]
    n = max(max(vocab.values()), max(a["id"] for a in tok["added_tokens"])) + 1
    tokens = ["[PAD%d]" % i for i in range(n)]
    types = [1] * n
    for piece, i in vocab.items():
        tokens[i] = piece
    for a in tok["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a.get("special") else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    g.add("tokenizer.ggml.model", T_STR, "gpt2")
    g.add("tokenizer.ggml.pre", T_STR, "qwen2")
    g.add("tokenizer.ggml.tokens", T_ARR, tokens, T_STR)
    g.add("tokenizer.ggml.token_type", T_ARR, types, T_I32)
    g.add("tokenizer.ggml.merges", T_ARR, merges, T_STR)
    g.add("tokenizer.ggml.eos_token_id", T_U32, cfg["eos_token_id"])
    g.add("tokenizer.ggml.padding_token_id", T_U32, cfg["pad_token_id"])
    g.add("tokenizer.ggml.bos_token_id", T_U32, 997)
    g.add("tokenizer.ggml.add_bos_token", T_BOOL, False)
    g.add("tokenizer.chat_template", T_STR, CHATML)

    def put(name, hf):
        put_tensor(g, ts, name, hf)
    put("token_embd.weight", "model.embed_tokens.weight")
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        b = "blk.%d." % layer
        put(b + "attn_norm.weight", p + "input_layernorm.weight")
        for x in ("q", "k", "v"):
            put(b + "attn_%s.weight" % x, p + "self_attn.%s_proj.weight" % x)
            put(b + "attn_%s.bias" % x, p + "self_attn.%s_proj.bias" % x)
        put(b + "attn_output.weight", p + "self_attn.o_proj.weight")
        put(b + "ffn_norm.weight", p + "post_attention_layernorm.weight")
        put(b + "ffn_gate.weight", p + "mlp.gate_proj.weight")
        put(b + "ffn_up.weight", p + "mlp.up_proj.weight")
        put(b + "ffn_down.weight", p + "mlp.down_proj.weight")
    put("output_norm.weight", "model.norm.weight")
    return g


def gguf_gemma3():
    fx = "gemma3-causal-lm"
    a = "gemma3"
    cfg, tok, ts, g = gguf_from_fixture(fx, a)
    add_shape(g, a, cfg)
    g.add(a + ".attention.key_length", T_U32, cfg["head_dim"])
    g.add(a + ".attention.value_length", T_U32, cfg["head_dim"])
    g.add(a + ".attention.sliding_window", T_U32, cfg["sliding_window"])
    g.add(a + ".rope.freq_base", T_F32, cfg["rope_theta"])
    g.add(a + ".attention.layer_norm_rms_epsilon", T_F32, cfg["rms_norm_eps"])
    tokens, scores, types = sp_vocab(tok)
    g.add("tokenizer.ggml.model", T_STR, "llama")
    g.add("tokenizer.ggml.tokens", T_ARR, tokens, T_STR)
    g.add("tokenizer.ggml.scores", T_ARR, scores, T_F32)
    g.add("tokenizer.ggml.token_type", T_ARR, types, T_I32)
    g.add("tokenizer.ggml.bos_token_id", T_U32, cfg["bos_token_id"])
    g.add("tokenizer.ggml.eos_token_id", T_U32, cfg["eos_token_id"])
    g.add("tokenizer.ggml.padding_token_id", T_U32, cfg["pad_token_id"])
    g.add("tokenizer.ggml.unknown_token_id", T_U32, 3)
    g.add("tokenizer.ggml.add_bos_token", T_BOOL, True)
    g.add("tokenizer.ggml.add_space_prefix", T_BOOL, False)
    with open(os.path.join(FIXTURES, fx, "chat_template.jinja")) as f:
        g.add("tokenizer.chat_template", T_STR, f.read())

    def put(name, hf, plus_one=False):
        # Gemma's norms scale by 1 + w; llama.cpp stores 1 + w.
        put_tensor(g, ts, name, hf, (lambda data, shape: add_one(data)) if plus_one else None)
    put("token_embd.weight", "model.embed_tokens.weight")
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        b = "blk.%d." % layer
        put(b + "attn_norm.weight", p + "input_layernorm.weight", True)
        put(b + "attn_q.weight", p + "self_attn.q_proj.weight")
        put(b + "attn_k.weight", p + "self_attn.k_proj.weight")
        put(b + "attn_v.weight", p + "self_attn.v_proj.weight")
        put(b + "attn_q_norm.weight", p + "self_attn.q_norm.weight", True)
        put(b + "attn_k_norm.weight", p + "self_attn.k_norm.weight", True)
        put(b + "attn_output.weight", p + "self_attn.o_proj.weight")
        put(b + "post_attention_norm.weight", p + "post_attention_layernorm.weight", True)
        put(b + "ffn_norm.weight", p + "pre_feedforward_layernorm.weight", True)
        put(b + "post_ffw_norm.weight", p + "post_feedforward_layernorm.weight", True)
        put(b + "ffn_gate.weight", p + "mlp.gate_proj.weight")
        put(b + "ffn_up.weight", p + "mlp.up_proj.weight")
        put(b + "ffn_down.weight", p + "mlp.down_proj.weight")
    put("output_norm.weight", "model.norm.weight", True)
    return g


def gguf_llama_q8():
    g = gguf_llama()
    for t in g.tensors:
        if len(t["dims"]) == 2 and t["name"] != "token_embd.weight":
            t["data"] = f32_to_q8_0(t["data"])
            t["type"] = GGML_Q8_0
    g.set("general.file_type", T_U32, 7)
    return g


GGUF_GEN = ["run", "text-generation", "-m", "{model}", "--max-new-tokens", "6",
            "--do-sample", "false", "Hello there"]
GGUF_CHAT = ["run", "text-generation", "-m", "{model}", "--chat", "--max-new-tokens", "4",
             "--do-sample", "false", "Hello"]
GGUF_TOK = ["tokenize", "-m", "{model}", "Hello there, world"]
GGUF_INFO = ["info", "{model}"]


def gen_gguf(corpus):
    rng = corpus.rng
    builders = {"llama": gguf_llama, "qwen2": gguf_qwen2, "gemma3": gguf_gemma3,
                "llama-q8_0": gguf_llama_q8}
    cache = {}

    def base(kind):
        if kind not in cache:
            cache[kind] = builders[kind]().build()
        return cache[kind]

    def write(short, what, data, argv=None, expect="error-or-ok", name="model.gguf"):
        c = corpus.case("gguf", short, what, None, argv or GGUF_GEN, model_rel=name,
                        expect=expect)
        corpus.put(c.model, data)
        return c

    # Controls: each valid GGUF must run.
    for kind in builders:
        write("valid-%s" % kind, "a valid %s GGUF (control)" % kind, base(kind), expect="ok")
    write("valid-llama-chat", "a valid llama GGUF, --chat through tokenizer.chat_template "
          "(control)", base("llama"), GGUF_CHAT, expect="ok")
    write("valid-qwen2-tokenize", "tokenize with a valid qwen2 GGUF (control)", base("qwen2"),
          GGUF_TOK, expect="ok")
    write("valid-gemma3-info", "info on a valid gemma3 GGUF (control)", base("gemma3"),
          GGUF_INFO, expect="ok")

    def edit(short, what, fn, kind="llama", argvs=(GGUF_GEN,)):
        for argv in argvs:
            g = builders[kind]()
            fn(g)
            suffix = {"tokenize": "-tok", "info": "-info"}.get(argv[0], "")
            if "--chat" in argv:
                suffix = "-chat"
            write(short + "-" + kind + suffix, what + " (%s GGUF)" % kind, g.build(), argv)

    ALL3 = (GGUF_GEN, GGUF_TOK, GGUF_INFO)
    # Alignment.
    edit("align-0", "general.alignment = 0", lambda g: g.set("general.alignment", T_U32, 0),
         argvs=ALL3 + (GGUF_CHAT,))
    edit("align-3", "general.alignment = 3 (data laid out at 32)",
         lambda g: g.set("general.alignment", T_U32, 3), argvs=ALL3)

    def align3_real(g):
        g.set("general.alignment", T_U32, 3)
        g.layout_alignment = 3
    edit("align-3-real", "general.alignment = 3 and data really aligned to 3", align3_real)
    edit("align-huge", "general.alignment = 2**31",
         lambda g: g.set("general.alignment", T_U32, 2**31), argvs=ALL3)
    edit("align-u64", "general.alignment stored as u64 2**40",
         lambda g: g.set("general.alignment", T_U64, 2**40))
    edit("align-string", "general.alignment is a string",
         lambda g: g.set("general.alignment", T_STR, "32"))
    edit("align-i32-neg", "general.alignment = -1 (i32)",
         lambda g: g.set("general.alignment", T_I32, -1))

    # Counts and header fields.
    def setattr_(name, value):
        return lambda g: setattr(g, name, value)
    for name, value, label in [("tensor_count", 2**62, "2**62"), ("kv_count", 2**62, "2**62"),
                               ("tensor_count", U64_MAX, "2**64-1"),
                               ("kv_count", 2**30, "2**30"),
                               ("version", 0, "0"), ("version", 1, "1"), ("version", 2, "2"),
                               ("version", 4, "4"), ("version", 2**32 - 1, "u32::MAX"),
                               ("magic", b"GGUG", "GGUG"), ("magic", b"FUGG", "FUGG"),
                               ("magic", b"gguf", "gguf")]:
        edit("%s-%s" % (name, label), "%s = %s" % (name, label), setattr_(name, value),
             argvs=(GGUF_GEN, GGUF_INFO) if name != "version" else (GGUF_GEN,))

    def count_delta(name, delta):
        def go(g):
            setattr(g, name, (len(g.tensors) if name == "tensor_count" else len(g.kv)) + delta)
        return go
    edit("tensor-count-plus1", "tensor_count one more than written",
         count_delta("tensor_count", 1))
    edit("tensor-count-minus1", "tensor_count one less than written",
         count_delta("tensor_count", -1))
    edit("kv-count-plus1", "kv_count one more than written (a tensor info read as a kv)",
         count_delta("kv_count", 1))
    edit("kv-count-minus1", "kv_count one less than written (a kv read as a tensor info)",
         count_delta("kv_count", -1))
    edit("kv-count-0", "kv_count 0 (the kvs read as tensor infos)",
         setattr_("kv_count", 0))

    # String and array length lies.
    def lie(key, field, value):
        def go(g):
            g.get(key)[field] = value
        return go
    for key, field, value, label in [
            ("general.architecture", "val_len", 2**62, "string length 2**62"),
            ("general.architecture", "val_len", 2**30, "string length 2**30 (the cap)"),
            ("general.architecture", "val_len", 10**6, "string length 10**6 (past the file)"),
            ("general.architecture", "key_len", 2**62, "key length 2**62"),
            ("general.name", "val_len", 0, "string length 0 (the rest misparsed)"),
            ("tokenizer.ggml.tokens", "val_len", 2**62, "array length 2**62"),
            ("tokenizer.ggml.tokens", "val_len", 2**30, "array length 2**30"),
            ("tokenizer.ggml.tokens", "val_len", 999, "array length one short"),
            ("tokenizer.ggml.scores", "val_len", 2**62, "f32 array length 2**62"),
            ("tokenizer.ggml.scores", "val_len", 2**27, "f32 array length 2**27")]:
        edit("lie-%s-%s" % (key.split(".")[-1], label.split(" ")[-1][:8]),
             "%s %s" % (key, label), lie(key, field, value), argvs=(GGUF_GEN, GGUF_TOK))

    # Value types.
    def vtype(key, t):
        def go(g):
            g.get(key)["type"] = t
        return go
    edit("vtype-99", "general.architecture value type 99", vtype("general.architecture", 99))
    edit("atype-99", "tokenizer.ggml.tokens array element type 99",
         lambda g: g.get("tokenizer.ggml.tokens").update(atype=99, value=[b"x"] * 10))

    def nested(depth):
        def go(g):
            # An array of one array of one array ... of one u8, written directly.
            raw = struct.pack("<IQ", T_ARR, 1) * (depth - 1) + struct.pack("<IQ", T_U8, 1) + \
                b"\x01"
            g.kv.append({"key": "zz.nested", "type": T_ARR, "value": None, "raw": raw})
        return go
    edit("nested-arrays-100000", "an array nested 100000 deep", nested(100000))
    edit("nested-arrays-100", "an array nested 100 deep", nested(100))
    edit("tokens-u32", "tokenizer.ggml.tokens is an array of u32",
         lambda g: g.set("tokenizer.ggml.tokens", T_ARR, list(range(1000)), T_U32),
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("tokens-empty", "tokenizer.ggml.tokens (and scores, types) are empty",
         lambda g: (g.set("tokenizer.ggml.tokens", T_ARR, [], T_STR),
                    g.set("tokenizer.ggml.scores", T_ARR, [], T_F32),
                    g.set("tokenizer.ggml.token_type", T_ARR, [], T_I32)),
         argvs=(GGUF_GEN, GGUF_TOK, GGUF_CHAT))
    edit("tokens-empty", "tokenizer.ggml.tokens (and types) are empty",
         lambda g: (g.set("tokenizer.ggml.tokens", T_ARR, [], T_STR),
                    g.set("tokenizer.ggml.token_type", T_ARR, [], T_I32)), kind="qwen2",
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("tokens-missing", "tokenizer.ggml.tokens removed",
         lambda g: g.drop("tokenizer.ggml.tokens"), argvs=(GGUF_GEN, GGUF_TOK))

    def more_tokens(g):
        tok = g.get("tokenizer.ggml.tokens")["value"]
        extra = ["<x%d>" % i for i in range(3000)] + ["Hello", " there", "▁Hello", "▁there"]
        g.set("tokenizer.ggml.tokens", T_ARR, tok + extra, T_STR)
        g.set("tokenizer.ggml.scores", T_ARR, [0.0] * (len(tok) + len(extra)), T_F32)
        types = g.get("tokenizer.ggml.token_type")["value"]
        g.set("tokenizer.ggml.token_type", T_ARR, types + [4] * len(extra), T_I32)
    edit("tokens-beyond-embd", "3004 extra (user-defined) tokens beyond the 1000-row "
         "embedding: ids past the model's vocabulary", more_tokens)

    def more_tokens_qwen(g):
        tok = g.get("tokenizer.ggml.tokens")["value"]
        extra = ["Hello", "Ġthere", "He", "llo"]
        g.set("tokenizer.ggml.tokens", T_ARR, tok + extra, T_STR)
        types = g.get("tokenizer.ggml.token_type")["value"]
        g.set("tokenizer.ggml.token_type", T_ARR, types + [4] * len(extra), T_I32)
    edit("tokens-beyond-embd", "4 extra user-defined tokens beyond the embedding rows",
         more_tokens_qwen, kind="qwen2")

    def fewer_tokens(g):
        tok = g.get("tokenizer.ggml.tokens")["value"][:10]
        g.set("tokenizer.ggml.tokens", T_ARR, tok, T_STR)
        g.set("tokenizer.ggml.scores", T_ARR, [0.0] * 10, T_F32)
        g.set("tokenizer.ggml.token_type", T_ARR, [1] * 10, T_I32)
    edit("tokens-10", "only 10 tokens (bos/eos ids still valid)", fewer_tokens)
    edit("scores-short", "tokenizer.ggml.scores one shorter than tokens",
         lambda g: g.get("tokenizer.ggml.scores")["value"].pop(), argvs=(GGUF_GEN, GGUF_TOK))
    edit("scores-nan", "tokenizer.ggml.scores all NaN",
         lambda g: g.set("tokenizer.ggml.scores", T_ARR,
                         [float("nan")] * len(g.get("tokenizer.ggml.scores")["value"]), T_F32),
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("types-bad", "tokenizer.ggml.token_type values 99 and -5",
         lambda g: g.set("tokenizer.ggml.token_type", T_ARR,
                         [99, -5] * (len(g.get("tokenizer.ggml.token_type")["value"]) // 2),
                         T_I32), argvs=(GGUF_GEN, GGUF_TOK))
    edit("types-all-control", "every token is a control token (type 3)",
         lambda g: g.set("tokenizer.ggml.token_type", T_ARR,
                         [3] * len(g.get("tokenizer.ggml.token_type")["value"]), T_I32),
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("types-all-user", "every token user-defined (type 4)",
         lambda g: g.set("tokenizer.ggml.token_type", T_ARR,
                         [4] * len(g.get("tokenizer.ggml.token_type")["value"]), T_I32),
         kind="qwen2", argvs=(GGUF_GEN, GGUF_TOK))
    edit("dup-tokens", "every token is the same string 'a'",
         lambda g: g.set("tokenizer.ggml.tokens", T_ARR,
                         ["a"] * len(g.get("tokenizer.ggml.tokens")["value"]), T_STR),
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("empty-token-strings", "every token is the empty string",
         lambda g: g.set("tokenizer.ggml.tokens", T_ARR,
                         [""] * len(g.get("tokenizer.ggml.tokens")["value"]), T_STR),
         argvs=(GGUF_GEN, GGUF_TOK))
    for key, t, v, label in [("tokenizer.ggml.bos_token_id", T_U32, 10**9, "10**9"),
                             ("tokenizer.ggml.eos_token_id", T_I32, -1, "-1 (i32)"),
                             ("tokenizer.ggml.eos_token_id", T_U32, 999999, "999999"),
                             ("tokenizer.ggml.bos_token_id", T_STR, "1", "a string"),
                             ("tokenizer.ggml.unknown_token_id", T_U32, 2**32 - 1, "u32::MAX"),
                             ("tokenizer.ggml.padding_token_id", T_U64, 2**40, "2**40 (u64)"),
                             ("tokenizer.ggml.add_bos_token", T_U32, 7, "a u32"),
                             ("tokenizer.ggml.add_space_prefix", T_STR, "no", "a string")]:
        edit("%s-%s" % (key.split(".")[-1], label.split(" ")[0]), "%s = %s" % (key, label),
             lambda g, key=key, t=t, v=v: g.set(key, t, v),
             argvs=(GGUF_GEN, GGUF_TOK, GGUF_CHAT))
    for v in [None, "bert", "", "gpt2"]:
        label = "missing" if v is None else (v or "empty")
        edit("tok-model-%s" % label, "tokenizer.ggml.model = %r" % (v,),
             (lambda g: g.drop("tokenizer.ggml.model")) if v is None else
             (lambda g, v=v: g.set("tokenizer.ggml.model", T_STR, v)),
             argvs=(GGUF_GEN, GGUF_TOK))
    edit("pre-unknown", "tokenizer.ggml.pre = 'klingon'",
         lambda g: g.set("tokenizer.ggml.pre", T_STR, "klingon"), kind="qwen2",
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("merges-malformed", "tokenizer.ggml.merges entries without a space",
         lambda g: g.set("tokenizer.ggml.merges", T_ARR, ["abc", "de"], T_STR), kind="qwen2",
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("merges-empty", "tokenizer.ggml.merges empty",
         lambda g: g.set("tokenizer.ggml.merges", T_ARR, [], T_STR), kind="qwen2",
         argvs=(GGUF_GEN, GGUF_TOK))
    edit("merges-missing", "tokenizer.ggml.merges removed",
         lambda g: g.drop("tokenizer.ggml.merges"), kind="qwen2", argvs=(GGUF_GEN, GGUF_TOK))
    edit("merges-unknown", "tokenizer.ggml.merges of unknown tokens",
         lambda g: g.set("tokenizer.ggml.merges", T_ARR, ["zzq qqz", "Ġ Ġ Ġ"], T_STR),
         kind="qwen2", argvs=(GGUF_GEN, GGUF_TOK))

    # Architecture metadata.
    def meta(key, t, v):
        def go(g):
            arch = g.get("general.architecture")["value"]
            k = key.replace("ARCH", arch)
            if v is MISSING:
                g.drop(k)
            else:
                g.set(k, t, v)
        return go
    for key, t, v, label, kinds in [
            ("general.architecture", None, MISSING, "missing", ("llama",)),
            ("general.architecture", T_STR, "bogus", "'bogus'", ("llama",)),
            ("general.architecture", T_STR, "gpt2", "'gpt2' (not supported)", ("llama",)),
            ("general.architecture", T_U32, 5, "a u32", ("llama",)),
            ("general.architecture", T_STR, "qwen3", "'qwen3' on llama tensors", ("llama",)),
            ("general.architecture", T_STR, "gemma3", "'gemma3' on llama tensors (keys "
             "missing)", ("llama",)),
            ("ARCH.block_count", T_U32, 100000, "100000", ("llama", "qwen2")),
            ("ARCH.block_count", T_U32, 0, "0", ("llama", "gemma3")),
            ("ARCH.block_count", T_U64, 2**62, "2**62", ("llama", "gemma3")),
            ("ARCH.block_count", None, MISSING, "missing", ("llama",)),
            ("ARCH.block_count", T_STR, "2", "a string", ("llama",)),
            ("ARCH.attention.head_count", T_U32, 0, "0", ("llama", "qwen2", "gemma3")),
            ("ARCH.attention.head_count", T_U32, 3, "3 (32 not divisible)",
             ("llama", "qwen2")),
            ("ARCH.attention.head_count", T_U32, 2**32 - 1, "u32::MAX", ("llama",)),
            ("ARCH.attention.head_count", T_U64, 2**62, "2**62", ("llama",)),
            ("ARCH.attention.head_count_kv", T_U32, 0, "0", ("llama", "gemma3")),
            ("ARCH.attention.head_count_kv", T_U32, 3, "3 (does not divide heads)",
             ("llama", "qwen2")),
            ("ARCH.attention.head_count_kv", T_U32, 64, "64 > heads", ("llama",)),
            ("ARCH.embedding_length", T_U32, 7, "7", ("llama", "qwen2")),
            ("ARCH.embedding_length", T_U32, 0, "0", ("llama", "gemma3")),
            ("ARCH.embedding_length", T_U64, 2**62, "2**62", ("llama",)),
            ("ARCH.embedding_length", T_U32, 30, "30 (head_count 4 -> 7.5)", ("llama",)),
            ("ARCH.feed_forward_length", T_U32, 0, "0", ("llama",)),
            ("ARCH.feed_forward_length", T_U64, 2**40, "2**40", ("llama", "qwen2")),
            ("ARCH.context_length", T_U32, 0, "0", ("llama", "qwen2", "gemma3")),
            ("ARCH.context_length", T_U64, 2**62, "2**62", ("llama", "qwen2")),
            ("ARCH.context_length", T_U32, 1, "1", ("llama",)),
            ("ARCH.rope.freq_base", T_F32, 0.0, "0", ("llama", "gemma3")),
            ("ARCH.rope.freq_base", T_F32, float("nan"), "NaN", ("llama",)),
            ("ARCH.rope.freq_base", T_F32, float("-inf"), "-inf", ("qwen2",)),
            ("ARCH.attention.layer_norm_rms_epsilon", T_F32, -1.0, "-1", ("llama",)),
            ("ARCH.attention.layer_norm_rms_epsilon", T_F32, float("nan"), "NaN",
             ("gemma3",)),
            ("ARCH.attention.key_length", T_U32, 0, "0", ("gemma3", "llama")),
            ("ARCH.attention.key_length", T_U64, 2**40, "2**40", ("gemma3", "llama")),
            ("ARCH.attention.key_length", T_U32, 3, "3 (odd rotary dim)", ("gemma3",)),
            ("ARCH.attention.sliding_window", T_U32, 0, "0", ("gemma3",)),
            ("ARCH.attention.sliding_window", T_U64, 2**62, "2**62", ("gemma3",)),
            ("ARCH.rope.scaling.type", T_STR, "linear", "linear (factor 0)", ("llama",)),
            ("ARCH.final_logit_softcapping", T_F32, 0.0, "0", ("gemma3",))]:
        fn = meta(key, t, v)
        if key == "ARCH.rope.scaling.type":
            def fn(g):
                g.set("llama.rope.scaling.type", T_STR, "linear")
                g.set("llama.rope.scaling.factor", T_F32, 0.0)
        for kind in kinds:
            edit("%s-%s" % (key.split(".", 1)[1].replace(".", "-"), label.split(" ")[0]),
                 "%s = %s" % (key, label), fn, kind=kind,
                 argvs=(GGUF_GEN, GGUF_INFO) if kind == "llama" and "count" in key else
                 (GGUF_GEN,))

    # Tensor infos.
    def tinfo(name, **kw):
        def go(g):
            t = g.tensor(name)
            for k, v in kw.items():
                if k == "dims_fn":
                    t["dims"] = v(t["dims"])
                else:
                    t[k] = v
        return go
    E = "token_embd.weight"
    Q = "blk.0.attn_q.weight"
    for name, kw, label, argvs in [
            (E, {"n_dims": 1000}, "n_dims 1000", ALL3),
            (E, {"n_dims": 5}, "n_dims 5", (GGUF_GEN,)),
            (E, {"dims_fn": lambda d: []}, "n_dims 0 (a scalar)", ALL3),
            (Q, {"dims_fn": lambda d: []}, "n_dims 0", (GGUF_GEN,)),
            (E, {"dims_fn": lambda d: [d[0], 2**40]}, "dims [32, 2**40]", ALL3),
            (E, {"dims_fn": lambda d: [2**32, 2**32]}, "dims [2**32, 2**32] (overflow)", ALL3),
            (E, {"dims_fn": lambda d: [2**62, 4]}, "dims [2**62, 4] (overflow)", ALL3),
            (E, {"dims_fn": lambda d: [0, d[1]]}, "dims [0, 1000]", (GGUF_GEN,)),
            (E, {"dims_fn": lambda d: [d[0], 0]}, "dims [32, 0] (vocab 0)", ALL3),
            (E, {"dims_fn": lambda d: [d[0], 999]}, "dims [32, 999]", (GGUF_GEN,)),
            (E, {"dims_fn": lambda d: [d[1], d[0]]}, "dims swapped", (GGUF_GEN,)),
            (E, {"dims_fn": lambda d: d + [1, 1]}, "dims + [1, 1] (4 dims)", (GGUF_GEN,)),
            (Q, {"dims_fn": lambda d: [d[0], 16]}, "attn_q dims [32, 16]", (GGUF_GEN,)),
            (Q, {"dims_fn": lambda d: [7, d[1]]}, "attn_q dims [7, 32]", (GGUF_GEN,)),
            ("output_norm.weight", {"dims_fn": lambda d: [2**40]}, "output_norm dims [2**40]",
             (GGUF_GEN,)),
            (E, {"type": 99}, "type 99 (unknown)", ALL3),
            (E, {"type": 2**32 - 1}, "type u32::MAX", (GGUF_GEN,)),
            (E, {"type": 4}, "type 4 (removed Q4_2)", (GGUF_GEN,)),
            (Q, {"type": 12}, "type 12 (Q4_K: 256-element blocks, 32-wide rows)", (GGUF_GEN,)),
            (Q, {"type": 1}, "type 1 (F16; data is F32)", (GGUF_GEN,)),
            (Q, {"type": 8}, "type 8 (Q8_0; data is F32)", (GGUF_GEN,)),
            (E, {"type": 30}, "type 30 (BF16; data is F32)", (GGUF_GEN,)),
            (Q, {"type": 39}, "type 39 (MXFP4)", (GGUF_GEN,)),
            (E, {"offset": 2**63}, "offset 2**63", ALL3),
            (E, {"offset": U64_MAX}, "offset 2**64-1", ALL3),
            (E, {"offset": 10**7}, "offset beyond the file", (GGUF_GEN,)),
            (Q, {"offset": 1}, "offset 1 (misaligned, overlapping)", (GGUF_GEN,)),
            (Q, {"offset": 0}, "offset 0 (overlaps token_embd)", (GGUF_GEN,))]:
        edit("tinfo-%s-%s" % (name.split(".")[-2], label.split(" (")[0].replace(" ", "")),
             "tensor %s %s" % (name, label), tinfo(name, **kw), argvs=argvs)
    for name, kind in [(E, "llama"), ("blk.1.ffn_down.weight", "llama"),
                       ("output_norm.weight", "qwen2"), ("blk.0.attn_q.bias", "qwen2"),
                       ("blk.0.attn_q_norm.weight", "gemma3"),
                       ("blk.1.post_ffw_norm.weight", "gemma3"), ("output.weight", "llama")]:
        edit("missing-%s" % name.replace(".", "-"), "tensor %s removed" % name,
             lambda g, name=name: g.tensors.remove(g.tensor(name)), kind=kind)
    edit("tensor-dup-name", "two tensors named token_embd.weight (second [2**20, 2**20])",
         lambda g: g.tensors.append({"name": E, "dims": [2**20, 2**20], "type": 0,
                                     "data": b""}))
    edit("tensor-name-empty", "a tensor with an empty name and a huge shape",
         lambda g: g.tensors.append({"name": "", "dims": [2**30, 2**30], "type": 0,
                                     "data": b""}))

    # Non-finite data.
    def nonfinite(name, val):
        def go(g):
            t = g.tensor(name)
            t["data"] = struct.pack("<f", val) * (len(t["data"]) // 4)
        return go
    edit("data-nan-output", "output.weight all NaN", nonfinite("output.weight",
                                                               float("nan")))
    edit("data-inf-embd", "token_embd.weight all +Inf", nonfinite(E, float("inf")))
    edit("data-nan-norm", "output_norm.weight all NaN",
         nonfinite("output_norm.weight", float("nan")), kind="gemma3")

    def q8_nan_scale(g):
        for t in g.tensors:
            if t["type"] == GGML_Q8_0:
                d = bytearray(t["data"])
                for i in range(0, len(d), 34):
                    d[i:i + 2] = struct.pack("<e", float("nan"))
                t["data"] = bytes(d)
    edit("q8-nan-scales", "every Q8_0 block scale is NaN", q8_nan_scale, kind="llama-q8_0")

    # Chat templates in GGUF metadata.
    for tmpl, label in [(DOUBLING_NS, "doubling 64 times"),
                        (NESTED_RANGES, "three nested range(100000)"),
                        ("{{ raise_exception('boom') }}", "raise_exception"),
                        ("{% for %}", "syntax error"), ("", "empty")]:
        edit("chat-" + label.split(" ")[0], "tokenizer.chat_template: " + label,
             lambda g, tmpl=tmpl: g.set("tokenizer.chat_template", T_STR, tmpl),
             argvs=(GGUF_CHAT,))
    edit("chat-not-string", "tokenizer.chat_template is a u32",
         lambda g: g.set("tokenizer.chat_template", T_U32, 5), argvs=(GGUF_CHAT,))
    edit("chat-invalid-utf8", "tokenizer.chat_template is invalid UTF-8",
         lambda g: g.set("tokenizer.chat_template", T_STR, b"\xff\xfe{{ x }}"),
         argvs=(GGUF_CHAT,))
    edit("key-invalid-utf8", "a metadata key of invalid UTF-8",
         lambda g: g.add(b"\xff\xfe.key", T_U32, 1), argvs=(GGUF_GEN, GGUF_INFO))
    edit("dup-key", "general.architecture written twice (second 'nope')",
         lambda g: g.add("general.architecture", T_STR, "nope"))

    # Truncations and bit flips of the bytes.
    for kind in ("llama", "qwen2", "gemma3", "llama-q8_0"):
        b = base(kind)
        g = builders[kind]()
        g.build()
        hdr_end = g.data_start  # where the tensor data begins
        for k in range(3):
            at = rng.randrange(24, hdr_end)
            write("trunc-header-%s-%d" % (kind, k), "GGUF (%s) truncated at byte %d, in its "
                  "metadata (of %d)" % (kind, at, len(b)), b[:at],
                  GGUF_GEN if k != 1 else GGUF_TOK)
        for k in range(2):
            at = rng.randrange(hdr_end, len(b) - 1)
            write("trunc-data-%s-%d" % (kind, k), "GGUF (%s) truncated at byte %d, in its "
                  "data (of %d)" % (kind, at, len(b)), b[:at], GGUF_GEN if k == 0 else
                  GGUF_TOK)
        for k in range(4):
            bb = bytearray(b)
            flips = []
            for _ in range(rng.choice([1, 2, 8])):
                pos = rng.randrange(4, hdr_end)
                bit = rng.randrange(8)
                bb[pos] ^= 1 << bit
                flips.append("%d.%d" % (pos, bit))
            write("flip-header-%s-%d" % (kind, k), "GGUF (%s) bit flips in the header (%s)" % (
                kind, ",".join(flips)), bytes(bb), [GGUF_GEN, GGUF_TOK, GGUF_INFO,
                                                    GGUF_CHAT][k])
        bb = bytearray(b)
        for _ in range(64):
            bb[rng.randrange(hdr_end, len(b))] ^= 1 << rng.randrange(8)
        write("flip-data-%s" % kind, "GGUF (%s) 64 bit flips in the tensor data" % kind,
              bytes(bb))
    for data, label in [(b"", "empty"), (b"GGUF", "just the magic"),
                        (b"GGUF" + struct.pack("<I", 3), "magic and version"),
                        (b"GGUF" + struct.pack("<IQQ", 3, 0, 0), "no tensors and no metadata")]:
        write("tiny-" + label.split(" ")[-1], "GGUF file: %s" % label, data,
              GGUF_GEN if len(data) % 2 == 0 else GGUF_TOK)
    write("tiny-no-tensors-info", "GGUF with no tensors and no metadata (info)",
          b"GGUF" + struct.pack("<IQQ", 3, 0, 0), GGUF_INFO)
    # A folder with a broken and a valid GGUF; a .gguf that is a directory.
    c = corpus.case("gguf", "folder-two", "a folder with a.gguf (truncated) and b.gguf (valid)",
                    None, GGUF_GEN, model_rel="model")
    os.makedirs(c.model)
    with open(os.path.join(c.model, "a.gguf"), "wb") as f:
        f.write(base("llama")[:1000])
    with open(os.path.join(c.model, "b.gguf"), "wb") as f:
        f.write(base("llama"))
    c = corpus.case("gguf", "gguf-is-dir", "model.gguf is a directory", None, GGUF_GEN,
                    model_rel="model.gguf")
    os.makedirs(c.model)
    c = corpus.case("gguf", "folder-gguf-and-config", "a folder with a valid config.json / "
                    "safetensors and a truncated .gguf", "llama-causal-lm")
    c.write("x.gguf", base("llama")[:500])


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Random field edits of the JSON files: one value somewhere in the tree replaced by a value of
# another type or size, or its key removed.
# ---------------------------------------------------------------------------------------------

PALETTE = [0, -1, 1, 2**31, 2**40, U64_MAX, 1.5, -1e308, "", "x", "[MASK]", [], {}, None,
           True, False, [0], [2**40], {"type": "Nonsense"}, "__DELETE__"]
BIG_LEAVES = {"vocab", "merges", "precompiled_charsmap"}


def json_paths(node, path=(), depth=0):
    """Every path in a JSON tree, long lists and vocabularies cut to their first entries."""
    yield path
    if depth > 12:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            if k in BIG_LEAVES:
                yield path + (k,)
                if isinstance(v, dict):
                    for kk in list(v)[:3]:
                        yield path + (k, kk)
                elif isinstance(v, list):
                    for i in range(min(3, len(v))):
                        yield path + (k, i)
                continue
            yield from json_paths(v, path + (k,), depth + 1)
    elif isinstance(node, list):
        for i, v in enumerate(node[:4]):
            yield from json_paths(v, path + (i,), depth + 1)


def json_get(root, path):
    for p in path:
        root = root[p]
    return root


def mutate(rng, value):
    """Mostly a value of the same type but an odd size; sometimes another type."""
    if rng.random() < 0.35:
        return rng.choice(PALETTE)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([0, -1, 1, 2, 2**31, 2**40, value + 1, value * 1000, -value])
    if isinstance(value, float):
        return rng.choice([0.0, -1.0, 1e308, -1e308, 5e-324, value * 1e6])
    if isinstance(value, str):
        return rng.choice(["", " ", "x", value * 2, value[:1], "\u0000", "\u00ff\u0301",
                           "[MASK]", "<s>", value + "\n" + value])
    if isinstance(value, list):
        return rng.choice([[], value[:1], value * 2, list(reversed(value)), [None]])
    if isinstance(value, dict):
        if value and rng.random() < 0.6:
            v = dict(value)
            v.pop(rng.choice(list(v)))
            return v
        return {}
    return rng.choice(PALETTE)


def json_set(root, path, value):
    parent = root
    for p in path[:-1]:
        parent = parent[p]
    if value == "__DELETE__":
        if isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    else:
        parent[path[-1]] = value


def gen_fuzz(corpus):
    rng = corpus.rng
    plan = [("tokenizer.json", TOK_FIXTURES + ["bert-token-classification", "bert-nli",
                                               "roberta-base", "distilbert-masked-lm"], 70),
            ("config.json", CFG_FIXTURES, 50),
            ("generation_config.json", GEN_FIXTURES, 20),
            ("tokenizer_config.json", TOK_FIXTURES, 25)]
    for name, fixtures, count in plan:
        for k in range(count):
            f = rotate(fixtures, k)
            if name == "generation_config.json":
                argv = gen_argv(f)
            elif name == "tokenizer.json" and k % 3 == 2:
                argv = tokenize_argv()
            else:
                argv = task_argv(f)
            c = corpus.case("fuzz", "%s-%d" % (name.split(".")[0], k), "", f, argv)
            tree = c.json(name)
            paths = [p for p in json_paths(tree) if p]
            path = rng.choice(paths)
            value = mutate(rng, json_get(tree, path))
            json_set(tree, path, value)
            c.what = "%s: %s %s" % (name, "/".join(str(p) for p in path),
                                    "removed" if value == "__DELETE__" else
                                    "= " + json.dumps(value))[:200]
            c.write(name, json.dumps(tree, ensure_ascii=False))


def gen_controls(corpus):
    for f in ["bert-sequence-classification", "bert-masked-lm", "bert-question-answering",
              "distilbert-token-classification", "gpt2-causal-lm", "llama-causal-lm",
              "qwen2-causal-lm", "gemma3-causal-lm", "t5-seq2seq-lm", "bart-seq2seq-lm",
              "marian-seq2seq-lm", "deberta-v2-nli", "xlm-roberta-base", "roberta-masked-lm"]:
        corpus.case("control", "ok", "unbroken fixture (control: must exit 0)", f,
                    expect="ok")
    corpus.case("control", "ok-chat", "unbroken qwen2, --chat (control)", "qwen2-causal-lm",
                ["run", "text-generation", "-m", "{model}", "--chat", "--max-new-tokens", "4",
                 "--do-sample", "false", "Hello"], expect="ok")
    corpus.case("control", "ok-tokenize", "tokenize an unbroken fixture (control)",
                "llama-causal-lm", tokenize_argv(), expect="ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="where the corpus goes (created; a previous "
                    "corpus there is replaced)")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--count-report", action="store_true",
                    help="print the number of cases per category")
    args = ap.parse_args()

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        if os.path.exists(os.path.join(out, MARKER)):
            shutil.rmtree(out)
        elif os.listdir(out):
            sys.exit("%s exists, is not empty and is not a corpus of this script" % out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("made by scripts/make_bad_inputs.py --seed %d\n" % args.seed)

    corpus = Corpus(out, args.seed)
    gen_controls(corpus)
    gen_safetensors(corpus)
    gen_config(corpus)
    gen_generation(corpus)
    gen_tokenizer(corpus)
    gen_chat(corpus)
    gen_text(corpus)
    gen_gguf(corpus)
    gen_fuzz(corpus)
    for c in corpus.cases:
        c.finish()

    broken = sum(1 for c in corpus.cases if c.expect != "ok")
    if args.count_report:
        for cat, n in sorted(corpus.categories.items()):
            print("%-8s %d" % (cat, n))
    print("%d cases (%d broken, %d controls) in %s" % (
        len(corpus.cases), broken, len(corpus.cases) - broken, out))


if __name__ == "__main__":
    main()
