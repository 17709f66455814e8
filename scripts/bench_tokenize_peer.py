#!/usr/bin/env python3
"""The peer side of `wick bench tokenize`: transformers' AutoTokenizer on the same corpus.

Loads the tokenizer, then calls `tokenizer(text)` once per text, `--repeat` passes, and prints
one JSON line in the shape `wick bench tokenize` prints. Run it with the Python of the fixtures
venv (transformers 4.57) or the GGUF reference venv (transformers 5.x, for `--gguf-file`).
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers import AutoTokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--gguf-file", help="load the tokenizer from this GGUF in the folder")
    parser.add_argument("--corpus", required=True, help="JSON list of strings")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        texts = json.load(f)
    started = time.perf_counter()
    extra = {"gguf_file": args.gguf_file} if args.gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(args.model, **extra)
    load_ms = (time.perf_counter() - started) * 1e3

    started = time.perf_counter()
    tokens = 0
    for _ in range(args.repeat):
        for text in texts:
            tokens += len(tokenizer(text)["input_ids"])
    secs = time.perf_counter() - started
    n = len(texts) * args.repeat
    print(json.dumps({
        "model": args.model,
        "load_ms": load_ms,
        "texts": n,
        "tokens": tokens,
        "encode_ms": secs * 1e3,
        "texts_per_s": n / secs,
        "tokens_per_s": tokens / secs,
    }))


if __name__ == "__main__":
    main()
