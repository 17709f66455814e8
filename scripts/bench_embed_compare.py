#!/usr/bin/env python3
"""Side-by-side embedding benchmark: `wick bench embed` against sentence-transformers
(scripts/bench_embed_peer.py) on the same model, corpus and thread count, alternating runs so
both see the same machine, and reporting medians, the ratio, and each side's peak RSS.

    python3 scripts/bench_embed_compare.py --rounds 3 --batch-sizes 1 32
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_PY = Path.home() / ".cache" / "wick" / "fixtures-venv" / "bin" / "python"


def run(cmd: list[str], env: dict) -> tuple[dict, float]:
    """Runs one benchmark process; returns its JSON report and its own peak RSS in MiB."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{cmd[0]} failed with status {status}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    models = Path(os.environ.get("WICK_MODELS_DIR", Path.home() / ".cache" / "wick" / "models"))
    p.add_argument("--model", default=str(models / "all-minilm-l6-v2"))
    p.add_argument("--corpus", default=str(ROOT / "tests" / "fixtures" / "bench" / "sentences.json"))
    p.add_argument("--repeat", type=int, default=2, help="passes over the corpus per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--wick", default=str(ROOT / "target" / "release" / "wick"))
    args = p.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    for b in args.batch_sizes:
        common = ["--model", args.model, "--corpus", args.corpus, "--repeat", str(args.repeat),
                  "--batch-size", str(b)]
        wick, peer, wick_rss, peer_rss = [], [], [], []
        for _ in range(args.rounds):
            report, rss = run([args.wick, "bench", "embed", *common], env)
            wick.append(report["texts_per_s"])
            wick_rss.append(rss)
            report, rss = run([str(PEER_PY), str(ROOT / "scripts" / "bench_embed_peer.py"), *common,
                               "--threads", str(args.threads)], env)
            peer.append(report["texts_per_s"])
            peer_rss.append(rss)
        w, s = statistics.median(wick), statistics.median(peer)
        print(json.dumps({"batch_size": b, "wick_texts_per_s": round(w, 1),
                          "peer_texts_per_s": round(s, 1), "ratio": round(w / s, 3),
                          "wick_peak_mib": round(max(wick_rss)), "peer_peak_mib": round(max(peer_rss)),
                          "memory_ratio": round(max(wick_rss) / max(peer_rss), 3),
                          "wick_runs": [round(x, 1) for x in wick],
                          "peer_runs": [round(x, 1) for x in peer]}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
