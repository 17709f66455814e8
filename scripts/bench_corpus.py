#!/usr/bin/env python3
"""Writes tests/fixtures/bench/sentences.json: 256 English sentences of 12-30 words, the corpus
issue 4's embedding benchmark names. Built from phrase lists with a fixed seed, so reruns give
the same file; only the standard library is used."""

import json
import random
from pathlib import Path

SUBJECTS = ["The old fisherman", "A young engineer", "Our neighbour's daughter", "The city council",
            "A group of students", "The new manager", "My grandmother", "The small bakery on the corner",
            "A famous violinist", "The research team", "The football club", "A tired nurse"]
VERBS = ["decided to visit", "wrote a long letter about", "spent the whole afternoon discussing",
         "finally agreed to repair", "was surprised by", "quietly photographed", "argued for hours about",
         "carefully explained", "started a petition against", "fell in love with"]
OBJECTS = ["the abandoned railway station", "the price of fresh vegetables", "a broken wooden bridge",
           "the history of the harbour", "the plans for a new library", "an unusual red bicycle",
           "the noise from the construction site", "the recipe for apple pie", "a forgotten jazz record",
           "the view from the northern hills"]
TAILS = ["before the storm arrived", "while the children were playing outside",
         "because nobody else seemed to care", "after reading the morning newspaper",
         "even though it was raining heavily", "during the long winter holidays",
         "with the help of two friends from school", "although the budget was very small",
         "and everyone in town talked about it for weeks", "as the sun slowly set over the river"]


def sentence(rng: random.Random) -> str:
    while True:
        parts = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        for _ in range(rng.randint(0, 2)):
            parts.append(rng.choice(TAILS))
        text = " ".join(parts) + "."
        if 12 <= len(text.split()) <= 30:
            return text


def main() -> None:
    rng = random.Random(0)
    out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bench" / "sentences.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    texts = [sentence(rng) for _ in range(256)]
    out.write_text(json.dumps(texts, indent=1) + "\n", encoding="utf-8")
    words = [len(t.split()) for t in texts]
    print(f"wrote {out}: {len(texts)} sentences, {min(words)}-{max(words)} words")


if __name__ == "__main__":
    main()
