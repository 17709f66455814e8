#!/usr/bin/env python3
"""The peer side of `wick bench embed`: sentence-transformers on PyTorch CPU, one text at a time.

Prints one JSON line in the shape `wick bench embed` prints. Run with the fixtures venv's Python
(sentence-transformers is pinned in scripts/fixtures_requirements.txt); `--threads` sets torch's
thread count so both sides use the same number of cores.
"""

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpus", required=True, help="JSON list of strings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1,
                        help="1: encode(text) per text; more: encode(texts, batch_size=N)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.corpus, encoding="utf-8") as f:
        texts = json.load(f)
    started = time.perf_counter()
    model = SentenceTransformer(args.model, device="cpu")
    load_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    for _ in range(args.repeat):
        if args.batch_size <= 1:
            for text in texts:
                model.encode(text)
        else:
            model.encode(texts, batch_size=args.batch_size)
    secs = time.perf_counter() - started
    n = len(texts) * args.repeat
    print(json.dumps({"model": args.model, "batch_size": args.batch_size,
                      "load_ms": load_ms, "texts": n,
                      "run_ms": secs * 1e3, "texts_per_s": n / secs}))


if __name__ == "__main__":
    main()
