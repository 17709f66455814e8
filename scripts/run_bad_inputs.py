#!/usr/bin/env python3
"""Runs the bad-input corpus of scripts/make_bad_inputs.py through the `wick` CLI (issue 18).

    python3 scripts/run_bad_inputs.py --wick target/debug/wick --corpus DIR \\
        [--jobs 2] [--timeout 30] [--as-limit 8G] [--filter REGEX] [--report FILE]

Standard library only. Each case runs as

    prlimit --as=<bytes> -- timeout -s KILL <timeout> <wick> <argv...>

with HF_HUB_OFFLINE=1, and passes when:
- it exits 0 or 1 (not killed by a signal, not timed out, not a usage error 2);
- its stderr has no "panicked" and no "RUST_BACKTRACE";
- on exit 1, stderr holds exactly one non-empty line besides tracing log lines (the error);
- a control case (expect "ok") exits 0.

One line per failure, then a summary; exits 1 if any case failed. --report writes every
result (with the command line that reproduces it) as JSON.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

# tracing_subscriber's default format: "2025-01-01T00:00:00.000000Z  WARN target: message".
LOG_LINE = re.compile(r"^\s*(\d{4}-\d\d-\d\dT\S+\s+)?(TRACE|DEBUG|INFO|WARN|ERROR)\s")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)(i?B)?", text.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError("not a size: %r" % text)
    n = int(m.group(1))
    return n * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[
        m.group(2).upper()]


def load_cases(corpus, pattern):
    cases = []
    for name in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, name, "case.json")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            case = json.load(f)
        if pattern and not re.search(pattern, case["id"]):
            continue
        case["_dir"] = os.path.join(corpus, name)
        cases.append(case)
    return cases


def stdin_bytes(case):
    spec = case.get("stdin")
    if spec is None:
        return b""
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if "text" in spec:
        return spec["text"].encode("utf-8")
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "repeat" in spec:
        unit = spec["repeat"].encode("utf-8")
        n = int(spec["bytes"])
        return (unit * (n // len(unit) + 1))[:n]
    if "file" in spec:
        with open(os.path.join(case["_dir"], spec["file"]), "rb") as f:
            return f.read()
    raise ValueError("unknown stdin spec in %s" % case["id"])


def command_of(case, wick, timeout, as_bytes):
    model = os.path.join(case["_dir"], case.get("model", "model"))
    argv = [a.replace("{model}", model) for a in case["argv"]]
    return ["prlimit", "--as=%d" % as_bytes, "--", "timeout", "-s", "KILL", str(timeout),
            wick] + argv


def signal_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


def message_lines(stderr):
    """Lines of stderr that are not tracing logs."""
    out = []
    for line in stderr.splitlines():
        plain = ANSI.sub("", line)
        if LOG_LINE.match(plain):
            continue
        out.append(plain)
    return out


def run_case(case, wick, timeout, as_bytes):
    cmd = command_of(case, wick, timeout, as_bytes)
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["NO_COLOR"] = "1"
    env.pop("RUST_BACKTRACE", None)
    env.pop("RUST_LOG", None)
    data = stdin_bytes(case)
    start = time.monotonic()
    # Output goes to files: a case may print megabytes, and a pipe must not block it.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as inp:
        inp.write(data)
        inp.seek(0)
        try:
            proc = subprocess.run(cmd, stdin=inp, stdout=out, stderr=err, env=env,
                                  timeout=timeout + 30)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "hung"
        elapsed = time.monotonic() - start
        err.seek(0)
        raw = err.read(1 << 20)
        stderr = raw.decode("utf-8", "replace")
        out.seek(0, os.SEEK_END)
        stdout_len = out.tell()
    result = {"id": case["id"], "what": case.get("what", ""), "rc": rc,
              "seconds": round(elapsed, 2), "stderr": stderr[:4000],
              "stdout_bytes": stdout_len,
              "command": " ".join(shlex.quote(c) for c in cmd[7:]) +
              stdin_note(case),
              "full_command": " ".join(shlex.quote(c) for c in cmd)}
    result["failure"] = judge(case, rc, stderr, elapsed, timeout)
    return result


def stdin_note(case):
    spec = case.get("stdin")
    if spec is None:
        return " </dev/null"
    if isinstance(spec, dict) and "repeat" in spec:
        return " <<< (%r repeated to %d bytes)" % (spec["repeat"], spec["bytes"])
    if isinstance(spec, dict) and "hex" in spec:
        return " < <(printf '%s')" % "".join("\\x" + spec["hex"][i:i + 2]
                                             for i in range(0, len(spec["hex"]), 2))
    if isinstance(spec, dict) and "text" in spec:
        return " < <(printf %%s %s)" % shlex.quote(spec["text"])
    return " < (stdin %r)" % (spec,)


def judge(case, rc, stderr, elapsed, timeout):
    """None when the case passed, else a short reason."""
    if rc == "hung":
        return "timeout (the runner had to kill it)"
    # `timeout -s KILL` kills the whole process group, itself included: -9 (or 137).
    if rc == 124 or (rc in (-9, 137) and elapsed >= timeout - 0.5):
        return "timeout (%ds)" % timeout
    if rc < 0:
        return "signal %s" % signal_name(-rc)
    if rc > 128:
        return "signal %s" % signal_name(rc - 128)
    if "panicked" in stderr or "RUST_BACKTRACE" in stderr:
        return "panic (exit %d)" % rc
    if rc not in (0, 1):
        return "exit %d" % rc
    if case.get("expect") == "ok" and rc != 0:
        return "control failed (exit %d)" % rc
    if rc == 1:
        lines = [l for l in message_lines(stderr)]
        nonempty = [l for l in lines if l.strip()]
        if len(nonempty) != 1:
            return "exit 1 with %d message lines" % len(nonempty)
        if any(not l.strip() for l in lines):
            return "exit 1 with blank lines around the message"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wick", required=True, help="the wick binary")
    ap.add_argument("--corpus", required=True, help="a folder made by make_bad_inputs.py")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=30, help="seconds per case")
    ap.add_argument("--as-limit", type=parse_size, default=parse_size("8G"),
                    help="address-space limit per case (prlimit --as), e.g. 8G")
    ap.add_argument("--filter", help="only the cases whose id matches this regex")
    ap.add_argument("--report", help="write every result as JSON to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = ap.parse_args()

    wick = os.path.abspath(args.wick)
    if not os.access(wick, os.X_OK):
        sys.exit("not an executable: %s" % wick)
    cases = load_cases(args.corpus, args.filter)
    if not cases:
        sys.exit("no cases in %s" % args.corpus)

    start = time.monotonic()
    results = []
    lock = threading.Lock()
    done = [0]

    def one(case):
        r = run_case(case, wick, args.timeout, args.as_limit)
        with lock:
            done[0] += 1
            if r["failure"]:
                first = " ".join(r["stderr"][:300].split("\n")).strip()
                print("FAIL %s | %s | %s | %s" % (r["id"], r["what"], r["failure"], first),
                      flush=True)
            elif not args.quiet and done[0] % 50 == 0:
                print("... %d/%d" % (done[0], len(cases)), file=sys.stderr, flush=True)
        return r

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for r in pool.map(one, cases):
            results.append(r)
    elapsed = time.monotonic() - start

    failed = [r for r in results if r["failure"]]
    kinds = {}
    for r in failed:
        k = re.sub(r"\(.*\)", "", r["failure"]).strip()
        kinds[k] = kinds.get(k, 0) + 1
    exits = {}
    for r in results:
        exits[str(r["rc"])] = exits.get(str(r["rc"]), 0) + 1
    print("%d cases, %d passed, %d failed in %.0f s (wick %s, --jobs %d, --timeout %d, "
          "--as-limit %d)" % (len(results), len(results) - len(failed), len(failed), elapsed,
                              wick, args.jobs, args.timeout, args.as_limit))
    print("exit codes: " + ", ".join("%s: %d" % kv for kv in sorted(exits.items())))
    if kinds:
        print("failures: " + ", ".join("%s: %d" % kv for kv in sorted(kinds.items())))
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"wick": wick, "seconds": round(elapsed, 1), "results": results}, f,
                      indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
