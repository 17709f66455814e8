#!/usr/bin/env python3
"""The transformers side of `wick bench generate`: prefill and decode speed on PyTorch CPU.

Loads a causal model with `AutoModelForCausalLM` (a GGUF file is dequantized to f32, as
transformers loads GGUF), then measures as `wick bench generate` does: a prompt of
--prompt-tokens fixed pseudo-random ids in one forward pass, then --gen-tokens greedy steps with
the key/value cache, --repeat times; prints one JSON line with the medians. Run with the
fixtures venv's Python (needs `gguf` and `accelerate` for GGUF files).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a model folder (config.json) or GGUF file")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    path = Path(args.model)
    started = time.perf_counter()
    if path.suffix == ".gguf":
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.eval()
    load_ms = (time.perf_counter() - started) * 1e3
    vocab = model.config.vocab_size
    prompt = torch.tensor([[(i * 7919 + 13) % vocab for i in range(args.prompt_tokens)]])
    pp, tg = [], []
    with torch.no_grad():
        for _ in range(args.repeat):
            started = time.perf_counter()
            out = model(prompt, use_cache=True)
            pp.append(args.prompt_tokens / (time.perf_counter() - started))
            past = out.past_key_values
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            started = time.perf_counter()
            for _ in range(args.gen_tokens):
                out = model(token, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = out.logits[:, -1].argmax(-1, keepdim=True)
            tg.append(args.gen_tokens / (time.perf_counter() - started))
    print(json.dumps({
        "model": args.model, "weights": "f32 (transformers)", "load_ms": load_ms,
        "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
        "prefill_tokens_per_s": statistics.median(pp), "decode_tokens_per_s": statistics.median(tg),
    }))


if __name__ == "__main__":
    main()
