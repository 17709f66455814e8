#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, from sentence-transformers itself.

Writes tests/fixtures/embeddings/all-minilm-l6-v2.json: 120 sentences (short, long, Unicode,
and two longer than the model's 256-token limit) with the embeddings
`SentenceTransformer(folder).encode(sentences)` returns (mean pooling, normalised).
Runs in the fixtures venv (scripts/make_fixtures.py makes it) with sentence-transformers added:

    ~/.cache/wick/fixtures-venv/bin/pip install sentence-transformers==5.1.2
    ~/.cache/wick/fixtures-venv/bin/python scripts/embedding_refs.py
"""

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentence_transformers  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("WICK_MODELS_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wick" / "models")

SUBJECTS = ["A man", "The cat", "My grandmother", "A small robot", "The orchestra", "Two children",
            "The old lighthouse", "A software engineer", "The river", "Our neighbour"]
ACTIONS = ["is eating food", "plays the violin", "walks along the beach at sunset",
           "is reading a book about the history of candles", "fixes a bug in the tokenizer",
           "sings quietly in the kitchen", "waits for the train that never comes",
           "paints the fence bright blue", "counts the stars", "writes a long letter"]


def sentences() -> list[str]:
    out = [f"{s} {a}." for s in SUBJECTS for a in ACTIONS][:90]
    corpus = json.loads((ROOT / "tests/fixtures/tokenizer/corpus.json").read_text(encoding="utf-8"))
    out += [t for t in corpus if t.strip()][:27]
    # Around and beyond max_seq_length (256 tokens; the last two are longer and get truncated).
    out += [" ".join(ACTIONS) * 4, "token " * 400, "Wick " + "candle light " * 150]
    return out


def main() -> None:
    torch.manual_seed(0)
    folder = MODELS / "all-minilm-l6-v2"
    model = SentenceTransformer(str(folder), device="cpu")
    texts = sentences()
    emb = model.encode(texts, batch_size=16, convert_to_numpy=True)
    items = [{"text": t, "embedding": [float(f"{x:.8g}") for x in e]} for t, e in zip(texts, emb)]
    out = ROOT / "tests/fixtures/embeddings/all-minilm-l6-v2.json"
    out.write_text(json.dumps({
        "model": "all-minilm-l6-v2",
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "call": "SentenceTransformer(folder).encode(texts, batch_size=16)",
        "max_seq_length": model.max_seq_length,
        "items": items,
    }, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(items)} embeddings -> {out}")


if __name__ == "__main__":
    main()
