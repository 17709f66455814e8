#!/usr/bin/env python3
"""Reference attention weights and logit lens for `wick inspect` (tests/tests/inside_parity.rs).

For each tiny encoder fixture (BERT, DistilBERT, RoBERTa, XLM-R, DeBERTa-v2), AutoModel with
eager attention and output_attentions=True on one text gives the attention reference. For each
tiny causal fixture of scripts/make_fixtures.py, runs one prompt through
AutoModelForCausalLM with attn_implementation="eager", output_attentions=True and
output_hidden_states=True, and writes tests/fixtures/inside/<fixture>.json:

- ids, tokens: tokenizer(text) (special tokens added), convert_ids_to_tokens;
- attentions[layer][head][query][key];
- lens[layer][position] = top 5 (id, prob) of softmax(lm_head(norm(hidden_states[i]))) for
  layers 1..N-1, and of the model's own logits for layer N (hidden_states[N] is already
  normed), with the model's final logit softcap where it has one.

Usage: python3 scripts/inside_refs.py   (the pinned venv of scripts/make_fixtures.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fixtures  # noqa: E402  (the venv bootstrap lives there)
import tokenizer_refs  # noqa: E402  (where the real models are)

TINY = fixtures.REPO_ROOT / "tests" / "fixtures" / "tiny"
OUT_DIR = fixtures.REPO_ROOT / "tests" / "fixtures" / "inside"
FIXTURES = ["gpt2-causal-lm", "llama-causal-lm", "qwen2-causal-lm", "gemma3-causal-lm"]
# Encoders: attention weights only (the logit lens reads a causal LM head).
ENCODERS = ["bert-base", "distilbert-base", "roberta-base", "xlm-roberta-base", "deberta-v2-base"]
# Real starter models of scripts/fetch_models.py with safetensors weights transformers reads
# (SmolLM2 and Gemma 3 are GGUF only).
REAL_ENCODERS = ["all-minilm-l6-v2", "rampart-ner"]
TEXT = "The quick brown fox jumps over the lazy dog, and the cat sleeps."
TOP_K = 5


def final_norm(model):
    for base in (model.base_model, getattr(model, "model", None), model.get_decoder()):
        for name in ("norm", "ln_f", "final_layernorm"):
            if base is not None and hasattr(base, name):
                return getattr(base, name)
    raise SystemExit(f"no final norm found on {type(model).__name__}")


def load(folder: Path, auto):
    """The tokenizer, the model (eager attention, f32) and TEXT encoded."""
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = auto.from_pretrained(str(folder), attn_implementation="eager", torch_dtype=torch.float32)
    model.eval()
    return tok, model, tok(TEXT, return_tensors="pt")


def attention_doc(tok, enc, out) -> dict:
    """The text, its ids and tokens, and attentions[layer][head][query][key]."""
    ids = enc["input_ids"][0].tolist()
    return {
        "text": TEXT,
        "ids": ids,
        "tokens": tok.convert_ids_to_tokens(ids),
        "attentions": [[[[round(float(w), 8) for w in row] for row in head] for head in layer[0]] for layer in out.attentions],
    }


def reference(folder: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    tok, model, enc = load(folder, AutoModelForCausalLM)
    with torch.no_grad():
        out = model(**enc, output_attentions=True, output_hidden_states=True)
        norm = final_norm(model)
        cap = getattr(model.config, "final_logit_softcapping", None)
        layers = len(out.attentions)
        lens = []
        for i in range(1, layers + 1):
            if i < layers:
                logits = model.lm_head(norm(out.hidden_states[i]))
                if cap:
                    logits = torch.tanh(logits / cap) * cap
            else:
                logits = out.logits
            probs = torch.softmax(logits[0].float(), dim=-1)
            top = torch.topk(probs, TOP_K, dim=-1)
            lens.append([
                [[int(j), round(float(p), 8)] for j, p in zip(ids_row, p_row)]
                for ids_row, p_row in zip(top.indices.tolist(), top.values.tolist())
            ])
    return dict(attention_doc(tok, enc, out), lens=lens)


def encoder_reference(folder: Path) -> dict:
    import torch
    from transformers import AutoModel

    tok, model, enc = load(folder, AutoModel)
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    return attention_doc(tok, enc, out)


def main() -> None:
    fixtures.bootstrap(Path(__file__).resolve(), fixtures.read_requirements())
    import transformers

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES + ENCODERS:
        doc = {"made_by": "scripts/inside_refs.py", "transformers": transformers.__version__, "fixture": name}
        doc.update(reference(TINY / name) if name in FIXTURES else encoder_reference(TINY / name))
        write(name, doc)
    for name in REAL_ENCODERS:
        folder = tokenizer_refs.models_dir() / name
        if not (folder / "config.json").is_file():
            print(f"skipping {name}: {folder} is missing (run scripts/fetch_models.py)")
            continue
        doc = {"made_by": "scripts/inside_refs.py", "transformers": transformers.__version__, "model": name}
        doc.update(encoder_reference(folder))
        write(name, doc)


def write(name: str, doc: dict) -> None:
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"wrote {path.relative_to(fixtures.REPO_ROOT)} ({len(doc['ids'])} tokens, {len(doc['attentions'])} layers)")


if __name__ == "__main__":
    main()
