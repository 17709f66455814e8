#!/usr/bin/env python3
"""Greedy continuations from llama.cpp for the SmolLM2 GGUF, the reference Wick's quantized path
is checked against (tests/tests/real_generation.rs).

llama.cpp is not on the test machines; this script records its answers once. Build llama.cpp
from the `llama-cpp-python` sdist on PyPI (it vendors llama.cpp):

    cmake -S <sdist>/vendor/llama.cpp -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF
    cmake --build build -j2 --target llama-simple llama-bench

then run `python3 scripts/llama_cpp_refs.py --llama-simple build/bin/llama-simple`. It runs
`llama-simple` (greedy sampling, the model's own BOS setting) on 10 prompts for 32 tokens and
writes tests/fixtures/pipelines/smollm2-llama-cpp.json: [{"prompt", "continuation"}].
"""

import argparse
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("WICK_MODELS_DIR") or Path.home() / ".cache" / "wick" / "models")
PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little",
    "The three primary colors are",
    "def fibonacci(n):",
    "Water boils at a temperature of",
    "The best way to learn a new language is",
    "In 1969, the first humans",
    "My favourite recipe for pancakes:",
    "The largest planet in our solar system",
    "Here is a short poem about the sea:",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--llama-simple", required=True, type=Path)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    model = MODELS / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    out = []
    for prompt in PROMPTS:
        run = subprocess.run(
            [str(args.llama_simple), "-m", str(model), "-n", str(args.tokens), prompt],
            capture_output=True, text=True, check=True,
        )
        text = run.stdout
        if not text.startswith(prompt):
            raise SystemExit(f"unexpected llama-simple output for {prompt!r}: {text[:80]!r}")
        # llama-simple ends with a newline after the last token.
        out.append({"prompt": prompt, "continuation": text[len(prompt):].removesuffix("\n")})
        print(f"{prompt!r} -> {out[-1]['continuation'][:60]!r}")
    path = REPO / "tests" / "fixtures" / "pipelines" / "smollm2-llama-cpp.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
