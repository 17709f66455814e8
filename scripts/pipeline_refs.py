#!/usr/bin/env python3
"""Reference `transformers` pipeline outputs for two real models.

Writes, for the models that scripts/fetch_models.py puts in the models cache:

* tests/fixtures/pipelines/rampart-ner.json: `token-classification` on 18 PII
  sentences (names, emails, phones, addresses, URLs; one without entities, one
  with accented names, one with emoji), each with aggregation_strategy
  none / simple / first / average / max.
* tests/fixtures/pipelines/splade-tiny.json: `fill-mask` on 15 one-mask
  sentences (default top_k=5), two with top_k=10, two with targets and one with
  two masks.
* tests/fixtures/pipelines/flan-t5-small-titles.json: `translation_en_to_de`
  on 8 sentences (pipeline defaults: 4 beams) and 3 greedy, `summarization` on
  3 paragraphs (the model's T5 summarization settings) and 2 greedy.

Each file is a list of cases shaped like tests/fixtures/tiny/*/expected.json
(without "input_ids"): {"task", "kwargs", "inputs", "output"}.

Usage: python3 scripts/fetch_models.py && python3 scripts/pipeline_refs.py
       python3 scripts/pipeline_refs.py --only splade-tiny --out /tmp/refs

Runs in the pinned fixtures venv (scripts/fixtures_requirements.txt; made by
scripts/make_fixtures.py's bootstrap, reused here) with 2 CPU threads and
deterministic kernels, so reruns are byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fixtures  # noqa: E402  (the venv bootstrap lives there)

REPO_ROOT = fixtures.REPO_ROOT
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "pipelines"


def models_dir() -> Path:
    return Path(os.environ.get("WICK_MODELS_DIR") or fixtures.cache_home() / "wick" / "models")


# --------------------------------------------------------------------------
# Inputs.
# --------------------------------------------------------------------------

NER_TEXTS = [
    "Hi, I am John Smith. Email me at john.smith@gmail.com or call +1 555 0100.",
    "Send the parcel to Maria Garcia, 42 Elm Street, Springfield, IL 62704.",
    "My name is Sarah Johnson and my phone number is (415) 555-2671.",
    "Please contact Dr. Robert Chen at robert.chen@example.org for the results.",
    "Emily Davis lives at 1600 Pennsylvania Avenue NW, Washington, DC 20500.",
    "You can reach our support team at support@acme-corp.com or visit https://www.acme-corp.com/help.",
    "Michael Brown, 221B Baker Street, London NW1 6XE, phone 020 7224 3688.",
    "Her email is jessica.wilson88@yahoo.com and she moved to Austin, Texas last year.",
    "Call David Martinez on 212-555-0199 before Friday.",
    "The invoice was sent to Linda Thompson, Apartment 5B, 350 Fifth Avenue, New York, NY 10118.",
    "Contact James O'Connor at james.oconnor@outlook.com or +44 7700 900123.",
    "Ship it to 789 Oak Drive, Portland, Oregon 97205, attention Kevin Lee.",
    "Check out my portfolio at http://annaschmidt.dev, or email anna@schmidt.io.",
    "Thomas Anderson works in Chicago and his cell is 312.555.0147.",
    "Patient: Olivia Harris, born in Seattle, address 12 Pine Road, Seattle, WA 98101.",
    # no entities
    "The weather was lovely today, so we went for a long walk in the park.",
    # accented names
    "Clément Delangue and Zoë Müller met José Núñez in Zürich; write to clement@hf.co.",
    # emoji
    "🎉 Congrats Jennifer Lopez! 📧 jlo@example.com 📞 +1 310 555 0123 🙂",
]

AGGREGATIONS = ["none", "simple", "first", "average", "max"]

MASK_TEXTS = [
    "Paris is the [MASK] of France.",
    "The cat sat on the [MASK].",
    "I drink a cup of [MASK] every morning.",
    "She plays the [MASK] in the school orchestra.",
    "The doctor told him to take the [MASK] twice a day.",
    "We need to buy some [MASK] for dinner tonight.",
    "The sun rises in the [MASK].",
    "He wrote the program in the [MASK] programming language.",
    "The football match ended in a [MASK].",
    "My favourite colour is [MASK].",
    "The stock market [MASK] sharply after the announcement.",
    "They went to the [MASK] to watch a movie.",
    "Water boils at one hundred degrees [MASK].",
    "The president gave a [MASK] to the nation.",
    "Children love to play in the [MASK] after school.",
]

TOP_K_TEXTS = [
    "The capital of Japan is [MASK].",
    "I left my keys in the [MASK].",
]

TARGET_CASES = [
    ("Paris is the [MASK] of France.", ["capital", "city", "house"]),
    ("The [MASK] barked at the mailman.", ["dog", "cat", "bird"]),
]

TWO_MASKS = "The [MASK] sat on the [MASK]."


@dataclass
class Case:
    task: str
    inputs: Any
    kwargs: dict[str, Any]


def rampart_cases() -> list[Case]:
    return [
        Case("token-classification", text, {"aggregation_strategy": strategy})
        for text in NER_TEXTS
        for strategy in AGGREGATIONS
    ]


def splade_cases() -> list[Case]:
    cases = [Case("fill-mask", text, {}) for text in MASK_TEXTS]
    cases += [Case("fill-mask", text, {"top_k": 10}) for text in TOP_K_TEXTS]
    cases += [Case("fill-mask", text, {"targets": targets}) for text, targets in TARGET_CASES]
    cases.append(Case("fill-mask", TWO_MASKS, {}))
    return cases


TRANSLATION_TEXTS = [
    "The house is wonderful.",
    "I would like a cup of coffee, please.",
    "The weather is nice today.",
    "Where is the train station?",
    "My brother lives in Berlin.",
    "Thank you very much for your help.",
    "The children are playing in the garden.",
    "This book is very interesting.",
]

SUMMARY_TEXTS = [
    "The city council met on Tuesday to discuss the new bike lanes on Main Street. After a long "
    "debate, the members voted to build them next spring, and the mayor promised more trees.",
    "Researchers at the university have built a small robot that can climb walls using tiny hooks "
    "inspired by insects. They hope it will help inspect bridges and tall buildings.",
    "The agent opened the settings page, changed the default language to German, saved the form "
    "and then reloaded the dashboard to check that the new language was applied.",
]


def flan_t5_cases() -> list[Case]:
    greedy = {"num_beams": 1}
    cases = [Case("translation_en_to_de", text, {}) for text in TRANSLATION_TEXTS]
    cases += [Case("translation_en_to_de", text, dict(greedy)) for text in TRANSLATION_TEXTS[:3]]
    cases += [Case("summarization", text, {}) for text in SUMMARY_TEXTS]
    cases += [Case("summarization", text, dict(greedy, min_length=0)) for text in SUMMARY_TEXTS[:2]]
    return cases


@dataclass
class Model:
    folder: str
    task: str
    cases: Callable[[], list[Case]]


MODELS = [
    Model("rampart-ner", "token-classification", rampart_cases),
    Model("splade-tiny", "fill-mask", splade_cases),
    Model("flan-t5-small-titles", "text2text", flan_t5_cases),
]


# --------------------------------------------------------------------------
# Running and summaries.
# --------------------------------------------------------------------------


def run_model(model: Model) -> list[dict]:
    import torch
    from transformers import pipeline

    folder = str(models_dir() / model.folder)
    pipes = {}
    out = []
    with torch.no_grad():
        for case in model.cases():
            # One pipeline per task: its task name selects the model's task_specific_params.
            if case.task not in pipes:
                pipes[case.task] = pipeline(case.task, model=folder, tokenizer=folder, device="cpu")
            output = pipes[case.task](case.inputs, **case.kwargs)
            out.append({
                "task": case.task, "kwargs": case.kwargs, "inputs": case.inputs,
                "output": fixtures.to_builtin(output),
            })
    return out


def summarize_ner(cases: list[dict]) -> None:
    groups: Counter = Counter()
    for case in cases:
        if case["kwargs"]["aggregation_strategy"] != "first":
            continue
        found = [f"{e['entity_group']}={e['word']!r}" for e in case["output"]]
        groups.update(e["entity_group"] for e in case["output"])
        print(f"  {case['inputs'][:50]:50s} -> {', '.join(found) or '(none)'}")
    print("  entity groups (first):", ", ".join(f"{k} {v}" for k, v in sorted(groups.items())))


def summarize_fill_mask(cases: list[dict]) -> None:
    for case in cases:
        output = case["output"]
        per_mask = output if output and isinstance(output[0], list) else [output]
        tops = " | ".join(" ".join(p["token_str"] for p in preds[:3]) for preds in per_mask)
        print(f"  {case['inputs'][:40]:40s} {str(case['kwargs'] or ''):35s} -> {tops}")


def summarize_text2text(cases: list[dict]) -> None:
    for case in cases:
        text = next(iter(case["output"][0].values()))
        print(f"  {case['task'][:13]:13s} {str(case['kwargs'] or ''):35s} {case['inputs'][:30]:30s} -> {text}")


SUMMARIES = {
    "token-classification": summarize_ner,
    "fill-mask": summarize_fill_mask,
    "text2text": summarize_text2text,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default tests/fixtures/pipelines)")
    parser.add_argument("--only", nargs="*", default=None, help="only these models (rampart-ner, splade-tiny, flan-t5-small-titles)")
    return parser.parse_args()


def main() -> None:
    fixtures.bootstrap(Path(__file__).resolve(), fixtures.read_requirements())
    args = parse_args()
    import torch
    import transformers

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    selected = [m for m in MODELS if not args.only or m.folder in args.only]
    missing = [m.folder for m in selected if not (models_dir() / m.folder).is_dir()]
    if missing:
        sys.exit(f"missing models in {models_dir()}: {', '.join(missing)} (run scripts/fetch_models.py)")
    args.out.mkdir(parents=True, exist_ok=True)
    for model in selected:
        cases = run_model(model)
        path = args.out / f"{model.folder}.json"
        with path.open("w", encoding="utf-8") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"{model.folder}: {len(cases)} cases -> {path}")
        SUMMARIES[model.task](cases)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
