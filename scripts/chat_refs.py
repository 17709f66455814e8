#!/usr/bin/env python3
"""Reference chat prompts for `wick tokenize --chat` (tests/tests/chat_tokens.rs).

For each model with a chat template (the tiny fixtures that ship one, and the real
models of scripts/fetch_models.py that have a tokenizer.json and a template in
their tokenizer_config.json), writes tests/fixtures/tokenizer/chat/<model>.json:
a list of conversations with what `transformers` 4.57 gives for them:

  text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=g)
  ids  = tok.apply_chat_template(messages, tokenize=True,  add_generation_prompt=g)

Usage: python3 scripts/fetch_models.py && python3 scripts/chat_refs.py
(the pinned venv of scripts/make_fixtures.py; nothing comes from the Hub).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fixtures  # noqa: E402  (the venv bootstrap lives there)
import tokenizer_refs  # noqa: E402

OUT_DIR = fixtures.REPO_ROOT / "tests" / "fixtures" / "tokenizer" / "chat"

# (name in the output, folder). Tiny fixtures are in the repository; real models in the
# models cache.
def model_folders() -> list[tuple[str, Path]]:
    tiny = fixtures.REPO_ROOT / "tests" / "fixtures" / "tiny"
    return [
        ("tiny-qwen2", tiny / "qwen2-causal-lm"),
        ("tiny-gemma3", tiny / "gemma3-causal-lm"),
        ("gemma3-270m", tokenizer_refs.models_dir() / "gemma3-270m"),
    ]


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


# Conversations that exercise what the view traces: one message, a system message (Gemma folds
# it into the first user turn), several turns, content the templates trim, non-ASCII text, a
# message repeated word for word, and a chat template marker written inside a message.
CONVERSATIONS = [
    [msg("user", "What is the capital of France?")],
    [msg("system", "You are a terse assistant."), msg("user", "Name three rivers in Europe.")],
    [
        msg("user", "Hi!"),
        msg("assistant", "Hello! How can I help?"),
        msg("user", "Hi!"),
    ],
    [msg("user", "  Leading and trailing spaces, and a new line\n")],
    [msg("user", "Ça va? 日本語のテキスト and emoji 🙂")],
    [msg("user", "Write <|im_start|> or <start_of_turn> literally.")],
]


def references(folder: Path) -> list[dict]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    out = []
    for messages in CONVERSATIONS:
        for generation_prompt in (False, True):
            try:
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
                ids = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
            except Exception as e:  # a template that refuses a conversation (roles it does not know)
                out.append({"messages": messages, "add_generation_prompt": generation_prompt, "error": str(e)})
                continue
            out.append({"messages": messages, "add_generation_prompt": generation_prompt, "text": text, "ids": list(ids)})
    return out


def main() -> None:
    fixtures.bootstrap(Path(__file__).resolve(), fixtures.read_requirements())
    import transformers

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, folder in model_folders():
        if not (folder / "tokenizer.json").is_file():
            print(f"skipping {name}: {folder} is missing (run scripts/fetch_models.py)")
            continue
        doc = {
            "made_by": "scripts/chat_refs.py",
            "transformers": transformers.__version__,
            "model": name,
            "cases": references(folder),
        }
        path = OUT_DIR / f"{name}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
        print(f"wrote {path.relative_to(fixtures.REPO_ROOT)} ({len(doc['cases'])} cases)")


if __name__ == "__main__":
    main()
