#!/usr/bin/env python3
"""Generate tiny random checkpoints and the `transformers` pipeline outputs on them.

Wick's parity tests load each folder under tests/fixtures/tiny/, run the same
task with the same options, and compare against the folder's expected.json.
The weights are random, so the answers are meaningless; what matters is that
they are deterministic and that every architecture/head/pipeline option that
Wick implements is exercised.

Usage: python3 scripts/make_fixtures.py [--out DIR] [--only NAME ...]

The script installs its pinned environment (scripts/fixtures_requirements.txt)
into its own virtual environment and re-executes itself there, so the system
Python only needs the standard library. Nothing is downloaded from the Hugging
Face Hub: the tokenizers are trained here on a fixed embedded text.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
REQUIREMENTS_FILE = SCRIPTS_DIR / "fixtures_requirements.txt"
DEFAULT_OUT = REPO_ROOT / "tests" / "fixtures" / "tiny"

# Everything that influences numerics or tokenizer training order is pinned
# here. Single-threaded kernels keep float reductions in a fixed order, and the
# `tokenizers` trainers only run serially when parallelism is off.
DETERMINISTIC_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "TRANSFORMERS_VERBOSITY": "error",
    "PYTHONWARNINGS": "ignore",
}


# --------------------------------------------------------------------------
# Virtual environment bootstrap (standard library only; tokenizer_refs.py
# imports these too).
# --------------------------------------------------------------------------


def cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def default_venv() -> Path:
    return Path(os.environ.get("WICK_FIXTURES_VENV") or cache_home() / "wick" / "fixtures-venv")


def read_requirements(path: Path = REQUIREMENTS_FILE) -> list[str]:
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def ensure_venv(venv: Path, requirements: list[str]) -> None:
    """Create `venv` (if needed) and install exactly `requirements` into it.

    A stamp holding the hash of the requirement list makes reruns instant and
    makes a changed pin trigger a reinstall.
    """
    stamp = venv / "wick-requirements.sha256"
    digest = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == digest:
        return
    if not (venv / "bin" / "python").exists():
        print(f"creating virtual environment {venv}", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    print(f"installing pinned packages into {venv} (torch takes a few minutes)", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(requirements) + "\n")
    try:
        subprocess.check_call(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", req.name]
        )
    finally:
        os.unlink(req.name)
    stamp.write_text(digest + "\n")


def running_in(venv: Path) -> bool:
    return Path(sys.prefix).resolve() == venv.resolve()


def reexec_in_venv(venv: Path, script: Path, argv: list[str]) -> None:
    """Replace this process with `script` run by the venv's interpreter."""
    python = venv / "bin" / "python"
    env = dict(os.environ, **DETERMINISTIC_ENV)
    os.execve(str(python), [str(python), str(script), *argv], env)


def bootstrap(script: Path, requirements: list[str], venv: Path | None = None) -> None:
    """Make sure we run inside the pinned venv with the deterministic env."""
    venv = venv or default_venv()
    env_ok = all(os.environ.get(k) == v for k, v in DETERMINISTIC_ENV.items())
    if running_in(venv) and env_ok:
        return
    if not running_in(venv):
        ensure_venv(venv, requirements)
    reexec_in_venv(venv, script, sys.argv[1:])


# --------------------------------------------------------------------------
# Training text for the tokenizers. Written for this project; it contains the
# words that the fixture inputs use so they tokenize into sensible pieces,
# plus some accents, digits and German for the translation targets.
# --------------------------------------------------------------------------

CORPUS = """
The quick brown fox jumps over the lazy dog near the river bank.
I really enjoyed this film, the acting was wonderful and the music was beautiful.
The service at the restaurant was slow and the food was cold, so we left early.
This is the worst product I have ever bought; it broke after two days.
What a lovely surprise! The weather is warm and sunny today.
A man is playing a guitar on the street while people walk past.
Someone is making music in the park, and children are dancing.
A woman is reading a book in the library next to the window.
My name is Sarah Johnson and I live in Paris, the capital of France.
Hugging Face was founded in New York by Clément Delangue and Julien Chaumond.
John Smith works for Acme Corporation in London and travels to Berlin every month.
Maria Garcia moved from Madrid to Zürich to study physics at the university.
The meeting with Google and Microsoft will take place in Tokyo next Tuesday.
Paris is the capital of France, Berlin is the capital of Germany, and Rome is the capital of Italy.
The cat sat on the mat and the dog slept on the sofa.
Where does Sarah live? She lives in a small apartment near the old city center.
Who founded the company? The company was founded by two engineers in 2016.
When was the bridge built? The bridge was built in 1889 and repaired in 1999.
How many people live in the city? About 2,100,000 people live in the city.
The new phone has a great camera and a long battery life, but the screen is small.
The football team won the championship after a difficult season.
The government announced a new law about taxes and public health.
Scientists discovered a new species of frog in the rain forest.
The stock market fell sharply on Monday as investors worried about inflation.
Once upon a time there was a little girl who lived in a village near the forest.
The capital of France is Paris, and it is famous for the Eiffel Tower.
Deep learning models are trained on large amounts of text and images.
Tokenizers split text into words, subwords and characters before the model sees it.
The weather forecast says it will rain tomorrow morning and clear up in the evening.
Please send the report to the team before Friday afternoon.
I would like a cup of coffee and a piece of cake, please.
The house is wonderful and the garden is full of flowers.
Translate the following sentence into German as accurately as possible.
Summarize the article in one short sentence for the newsletter.
The city council approved a plan to build a new park, two schools and a hospital over the next five years.
Local residents welcomed the decision, although some worried about traffic and noise during construction.
The project will cost about 45 million euros and should be finished in 2029.
Das Haus ist wunderbar und der Garten ist voller Blumen.
Ich möchte bitte eine Tasse Kaffee und ein Stück Kuchen.
Die Katze sitzt auf der Matte und der Hund schläft auf dem Sofa.
Der schnelle braune Fuchs springt über den faulen Hund.
Guten Morgen! Wie geht es Ihnen heute? Mir geht es gut, danke.
Die Stadt plant einen neuen Park, zwei Schulen und ein Krankenhaus.
Le café est délicieux et la crème brûlée est parfaite.
Straße, Größe, Übung, naïve, façade, résumé, Ångström, jalapeño.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1000 3.14159 2.71828 1234567890.
Contact us at support@example.com or visit https://example.org/docs?page=2.
def add(a, b): return a + b  # a tiny Python function
fn main() { println!("hello, world"); }
{"name": "wick", "version": "0.1.0", "tags": ["ml", "desktop"]}
<html><body><p class="note">Hello &amp; welcome</p></body></html>
Hello world! Hello, world? HELLO WORLD. hello-world; hello_world.
It's a beautiful day, isn't it? We'll see what they've done and what you'd like.
"""


def corpus_lines() -> list[str]:
    return [line.strip() for line in CORPUS.strip().splitlines() if line.strip()]


# --------------------------------------------------------------------------
# Tokenizers. Each builder trains a small vocabulary with the `tokenizers`
# library, lays out the JSON the way that model family's published
# tokenizer.json does (special-token ids, normalizer, pre-tokenizer,
# post-processor, decoder), and wraps it in the family's fast tokenizer class
# so AutoTokenizer reloads it with the family's usual behaviour.
# --------------------------------------------------------------------------

VOCAB_SIZE = 1000
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def _train(tokenizer, trainer):
    tokenizer.train_from_iterator(corpus_lines(), trainer=trainer)
    return tokenizer


def _trained_state(tokenizer) -> dict:
    return json.loads(tokenizer.to_str())["model"]


def _bert_pre_tokenized_chars(tok) -> list[str]:
    chars = set()
    for line in corpus_lines():
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(line)):
            chars.update(word)
    return sorted(chars)


def wordpiece_tokenizer():
    """Uncased BERT-style WordPiece: [PAD]/[UNK]/[CLS]/[SEP]/[MASK] first.

    The trainer gives "##x" continuation tokens ids in hash-map order, and
    merge ties are broken by id, so training alone is not reproducible. Seeding
    every "##x" as a (temporary) special token fixes their ids up front; the
    model is then rebuilt without them being special.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer_tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    trainer_tok.normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    trainer_tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    seeded = specials + ["##" + c for c in _bert_pre_tokenized_chars(trainer_tok)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=seeded, continuing_subword_prefix="##", show_progress=False
    )
    _train(trainer_tok, trainer)

    vocab = _trained_state(trainer_tok)["vocab"]
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = trainer_tok.normalizer
    tok.pre_tokenizer = trainer_tok.pre_tokenizer
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def byte_level_bpe(specials: list[str], trailing: list[str] = ()):
    """GPT-2/RoBERTa-style byte-level BPE; `trailing` tokens get the last ids
    (RoBERTa puts <mask> at the very end of its vocabulary)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(trailing),
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    _train(tok, trainer)
    tok.decoder = decoders.ByteLevel()
    if trailing:
        tok.add_special_tokens(list(trailing))
    return tok


def qwen_bpe():
    """Qwen2-style byte-level BPE: NFC, Qwen's split regex, specials after the vocab."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    _train(tok, trainer)
    tok.add_special_tokens(specials)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def sentencepiece_bpe(specials: list[str], prefix_space: bool):
    """SentencePiece-style BPE with byte fallback (Llama, Gemma).

    Training pre-splits on whitespace and digits (like sentencepiece's
    split_by_whitespace/split_digits), so no merge ever spans a word boundary;
    the saved tokenizer then needs no pre-tokenizer, as in the published
    Llama/Gemma files. Layout: specials, the 256 <0xNN> byte tokens, then the
    learned pieces.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    scheme = "first" if prefix_space else "never"
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme), pre_tokenizers.Digits(individual_digits=True)]
    )
    learned_budget = VOCAB_SIZE - len(specials) - len(BYTE_TOKENS)
    _train(trainer_tok, trainers.BpeTrainer(vocab_size=learned_budget, show_progress=False))
    state = _trained_state(trainer_tok)

    learned = sorted(state["vocab"].items(), key=lambda kv: kv[1])
    ordered = specials + BYTE_TOKENS + [piece for piece, _ in learned if piece not in BYTE_TOKENS]
    vocab = {piece: i for i, piece in enumerate(ordered)}
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))

    steps = [normalizers.Replace(" ", "▁")]
    if prefix_space:
        steps.insert(0, normalizers.Prepend("▁"))
    tok.normalizer = normalizers.Sequence(steps)
    dec = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if prefix_space:
        dec.append(decoders.Strip(content=" ", left=1, right=0))
    tok.decoder = decoders.Sequence(dec)
    tok.add_special_tokens([s for s in specials if s != "<unk>"])
    return tok


def train_spm(work: Path, name: str, **pieces) -> Path:
    """Train a real sentencepiece Unigram model (T5, XLM-R, DeBERTa-v2, Marian).

    The `tokenizers` Unigram trainer sums floats in hash-map order, so its
    scores differ in the last digits from run to run; sentencepiece with a
    fixed seed and one thread is reproducible byte for byte. `pieces` sets the
    family's special-piece ids and names (e.g. pad_id=0, pad_piece="<pad>").
    nmt_nfkc is what the published models use; it brings the Precompiled
    normalizer into tokenizer.json.
    """
    import io

    import sentencepiece as spm

    spm.set_random_generator_seed(1234)
    model = io.BytesIO()
    options = dict(bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0)
    options.update(pieces)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()),
        model_writer=model,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        hard_vocab_limit=False,  # the corpus is too small for a hard 1000
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        num_threads=1,
        minloglevel=2,
        **options,
    )
    path = work / f"{name}.model"
    path.write_bytes(model.getvalue())
    return path


def scratch_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="wick-fixtures-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def make_bert_tokenizer(family: str):
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    cls = DistilBertTokenizerFast if family == "distilbert" else BertTokenizerFast
    return cls(tokenizer_object=wordpiece_tokenizer(), do_lower_case=True, model_max_length=512)


def make_roberta_tokenizer(family: str):
    from tokenizers import AddedToken, processors
    from transformers import BartTokenizerFast, RobertaTokenizerFast

    tok = byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>"], trailing=["<mask>"])
    tok.post_processor = processors.RobertaProcessing(
        sep=("</s>", tok.token_to_id("</s>")), cls=("<s>", tok.token_to_id("<s>")), trim_offsets=True,
        add_prefix_space=False,
    )
    cls = BartTokenizerFast if family == "bart" else RobertaTokenizerFast
    return cls(
        tokenizer_object=tok,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        add_prefix_space=False,
        trim_offsets=True,
        model_max_length=512,
    )


def make_gpt2_tokenizer(family: str):
    from tokenizers import processors
    from transformers import GPT2TokenizerFast

    tok = byte_level_bpe(["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return GPT2TokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
        add_prefix_space=False, model_max_length=256,
    )


CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def make_qwen2_tokenizer(family: str):
    from transformers import Qwen2TokenizerFast

    return Qwen2TokenizerFast(
        tokenizer_object=qwen_bpe(), unk_token=None, bos_token=None, eos_token="<|im_end|>",
        pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        chat_template=CHATML_TEMPLATE, model_max_length=256, errors="replace",
    )


def make_llama_tokenizer(family: str):
    from transformers import LlamaTokenizerFast

    tok = sentencepiece_bpe(["<unk>", "<s>", "</s>"], prefix_space=True)
    return LlamaTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        add_bos_token=True, add_eos_token=False, model_max_length=256, legacy=True,
    )


def make_gemma3_tokenizer(family: str):
    from tokenizers import pre_tokenizers
    from transformers import GemmaTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    tok = sentencepiece_bpe(specials, prefix_space=False)
    # Published Gemma files carry this no-op split (spaces are already ▁ by then).
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    return GemmaTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
        mask_token="<mask>", additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
        add_bos_token=True, add_eos_token=False, chat_template=GEMMA_TEMPLATE, model_max_length=256,
    )


# For the sentencepiece families the fast tokenizer is made the way the
# published tokenizer.json files were: the slow tokenizer reads the .model and
# transformers' converter writes the tokenizer.json. Only tokenizer.json is
# kept in the fixture (the .model adds ~250 KB of normalisation tables).


def make_t5_tokenizer(family: str):
    from transformers import T5TokenizerFast

    spm_path = train_spm(scratch_dir(), "spiece", pad_id=0, eos_id=1, unk_id=2, pad_piece="<pad>")
    # T5's converter appends <extra_id_99> .. <extra_id_0> after the pieces.
    # add_prefix_space must be explicit: left unset, the conversion in
    # transformers 4.57 sees None and drops the leading "▁" that T5 adds. But
    # saved in tokenizer_config.json it would force a reconversion from the
    # .model on every load, so the converted tokenizer is wrapped afresh.
    converted = T5TokenizerFast(
        vocab_file=str(spm_path), extra_ids=100, legacy=True, add_prefix_space=True, from_slow=True
    )
    return T5TokenizerFast(tokenizer_object=converted.backend_tokenizer, extra_ids=100, model_max_length=512)


def make_xlm_roberta_tokenizer(family: str):
    from tokenizers import AddedToken
    from transformers import XLMRobertaTokenizerFast

    # fairseq layout: the converter puts <s> <pad> </s> <unk> first, <mask> last.
    spm_path = train_spm(scratch_dir(), "sentencepiece.bpe", unk_id=0, bos_id=1, eos_id=2)
    return XLMRobertaTokenizerFast(
        vocab_file=str(spm_path), from_slow=True, model_max_length=512,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
    )


def make_deberta_v2_tokenizer(family: str):
    from transformers import DebertaV2TokenizerFast

    # DeBERTa-v3 layout: [PAD] [CLS] [SEP] [UNK] are pieces 0-3, [MASK] is added last.
    spm_path = train_spm(
        scratch_dir(), "spm", pad_id=0, bos_id=1, eos_id=2, unk_id=3,
        pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]",
    )
    return DebertaV2TokenizerFast(
        vocab_file=str(spm_path), from_slow=True, do_lower_case=False, split_by_punct=False, model_max_length=512,
        bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
        cls_token="[CLS]", mask_token="[MASK]",
    )


# Marian has no fast tokenizer class in transformers: AutoTokenizer always
# builds the sentencepiece-based MarianTokenizer from source.spm/target.spm +
# vocab.json. We save those, plus an equivalent tokenizer.json (checked id for
# id against MarianTokenizer on every corpus line) for consumers that only
# read tokenizer.json.


def marian_vocab(spm_path: Path) -> dict[str, int]:
    """Marian's vocab.json: spm pieces in spm order (</s>=0, <unk>=1), <pad> last."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    vocab["<pad>"] = len(vocab)
    return vocab


def marian_tokenizer_json(spm_path: Path, vocab: dict[str, int]):
    """tokenizer.json equivalent of MarianTokenizer with the given spm + vocab."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers.convert_slow_tokenizer import import_protobuf

    proto = import_protobuf().ModelProto()
    proto.ParseFromString(spm_path.read_bytes())
    scores = {p.piece: p.score for p in proto.pieces}
    pieces = [(piece, scores.get(piece, 0.0)) for piece, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    tok = Tokenizer(models.Unigram(pieces, unk_id=vocab["<unk>"], byte_fallback=False))
    # sentencepiece: charsmap normalisation, then strip and collapse spaces.
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap),
            normalizers.Strip(left=True, right=True),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens(["</s>", "<unk>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(
        single="$A:0 </s>:0", pair="$A:0 $B:0 </s>:0", special_tokens=[("</s>", vocab["</s>"])]
    )
    return tok


@dataclass
class MarianTokenizerFiles:
    """Stands in for a tokenizer object until the fixture folder exists:
    MarianTokenizer wants its files on disk."""

    spm_path: Path
    vocab: dict[str, int]

    def __len__(self) -> int:
        return len(self.vocab)

    def save_pretrained(self, folder: Path) -> None:
        from transformers import MarianTokenizer

        vocab_path = folder / "vocab.json"
        vocab_path.write_text(json.dumps(self.vocab, ensure_ascii=False, indent=1) + "\n")
        slow = MarianTokenizer(
            source_spm=str(self.spm_path), target_spm=str(self.spm_path), vocab=str(vocab_path),
            source_lang="en", target_lang="de", model_max_length=512,
        )
        slow.save_pretrained(folder)
        marian_tokenizer_json(self.spm_path, self.vocab).save(str(folder / "tokenizer.json"))

    @property
    def pad_token_id(self) -> int:
        return self.vocab["<pad>"]

    @property
    def eos_token_id(self) -> int:
        return self.vocab["</s>"]


def make_marian_tokenizer(family: str):
    # Marian vocabularies have no <s>: </s>=0, <unk>=1.
    spm_path = train_spm(scratch_dir(), "marian", eos_id=0, unk_id=1)
    return MarianTokenizerFiles(spm_path, marian_vocab(spm_path))


# --------------------------------------------------------------------------
# Model configs: small, but keeping each family's distinctive features
# (GQA, head_dim != hidden/heads, sliding-window layers, relative attention,
# gated feed-forward, untied heads) so parity tests exercise them.
# --------------------------------------------------------------------------

ENCODER = dict(hidden=32, layers=2, heads=4, intermediate=64)
INIT_STD = 0.2  # wider than the usual 0.02 so scores are well separated


def bert_config(tok):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tok), hidden_size=ENCODER["hidden"], num_hidden_layers=ENCODER["layers"],
        num_attention_heads=ENCODER["heads"], intermediate_size=ENCODER["intermediate"],
        max_position_embeddings=512, type_vocab_size=2, pad_token_id=tok.pad_token_id, initializer_range=INIT_STD,
    )


def distilbert_config(tok):
    from transformers import DistilBertConfig

    return DistilBertConfig(
        vocab_size=len(tok), dim=ENCODER["hidden"], n_layers=ENCODER["layers"], n_heads=ENCODER["heads"],
        hidden_dim=ENCODER["intermediate"], max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        initializer_range=INIT_STD,
    )


def roberta_config(tok):
    from transformers import RobertaConfig

    return RobertaConfig(
        vocab_size=len(tok), hidden_size=ENCODER["hidden"], num_hidden_layers=ENCODER["layers"],
        num_attention_heads=ENCODER["heads"], intermediate_size=ENCODER["intermediate"],
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, initializer_range=INIT_STD,
    )


def xlm_roberta_config(tok):
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=len(tok), hidden_size=ENCODER["hidden"], num_hidden_layers=ENCODER["layers"],
        num_attention_heads=ENCODER["heads"], intermediate_size=ENCODER["intermediate"],
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, initializer_range=INIT_STD,
    )


def deberta_v2_config(tok):
    from transformers import DebertaV2Config

    # DeBERTa-v3 style: relative attention with shared keys, log buckets,
    # no absolute position input.
    return DebertaV2Config(
        vocab_size=len(tok), hidden_size=ENCODER["hidden"], num_hidden_layers=ENCODER["layers"],
        num_attention_heads=ENCODER["heads"], intermediate_size=ENCODER["intermediate"],
        max_position_embeddings=512, type_vocab_size=0, relative_attention=True, position_buckets=64,
        max_relative_positions=-1, norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
        position_biased_input=False, pad_token_id=tok.pad_token_id, initializer_range=INIT_STD,
    )


def gpt2_config(tok):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_inner=64, n_positions=256,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, initializer_range=INIT_STD,
    )


def llama_config(tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=None, initializer_range=INIT_STD,
    )


def gemma3_config(tok):
    from transformers import Gemma3TextConfig

    # One sliding and one global layer, with a window shorter than the long
    # prompt, so the sliding mask and the two RoPE bases both matter.
    return Gemma3TextConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=256, sliding_window=8,
        layer_types=["sliding_attention", "full_attention"], rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
        query_pre_attn_scalar=16, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, initializer_range=INIT_STD,
    )


def qwen2_config(tok):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rope_theta=1_000_000.0, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        initializer_range=INIT_STD,
    )


def t5_config(tok):
    from transformers import T5Config

    # flan-t5 style: gated-gelu feed-forward and an untied LM head.
    return T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
        relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id, initializer_factor=INIT_STD * 5,
        task_specific_params={
            "summarization": {"prefix": "summarize: "},
            "translation_en_to_de": {"prefix": "translate English to German: "},
        },
    )


def bart_config(tok):
    from transformers import BartConfig

    return BartConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.eos_token_id, forced_eos_token_id=tok.eos_token_id, init_std=INIT_STD,
    )


def marian_config(tok):
    from transformers import MarianConfig

    return MarianConfig(
        vocab_size=len(tok), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        forced_eos_token_id=tok.eos_token_id, scale_embedding=True, share_encoder_decoder_embeddings=True,
        init_std=INIT_STD,
    )


# --------------------------------------------------------------------------
# Heads and the pipeline cases run on them.
# --------------------------------------------------------------------------

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
MULTI_LABELS = ["toxic", "insult", "threat", "obscene"]
NLI_LABELS = ["contradiction", "neutral", "entailment"]  # MNLI order
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

CLASSIFY_TEXTS = [
    "I really enjoyed this film, the acting was wonderful.",
    "The service at the restaurant was slow and the food was cold.",
]
PAIR_INPUT = {"text": "A man is playing a guitar.", "text_pair": "Someone is making music."}
NER_TEXTS = [
    "My name is Sarah Johnson and I live in Paris.",
    "Hugging Face was founded in New York by Clément Delangue.",
]
QA_CONTEXT = "My name is Sarah Johnson and I live in Paris, the capital of France."
QA_LONG_CONTEXT = " ".join(corpus_lines()[8:37])
ZERO_SHOT_TEXT = "The new phone has a great camera and a long battery life."
ZERO_SHOT_LABELS = ["technology", "sports", "politics"]
FEATURE_TEXTS = ["Hello world!", "The quick brown fox jumps over the lazy dog."]
GENERATION_PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    # Longer than Gemma 3's 8-token sliding window.
    "The city council approved a plan to build a new park, two schools and a hospital.",
]
SUMMARY_TEXT = " ".join(corpus_lines()[34:37])
TRANSLATION_TEXTS = ["The house is wonderful.", "I would like a cup of coffee, please."]
GREEDY = {"do_sample": False, "max_new_tokens": 8}
SEQ2SEQ_GREEDY = {"do_sample": False, "num_beams": 1, "max_new_tokens": 8}
# generate() options checked token for token. "eos_token_id": "greedy-N" stands for the N-th
# token greedy search generates on the same prompt, so that EOS handling (early stops, padding,
# finished beams) is exercised on random weights that would otherwise never emit EOS.
GENERATE_OPTIONS = [
    dict(GREEDY, num_beams=3, num_return_sequences=2),
    dict(GREEDY, num_beams=4, num_return_sequences=3, length_penalty=0.5, eos_token_id="greedy-3"),
    dict(GREEDY, num_beams=3, early_stopping=True, eos_token_id="greedy-2"),
    dict(GREEDY, num_beams=2, early_stopping="never", no_repeat_ngram_size=2, eos_token_id="greedy-4"),
    dict(GREEDY, repetition_penalty=1.5),
    dict(GREEDY, no_repeat_ngram_size=2),
    dict(GREEDY, eos_token_id="greedy-3"),
    dict(GREEDY, min_new_tokens=6, eos_token_id="greedy-3"),
]


@dataclass
class Case:
    task: str
    inputs: Any
    kwargs: dict = field(default_factory=dict)


def feature_extraction_cases(tok) -> list[Case]:
    return [Case("feature-extraction", text) for text in FEATURE_TEXTS]


def text_classification_cases(tok) -> list[Case]:
    return [
        Case("text-classification", CLASSIFY_TEXTS),
        Case("text-classification", CLASSIFY_TEXTS, {"top_k": None}),
        Case("text-classification", CLASSIFY_TEXTS[0], {"top_k": 2}),
        Case("text-classification", CLASSIFY_TEXTS[0], {"top_k": None, "function_to_apply": "sigmoid"}),
        Case("text-classification", CLASSIFY_TEXTS[0], {"top_k": None, "function_to_apply": "softmax"}),
        Case("text-classification", CLASSIFY_TEXTS[0], {"top_k": None, "function_to_apply": "none"}),
        Case("text-classification", PAIR_INPUT, {"top_k": None}),
    ]


def zero_shot_cases(tok) -> list[Case]:
    base = {"candidate_labels": ZERO_SHOT_LABELS}
    return [
        Case("text-classification", PAIR_INPUT, {"top_k": None}),
        Case("zero-shot-classification", ZERO_SHOT_TEXT, dict(base)),
        Case("zero-shot-classification", ZERO_SHOT_TEXT, dict(base, multi_label=True)),
        Case("zero-shot-classification", ZERO_SHOT_TEXT, dict(base, hypothesis_template="This review is about {}.")),
        Case("zero-shot-classification", [ZERO_SHOT_TEXT, CLASSIFY_TEXTS[0]], dict(base, multi_label=False)),
    ]


def token_classification_cases(tok) -> list[Case]:
    cases = [Case("token-classification", NER_TEXTS, {"aggregation_strategy": "none"})]
    for strategy in ["simple", "first", "average", "max"]:
        cases.append(Case("token-classification", NER_TEXTS, {"aggregation_strategy": strategy}))
    cases.append(Case("token-classification", NER_TEXTS[0], {"aggregation_strategy": "simple", "ignore_labels": []}))
    return cases


def question_answering_cases(tok) -> list[Case]:
    simple = {"question": "Where does Sarah live?", "context": QA_CONTEXT}
    long = {"question": "When was the bridge built?", "context": QA_LONG_CONTEXT}
    return [
        Case("question-answering", simple),
        Case("question-answering", simple, {"top_k": 3}),
        Case("question-answering", simple, {"max_answer_len": 3, "top_k": 2}),
        Case("question-answering", simple, {"handle_impossible_answer": True, "top_k": 2}),
        Case("question-answering", long, {"max_seq_len": 64, "doc_stride": 16, "top_k": 3}),
    ]


def fill_mask_cases(tok) -> list[Case]:
    mask = tok.mask_token
    one = f"Paris is the {mask} of France."
    return [
        Case("fill-mask", one),
        Case("fill-mask", one, {"top_k": 3}),
        Case("fill-mask", one, {"targets": ["capital", "city", "house"]}),
        Case("fill-mask", f"The {mask} sat on the {mask}.", {"top_k": 2}),
    ]


def _chat_inputs(tok) -> list[Case]:
    if not getattr(tok, "chat_template", None):
        return []
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    return [Case("text-generation", chat, dict(GREEDY))]


def text_generation_cases(tok) -> list[Case]:
    cases = [Case("text-generation", prompt, dict(GREEDY)) for prompt in GENERATION_PROMPTS]
    cases.append(Case("text-generation", GENERATION_PROMPTS[0], dict(GREEDY, return_full_text=False)))
    cases += _chat_inputs(tok)
    cases += [Case("generate", prompt, dict(GREEDY)) for prompt in GENERATION_PROMPTS]
    cases += [Case("generate", GENERATION_PROMPTS[0], dict(options)) for options in GENERATE_OPTIONS]
    cases += [Case("first-step-logits", prompt, {"top_k": 5}) for prompt in GENERATION_PROMPTS]
    cases += [Case("generate-logprobs", GENERATION_PROMPTS[1], dict(GREEDY, top_k=5))]
    return cases


def seq2seq_cases(tok) -> list[Case]:
    cases = [
        Case("summarization", SUMMARY_TEXT, dict(SEQ2SEQ_GREEDY)),
        Case("translation_en_to_de", TRANSLATION_TEXTS, dict(SEQ2SEQ_GREEDY)),
    ]
    for task, text in [("summarization", SUMMARY_TEXT)] + [("translation_en_to_de", t) for t in TRANSLATION_TEXTS]:
        cases.append(Case("generate", {"task": task, "text": text}, dict(SEQ2SEQ_GREEDY)))
        cases.append(Case("first-step-logits", {"task": task, "text": text}, {"top_k": 5}))
    return cases


def logits_cases(texts) -> list[Case]:
    """Raw head outputs on one input: lets a parity failure be localised to
    the model rather than the pipeline post-processing."""
    return [Case("logits", texts)]


@dataclass
class Head:
    auto_class: str
    labels: list[str] | None
    cases: Callable[[Any], list[Case]]
    config_extra: dict = field(default_factory=dict)
    raw_logits_input: Any = None


HEADS: dict[str, Head] = {
    "base": Head("AutoModel", None, feature_extraction_cases),
    "sequence-classification": Head(
        "AutoModelForSequenceClassification", SENTIMENT_LABELS, text_classification_cases,
        raw_logits_input=CLASSIFY_TEXTS[0],
    ),
    "multi-label-classification": Head(
        "AutoModelForSequenceClassification", MULTI_LABELS, text_classification_cases,
        {"problem_type": "multi_label_classification"}, raw_logits_input=CLASSIFY_TEXTS[0],
    ),
    "nli": Head("AutoModelForSequenceClassification", NLI_LABELS, zero_shot_cases, raw_logits_input=PAIR_INPUT),
    "token-classification": Head(
        "AutoModelForTokenClassification", NER_LABELS, token_classification_cases, raw_logits_input=NER_TEXTS[0]
    ),
    "question-answering": Head(
        "AutoModelForQuestionAnswering", None, question_answering_cases,
        raw_logits_input={"text": "Where does Sarah live?", "text_pair": QA_CONTEXT},
    ),
    "masked-lm": Head("AutoModelForMaskedLM", None, fill_mask_cases),
    "causal-lm": Head("AutoModelForCausalLM", None, text_generation_cases),
    "seq2seq-lm": Head("AutoModelForSeq2SeqLM", None, seq2seq_cases),
}

ENCODER_HEADS = [
    "base", "sequence-classification", "multi-label-classification", "nli", "token-classification",
    "question-answering", "masked-lm",
]


@dataclass
class Family:
    name: str
    tokenizer: Callable[[str], Any]
    config: Callable[[Any], Any]
    heads: list[str]


FAMILIES = [
    Family("bert", make_bert_tokenizer, bert_config, ENCODER_HEADS),
    Family("distilbert", make_bert_tokenizer, distilbert_config, ENCODER_HEADS),
    Family("roberta", make_roberta_tokenizer, roberta_config, ENCODER_HEADS),
    Family("xlm-roberta", make_xlm_roberta_tokenizer, xlm_roberta_config, ENCODER_HEADS),
    Family("deberta-v2", make_deberta_v2_tokenizer, deberta_v2_config, ENCODER_HEADS),
    Family("gpt2", make_gpt2_tokenizer, gpt2_config, ["causal-lm"]),
    Family("llama", make_llama_tokenizer, llama_config, ["causal-lm"]),
    Family("gemma3", make_gemma3_tokenizer, gemma3_config, ["causal-lm"]),
    Family("qwen2", make_qwen2_tokenizer, qwen2_config, ["causal-lm"]),
    Family("t5", make_t5_tokenizer, t5_config, ["seq2seq-lm"]),
    Family("bart", make_roberta_tokenizer, bart_config, ["seq2seq-lm"]),
    Family("marian", make_marian_tokenizer, marian_config, ["seq2seq-lm"]),
]


# --------------------------------------------------------------------------
# Building one fixture folder.
# --------------------------------------------------------------------------


def fixture_seed(name: str) -> int:
    # crc32 rather than hash(): stable across processes and Python versions.
    return zlib.crc32(name.encode())


def build_model(family: Family, head: Head, tok, seed: int):
    import torch
    import transformers

    config = family.config(tok)
    if head.labels:
        config.id2label = dict(enumerate(head.labels))
        config.label2id = {label: i for i, label in enumerate(head.labels)}
    for key, value in head.config_extra.items():
        setattr(config, key, value)
    torch.manual_seed(seed)
    model = getattr(transformers, head.auto_class).from_config(config)
    return model.eval()


def save_fixture(folder: Path, model, tok) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    drop_sentencepiece_models(folder, tok)


def drop_sentencepiece_models(folder: Path, tok) -> None:
    """Fast tokenizers reload from tokenizer.json alone; the .model files
    would only add size (Marian, which needs them, is not a fast tokenizer)."""
    from transformers import PreTrainedTokenizerFast

    if isinstance(tok, PreTrainedTokenizerFast):
        for path in folder.glob("*.model"):
            path.unlink()


# --------------------------------------------------------------------------
# Running the cases against the saved folder, the way a user would.
# --------------------------------------------------------------------------


def to_builtin(value):
    """Pipeline outputs mix numpy/torch scalars with Python types; JSON needs
    plain ones. Floats stay full precision."""
    import numpy as np
    import torch

    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_builtin(value.tolist())
    if isinstance(value, np.ndarray):
        return to_builtin(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def record_encodings(tokenizer) -> list:
    """Make `tokenizer` log the input ids of every encoding it produces.

    Swapping in a subclass (instead of wrapping) keeps isinstance checks in the
    pipelines working. Returns the (shared, clearable) log list.
    """
    log: list = []
    base = type(tokenizer)

    class Recording(base):
        def __call__(self, *args, **kwargs):
            encoding = super().__call__(*args, **kwargs)
            ids = to_builtin(encoding["input_ids"])
            log.extend(ids if ids and isinstance(ids[0], list) else [ids])
            return encoding

    Recording.__name__ = base.__name__
    Recording.__qualname__ = base.__qualname__
    tokenizer.__class__ = Recording
    return log


class CaseRunner:
    """Runs cases on one saved fixture folder, reloading it from disk through
    the Auto* classes so the saved files (not in-memory objects) are tested."""

    def __init__(self, folder: Path, head: Head):
        self.folder = folder
        self.head = head
        self.pipelines: dict[str, Any] = {}
        self.model = None
        self.tokenizer = None

    def pipeline(self, task: str):
        from transformers import pipeline

        if task not in self.pipelines:
            # One pipeline per task: creating it consumes the task prefix
            # from config.task_specific_params.
            pipe = pipeline(task, model=str(self.folder), device="cpu")
            self.pipelines[task] = (pipe, record_encodings(pipe.tokenizer))
        return self.pipelines[task]

    def loaded(self):
        import transformers

        if self.model is None:
            self.model = getattr(transformers, self.head.auto_class).from_pretrained(str(self.folder)).eval()
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.folder))
        return self.model, self.tokenizer

    def run(self, case: Case) -> dict:
        import torch

        with torch.no_grad():
            if case.task == "generate":
                return self.run_generate(case)
            if case.task == "first-step-logits":
                return self.run_first_step(case)
            if case.task == "generate-logprobs":
                return self.run_logprobs(case)
            if case.task == "logits":
                return self.run_logits(case)
            return self.run_pipeline(case)

    def run_pipeline(self, case: Case) -> dict:
        pipe, log = self.pipeline(case.task)
        log.clear()
        output = pipe(case.inputs, **case.kwargs)
        return {
            "task": case.task, "kwargs": case.kwargs, "inputs": case.inputs,
            "input_ids": list(log), "output": to_builtin(output),
        }

    def prefixed(self, spec) -> str:
        """For seq2seq generate cases: apply the pipeline's task prefix."""
        if isinstance(spec, str):
            return spec
        params = (self.loaded()[0].config.task_specific_params or {}).get(spec["task"], {})
        return params.get("prefix", "") + spec["text"]

    def encode(self, text):
        _, tok = self.loaded()
        return tok(text, return_tensors="pt")

    def run_generate(self, case: Case) -> dict:
        model, _ = self.loaded()
        text = self.prefixed(case.inputs)
        enc = self.encode(text)
        kwargs = dict(case.kwargs)
        eos = kwargs.get("eos_token_id")
        if isinstance(eos, str) and eos.startswith("greedy-"):
            greedy = model.generate(**enc, **GREEDY)[0, enc["input_ids"].shape[1]:]
            kwargs["eos_token_id"] = int(greedy[int(eos.split("-")[1]) - 1])
        out = model.generate(**enc, **kwargs, return_dict_in_generate=True, output_scores=True)
        record = {
            "task": "generate", "kwargs": kwargs, "inputs": text,
            "input_ids": to_builtin(enc["input_ids"]), "output": to_builtin(out.sequences),
        }
        if getattr(out, "sequences_scores", None) is not None:
            record["sequences_scores"] = to_builtin(out.sequences_scores)
        return record

    def run_logprobs(self, case: Case) -> dict:
        """Greedy generation with, per step, the chosen token's log-probability under the raw
        logits and the top-k (ids, log-probabilities): what Wick's logits view shows."""
        import torch

        model, _ = self.loaded()
        text = self.prefixed(case.inputs)
        enc = self.encode(text)
        kwargs = dict(case.kwargs)
        k = kwargs.pop("top_k")
        out = model.generate(**enc, **kwargs, return_dict_in_generate=True, output_logits=True)
        new = out.sequences[0, enc["input_ids"].shape[1]:]
        steps = []
        for token, logits in zip(new, out.logits):
            logprobs = torch.log_softmax(logits[0].float(), dim=-1)
            top = logprobs.topk(k)
            steps.append({
                "id": int(token), "logprob": float(logprobs[token]),
                "top_ids": to_builtin(top.indices), "top_logprobs": to_builtin(top.values),
            })
        return {
            "task": "generate-logprobs", "kwargs": case.kwargs, "inputs": text,
            "input_ids": to_builtin(enc["input_ids"]), "output": steps,
        }

    def run_first_step(self, case: Case) -> dict:
        model, _ = self.loaded()
        text = self.prefixed(case.inputs)
        enc = self.encode(text)
        if model.config.is_encoder_decoder:
            start = [[model.generation_config.decoder_start_token_id]]
            logits = model(**enc, decoder_input_ids=torch_tensor(start)).logits[0, -1]
        else:
            logits = model(**enc).logits[0, -1]
        top = logits.topk(case.kwargs["top_k"])
        return {
            "task": "first-step-logits", "kwargs": case.kwargs, "inputs": text,
            "input_ids": to_builtin(enc["input_ids"]),
            "output": {"ids": to_builtin(top.indices), "values": to_builtin(top.values)},
        }

    def run_logits(self, case: Case) -> dict:
        model, tok = self.loaded()
        spec = case.inputs
        enc = tok(spec["text"], spec["text_pair"], return_tensors="pt") if isinstance(spec, dict) else self.encode(spec)
        out = model(**enc)
        names = [n for n in ("logits", "start_logits", "end_logits") if getattr(out, n, None) is not None]
        return {
            "task": "logits", "kwargs": {}, "inputs": spec, "input_ids": to_builtin(enc["input_ids"]),
            "output": {n: to_builtin(getattr(out, n)[0]) for n in names},
        }


def torch_tensor(value):
    import torch

    return torch.tensor(value, dtype=torch.long)


def check_marian_tokenizer_json(folder: Path, expected: list[dict]) -> None:
    """The extra Marian tokenizer.json must give MarianTokenizer's ids on the
    fixture inputs. On other text the two may split a run of equally scored
    pieces differently (e.g. "000" as 0+00 or 00+0): sentencepiece and
    `tokenizers` break Viterbi ties differently. Those are only reported."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    fast = Tokenizer.from_file(str(folder / "tokenizer.json"))
    slow = AutoTokenizer.from_pretrained(str(folder))
    for case in expected:
        if case["task"] in ("generate", "first-step-logits") and fast.encode(case["inputs"]).ids != case["input_ids"][0]:
            raise SystemExit(f"marian tokenizer.json disagrees with MarianTokenizer on {case['inputs']!r}")
    ties = [t for t in corpus_lines() if fast.encode(t).ids != slow(t)["input_ids"]]
    print(f"  marian tokenizer.json: {len(ties)}/{len(corpus_lines())} corpus lines split differently (Viterbi ties)")


def expected_cases(folder: Path, head: Head, tok) -> list[dict]:
    runner = CaseRunner(folder, head)
    cases = head.cases(tok)
    if head.raw_logits_input is not None:
        cases += logits_cases(head.raw_logits_input)
    return [runner.run(case) for case in cases]


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n")


def make_fixture(out: Path, family: Family, head_name: str, tok) -> Path:
    name = f"{family.name}-{head_name}"
    head = HEADS[head_name]
    folder = out / name
    model = build_model(family, head, tok, fixture_seed(name))
    save_fixture(folder, model, tok)
    expected = expected_cases(folder, head, tok)
    if family.name == "marian":
        check_marian_tokenizer_json(folder, expected)
    write_json(folder / "expected.json", expected)
    return folder


# --------------------------------------------------------------------------
# Driver.
# --------------------------------------------------------------------------


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def print_summary(folders: list[Path]) -> None:
    import tokenizers
    import torch
    import transformers

    total = 0
    print(f"\n{'fixture':40s} {'size':>10s}")
    for folder in folders:
        size = folder_size(folder)
        total += size
        flag = "  <-- over 3 MB" if size > 3 * 1024 * 1024 else ""
        print(f"{folder.name:40s} {size / 1024:8.1f} KB{flag}")
    print(f"{'total':40s} {total / 1024 / 1024:8.2f} MB")
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, tokenizers {tokenizers.__version__}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default tests/fixtures/tiny)")
    parser.add_argument("--only", nargs="*", default=None, help="only these fixtures (e.g. bert-masked-lm) or families")
    return parser.parse_args()


def selected(family: Family, head: str, only: list[str] | None) -> bool:
    return not only or family.name in only or f"{family.name}-{head}" in only


def main() -> None:
    bootstrap(Path(__file__).resolve(), read_requirements())
    args = parse_args()
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    started = time.time()
    folders = []
    for family in FAMILIES:
        heads = [h for h in family.heads if selected(family, h, args.only)]
        if not heads:
            continue
        tok = family.tokenizer(family.name)
        for head_name in heads:
            print(f"building {family.name}-{head_name}", flush=True)
            folders.append(make_fixture(args.out, family, head_name, tok))
    print_summary(folders)
    print(f"done in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
