#!/usr/bin/env python3
"""Reference 2-D maps (PCA) for the embeddings tab's scatter (tests/tests/embedding_map.rs).

Reads the sentence-transformers embeddings of tests/fixtures/embeddings/all-minilm-l6-v2.json
and writes tests/fixtures/embeddings/all-minilm-l6-v2-pca.json: each sentence's coordinates on
the first two principal components and the explained variance ratios, computed as scikit-learn's
PCA(n_components=2).fit_transform computes them (full SVD of the centred matrix, each axis'
largest coefficient made positive), with numpy in float64.

Usage: python3 scripts/pca_refs.py   (the pinned venv of scripts/make_fixtures.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as fixtures  # noqa: E402  (the venv bootstrap lives there)

SOURCE = fixtures.REPO_ROOT / "tests" / "fixtures" / "embeddings" / "all-minilm-l6-v2.json"
OUT = SOURCE.with_name("all-minilm-l6-v2-pca.json")


def pca_2d(x):
    import numpy as np

    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    # sklearn's svd_flip(u_based_decision=False): the largest |coefficient| of each axis positive.
    signs = np.sign(vt[np.arange(vt.shape[0]), np.argmax(np.abs(vt), axis=1)])
    vt = vt * signs[:, None]
    points = centred @ vt[:2].T
    ratio = (s**2 / (s**2).sum())[:2]
    return points, ratio


def main() -> None:
    fixtures.bootstrap(Path(__file__).resolve(), fixtures.read_requirements())
    import numpy as np

    doc = json.loads(SOURCE.read_text())
    texts = [item["text"] for item in doc["items"]]
    x = np.array([item["embedding"] for item in doc["items"]], dtype=np.float64)
    points, ratio = pca_2d(x)
    out = {
        "made_by": "scripts/pca_refs.py",
        "numpy": np.__version__,
        "source": SOURCE.name,
        "texts": texts,
        "points": [[round(float(a), 7), round(float(b), 7)] for a, b in points],
        "explained_variance_ratio": [round(float(r), 7) for r in ratio],
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(fixtures.REPO_ROOT)} ({len(texts)} points)")


if __name__ == "__main__":
    main()
