#!/usr/bin/env python3
"""Download throughput (medians; whole-process wall time, and for huggingface_hub also the
snapshot_download call alone, without interpreter start and imports): `wick download` against Python's huggingface_hub `snapshot_download`,
the same files from the same local Hub (target/debug/wick-hub-server serving the test models),
each into a fresh cache, alternating which goes first. Then the time to resume a file that a
killed download left half done.

Usage: python3 scripts/bench_download.py [--rounds 5]
Needs: cargo build --workspace --bins; python3 scripts/fetch_models.py (models + .hub-venv).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("WICK_MODELS_DIR", Path.home() / ".cache/wick/models"))
REPOS = [
    "google/flan-t5-small",
    "google/gemma-3-270m-GGUF",
    "sentence-transformers/all-MiniLM-L6-v2",
]


def timed(cmd, env):
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stderr}")
    return time.perf_counter() - t0, out.stdout


def snapshot_files(snapshot: Path):
    return sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    wick = ROOT / "target/debug/wick"
    server_bin = ROOT / "target/debug/wick-hub-server"
    python = MODELS / ".hub-venv/bin/python"
    for p in (wick, server_bin, python):
        if not p.exists():
            sys.exit(f"{p} is missing (see the usage line)")
    server = subprocess.Popen([str(server_bin)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    endpoint = server.stdout.readline().strip()
    base_env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1",
                    HF_HUB_DISABLE_PROGRESS_BARS="1")
    base_env.pop("HF_HUB_OFFLINE", None)
    base_env.pop("HF_TOKEN", None)
    work = Path(tempfile.mkdtemp(prefix="wick-bench-dl-"))
    try:
        print(f"local Hub {endpoint}; {args.rounds} rounds; wall time of each whole process\n")
        print("| repo | size | wick s | huggingface_hub s (call only) | wick MB/s | hf MB/s (call only) | speed ratio wick/hf (call only) |")
        print("|---|---|---|---|---|---|---|")
        for repo in REPOS:
            # Wick picks the files; huggingface_hub is asked for exactly those.
            cache = work / "probe"
            _, out = timed([str(wick), "download", repo], dict(base_env, HF_HUB_CACHE=str(cache)))
            snapshot = Path(out.strip())
            files = snapshot_files(snapshot)
            size = sum((snapshot / f).stat().st_size for f in files)
            shutil.rmtree(cache)
            code = ("import sys, time; from huggingface_hub import snapshot_download; "
                    "t0 = time.perf_counter(); "
                    f"snapshot_download({repo!r}, allow_patterns=sys.argv[1:]); "
                    "print(time.perf_counter() - t0)")
            times = {"wick": [], "hf": [], "hf-call": []}
            for r in range(args.rounds):
                order = ["wick", "hf"] if r % 2 == 0 else ["hf", "wick"]
                for who in order:
                    cache = work / f"{who}-{r}"
                    env = dict(base_env, HF_HUB_CACHE=str(cache))
                    cmd = ([str(wick), "download", repo] if who == "wick"
                           else [str(python), "-c", code, *files])
                    seconds, out = timed(cmd, env)
                    times[who].append(seconds)
                    if who == "hf":
                        times["hf-call"].append(float(out.strip()))
                    shutil.rmtree(cache)
            w, h = statistics.median(times["wick"]), statistics.median(times["hf"])
            c = statistics.median(times["hf-call"])
            mb = size / 1e6
            print(f"| {repo} | {mb:.0f} MB | {w:.2f} | {h:.2f} ({c:.2f}) | {mb / w:.0f} | "
                  f"{mb / h:.0f} ({mb / c:.0f}) | {h / w:.2f}x ({c / w:.2f}x) |")

        # Resume: the largest file of flan-t5 half fetched, as a killed download leaves it.
        repo = REPOS[0]
        cache = work / "resume"
        env = dict(base_env, HF_HUB_CACHE=str(cache))
        full, out = timed([str(wick), "download", repo], env)
        snapshot = Path(out.strip())
        big = max((snapshot / f for f in snapshot_files(snapshot)), key=lambda p: p.stat().st_size)
        blob = big.resolve()
        half = blob.stat().st_size // 2
        resumes = []
        for _ in range(args.rounds):
            data = blob.read_bytes() if blob.exists() else None
            if data is not None:
                (blob.parent / f"{blob.name}.incomplete").write_bytes(data[:half])
                blob.unlink()
                big.unlink()
            seconds, _ = timed([str(wick), "download", repo], env)
            resumes.append(seconds)
        print(f"\nresume {repo}: {big.name} ({blob.stat().st_size / 1e6:.0f} MB) half done: "
              f"median {statistics.median(resumes):.2f} s to finish and verify "
              f"(a full download of the repo: {full:.2f} s)")
    finally:
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
