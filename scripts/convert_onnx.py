#!/usr/bin/env python3
"""Turn quantized ONNX models from registry packages back into float32 HF checkpoints.

Two models reach us only as quantized ONNX graphs, but the app loads Hugging Face
style folders (config.json + model.safetensors). This script dequantizes the ONNX
initializers exactly the way onnxruntime does and renames them to the parameter
names `transformers` uses, so `from_pretrained` (and candle) load the result as-is.

    convert_onnx.py rampart  MODEL_Q4.onnx CONFIG.json OUT.safetensors
    convert_onnx.py flan-t5  ENCODER.onnx DECODER.onnx CONFIG.json OUT.safetensors

Needs numpy, onnx and safetensors (fetch_models.py runs it in its own venv).
The mapping is driven by the graph: which op reads a weight, and the op's node
name (the exporter keeps the torch module path in it), not by initializer order.
The result is checked against the parameter list the config implies; anything
missing, extra or misshapen is an error, never a silently broken checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file


class ConversionError(Exception):
    pass


class Graph:
    """An ONNX graph with its constant tensors as numpy arrays and a consumer index."""

    def __init__(self, path: Path):
        model = onnx.load(str(path))
        self.nodes = list(model.graph.node)
        self.tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        # Some exporters keep small constants (scales, zero points) in Constant nodes.
        for node in self.nodes:
            if node.op_type == "Constant" and node.output:
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is not None:
                    self.tensors[node.output[0]] = numpy_helper.to_array(value.t)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def nodes_of(self, op_type: str) -> list[onnx.NodeProto]:
        return [n for n in self.nodes if n.op_type == op_type]

    def tensor(self, name: str) -> np.ndarray:
        if name not in self.tensors:
            raise ConversionError(f"expected a constant tensor named {name!r}")
        return self.tensors[name]

    def only_consumer(self, name: str, op_type: str) -> onnx.NodeProto:
        found = [n for n in self.consumers.get(name, []) if n.op_type == op_type]
        if len(found) != 1:
            raise ConversionError(f"expected one {op_type} reading {name!r}, found {len(found)}")
        return found[0]


def attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def module_path(node_name: str, strip_op: str) -> str:
    """'/bert/encoder/layer.0/attention/self/query/MatMul_Q4' -> 'bert.encoder.layer.0.attention.self.query'."""
    parts = node_name.strip("/").split("/")
    if len(parts) < 2 or not parts[-1].startswith(strip_op):
        raise ConversionError(f"cannot read a module path from node name {node_name!r}")
    return ".".join(parts[:-1])


# --- dequantization, mirroring onnxruntime's float32 arithmetic -------------------


def dequantize_linear(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
                      axis: int = 1) -> np.ndarray:
    """DequantizeLinear: y = (q - zero_point) * scale, per tensor or per axis."""
    if scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zero_point = None if zero_point is None else zero_point.reshape(shape)
    elif scale.ndim > 1:
        raise ConversionError("blocked DequantizeLinear is not supported")
    zp = np.int32(0) if zero_point is None else zero_point.astype(np.int32)
    return ((q.astype(np.int32) - zp).astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def unpack_nbits(packed: np.ndarray, bits: int) -> np.ndarray:
    """Split each byte into 8/bits values, lowest bits first (MatMulNBits' packing)."""
    shifts = np.arange(0, 8, bits, dtype=np.uint8)
    values = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    return values.reshape(*packed.shape[:-1], packed.shape[-1] * len(shifts))


def dequantize_matmul_nbits(graph: Graph, node: onnx.NodeProto) -> np.ndarray:
    """Weight of a com.microsoft MatMulNBits node as a float32 [N, K] matrix.

    B is stored transposed, [N, blocks, block_bytes], so the result already has the
    [out_features, in_features] layout of torch.nn.Linear.weight.
    """
    attrs = attributes(node)
    k, n, bits, block = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
    if bits not in (2, 4, 8):
        raise ConversionError(f"{node.name}: unsupported bit width {bits}")
    if len(node.input) > 4 and node.input[4]:
        raise ConversionError(f"{node.name}: g_idx (act-order) quantization is not supported")
    blocks = (k + block - 1) // block
    q = unpack_nbits(graph.tensor(node.input[1]).reshape(n, blocks, -1), bits)
    if q.shape != (n, blocks, block):
        raise ConversionError(f"{node.name}: packed weight shape {q.shape} != {(n, blocks, block)}")
    scales = graph.tensor(node.input[2]).astype(np.float32).reshape(n, blocks)
    zero_points = _nbits_zero_points(graph, node, n, blocks, bits)
    w = (q.astype(np.float32) - zero_points[..., None]) * scales[..., None]
    return np.ascontiguousarray(w.reshape(n, blocks * block)[:, :k], dtype=np.float32)


def _nbits_zero_points(graph: Graph, node: onnx.NodeProto, n: int, blocks: int, bits: int) -> np.ndarray:
    # No zero points means the symmetric default, the middle of the range (8 for 4 bits).
    if len(node.input) < 4 or not node.input[3]:
        return np.full((n, blocks), float(1 << (bits - 1)), dtype=np.float32)
    zp = graph.tensor(node.input[3])
    if zp.dtype != np.uint8:
        raise ConversionError(f"{node.name}: float zero points are not supported")
    # Packed like the weights, one row per output column, padded to whole bytes.
    return unpack_nbits(zp.reshape(n, -1), bits)[:, :blocks].astype(np.float32)


def dequantize_matmul_integer(graph: Graph, node: onnx.NodeProto) -> np.ndarray:
    """Weight of a MatMulInteger from onnxruntime's dynamic quantization, as [out, in].

    The weight scale is not an input of MatMulInteger: the quantizer multiplies the
    int32 result (after a Cast) by Mul(activation_scale, weight_scale). Follow that.
    """
    weight = graph.tensor(node.input[1])
    zero_point = graph.tensor(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    cast = graph.only_consumer(node.output[0], "Cast")
    rescale = graph.only_consumer(cast.output[0], "Mul")
    scale_name = next(i for i in rescale.input if i != cast.output[0])
    scales_mul = graph.producer.get(scale_name)
    if scales_mul is None or scales_mul.op_type != "Mul":
        raise ConversionError(f"{node.name}: cannot find the weight scale")
    weight_scales = [i for i in scales_mul.input if i in graph.tensors]
    if len(weight_scales) != 1:
        raise ConversionError(f"{node.name}: ambiguous weight scale {weight_scales}")
    scale = graph.tensor(weight_scales[0])
    # MatMul weights are [in, out]; per-channel scales run along the output axis.
    w = dequantize_linear(weight, scale, zero_point, axis=1)
    return np.ascontiguousarray(w.T)


def gathered_table(graph: Graph, dq: onnx.NodeProto) -> str | None:
    """Initializer behind a DequantizeLinear fed by Gather (plus layout-only ops), if any.

    Quantized embeddings are gathered first and dequantized after; with per-tensor
    parameters, dequantizing the whole table gives the same numbers.
    """
    name = dq.input[0]
    while name not in graph.tensors:
        node = graph.producer.get(name)
        if node is None or node.op_type not in ("Gather", "Transpose"):
            return None
        name = node.input[0]
    return name


def dequantized_tables(graph: Graph) -> dict[str, np.ndarray]:
    """Quantized lookup tables (embeddings, T5 position bias), keyed by their base name."""
    tables = {}
    for dq in graph.nodes_of("DequantizeLinear"):
        source = gathered_table(graph, dq)
        if source is None:
            continue
        scale = graph.tensor(dq.input[1])
        if scale.ndim != 0:
            raise ConversionError(f"{dq.name}: per-axis quantized tables are not supported")
        zero_point = graph.tensor(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        base = source.removesuffix("_quantized")
        tables[base] = dequantize_linear(graph.tensor(source), scale, zero_point)
    return tables


def float_parameters(graph: Graph, prefixes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Float initializers that kept their torch names (biases, norms)."""
    return {
        name: value.astype(np.float32)
        for name, value in graph.tensors.items()
        if name.startswith(prefixes) and value.dtype == np.float32 and value.ndim >= 1
    }


# --- checks ------------------------------------------------------------------------


def check_parameters(got: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected) if tuple(got[k].shape) != expected[k])
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {missing[:6]}")
    if extra:
        problems.append(f"unexpected {len(extra)}: {extra[:6]}")
    if wrong:
        problems.append("bad shapes: " + ", ".join(f"{k} {got[k].shape} != {expected[k]}" for k in wrong[:6]))
    if problems:
        raise ConversionError("; ".join(problems))
    for name, value in got.items():
        if not np.isfinite(value).all():
            raise ConversionError(f"{name} has non-finite values")


def bert_token_classification_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    h, ff = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "bert.embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
        "bert.embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], h),
        "bert.embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h),
        "bert.embeddings.LayerNorm.weight": (h,),
        "bert.embeddings.LayerNorm.bias": (h,),
        "classifier.weight": (len(cfg["id2label"]), h),
        "classifier.bias": (len(cfg["id2label"]),),
    }
    for i in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for linear, (out, inp) in {
            "attention.self.query": (h, h), "attention.self.key": (h, h),
            "attention.self.value": (h, h), "attention.output.dense": (h, h),
            "intermediate.dense": (ff, h), "output.dense": (h, ff),
        }.items():
            shapes[p + linear + ".weight"] = (out, inp)
            shapes[p + linear + ".bias"] = (out,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + norm + ".weight"] = (h,)
            shapes[p + norm + ".bias"] = (h,)
    return shapes


def t5_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    d, inner, ff = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"]
    bias = (cfg["relative_attention_num_buckets"], cfg["num_heads"])
    attn = {"q": (inner, d), "k": (inner, d), "v": (inner, d), "o": (d, inner)}
    ffn = {"wi_0": (ff, d), "wi_1": (ff, d), "wo": (d, ff)}
    shapes = {
        "shared.weight": (cfg["vocab_size"], d),
        "lm_head.weight": (cfg["vocab_size"], d),
        "encoder.final_layer_norm.weight": (d,),
        "decoder.final_layer_norm.weight": (d,),
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": bias,
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": bias,
    }
    stacks = {"encoder": (cfg["num_layers"], ["SelfAttention"]),
              "decoder": (cfg["num_decoder_layers"], ["SelfAttention", "EncDecAttention"])}
    for stack, (layers, attentions) in stacks.items():
        for i in range(layers):
            for j, name in enumerate(attentions):
                p = f"{stack}.block.{i}.layer.{j}."
                shapes[p + "layer_norm.weight"] = (d,)
                for proj, shape in attn.items():
                    shapes[p + f"{name}.{proj}.weight"] = shape
            p = f"{stack}.block.{i}.layer.{len(attentions)}."
            shapes[p + "layer_norm.weight"] = (d,)
            for proj, shape in ffn.items():
                shapes[p + f"DenseReluDense.{proj}.weight"] = shape
    return shapes


# --- the two models -----------------------------------------------------------------


def convert_rampart(onnx_path: Path, cfg: dict) -> dict[str, np.ndarray]:
    """BertForTokenClassification from a 4-bit MatMulNBits export (Rampart PII NER)."""
    graph = Graph(onnx_path)
    params = float_parameters(graph, ("bert.", "classifier."))
    params.update(dequantized_tables(graph))
    for node in graph.nodes_of("MatMulNBits"):
        params[module_path(node.name, "MatMul") + ".weight"] = dequantize_matmul_nbits(graph, node)
    if graph.nodes_of("MatMulInteger") or graph.nodes_of("DynamicQuantizeLinear"):
        raise ConversionError("unexpected int8 matmuls in the Rampart graph")
    check_parameters(params, bert_token_classification_shapes(cfg))
    return params


# The T5 export wraps the encoder as `enc` and the whole model as `m`.
T5_RENAMES = (("enc.embed_tokens", "shared"), ("enc.", "encoder."),
              ("m.shared", "shared"), ("m.", ""))


def t5_name(name: str) -> str:
    for old, new in T5_RENAMES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def t5_graph_parameters(path: Path) -> dict[str, np.ndarray]:
    graph = Graph(path)
    params = float_parameters(graph, ("enc.", "m."))
    params.update(dequantized_tables(graph))
    for node in graph.nodes_of("MatMulInteger"):
        params[module_path(node.name, "MatMul") + ".weight"] = dequantize_matmul_integer(graph, node)
    return {t5_name(name): value for name, value in params.items()}


def convert_flan_t5(encoder_path: Path, decoder_path: Path, cfg: dict) -> dict[str, np.ndarray]:
    """T5ForConditionalGeneration from onnxruntime dynamic-int8 encoder + decoder graphs."""
    params = t5_graph_parameters(encoder_path)
    for name, value in t5_graph_parameters(decoder_path).items():
        if name in params:
            # Both graphs carry the shared embedding; HF has a single tied table.
            if not np.array_equal(params[name], value):
                raise ConversionError(f"encoder and decoder disagree on {name}")
            continue
        params[name] = value
    check_parameters(params, t5_shapes(cfg))
    return params


def save(params: dict[str, np.ndarray], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    save_file({k: params[k] for k in sorted(params)}, str(tmp), metadata={"format": "pt"})
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="model", required=True)
    r = sub.add_parser("rampart", help="4-bit Rampart BERT NER -> BertForTokenClassification")
    r.add_argument("onnx", type=Path)
    r.add_argument("config", type=Path)
    r.add_argument("out", type=Path)
    t = sub.add_parser("flan-t5", help="int8 flan-t5 encoder+decoder -> T5ForConditionalGeneration")
    t.add_argument("encoder", type=Path)
    t.add_argument("decoder", type=Path)
    t.add_argument("config", type=Path)
    t.add_argument("out", type=Path)
    args = parser.parse_args(argv)

    cfg = json.loads(args.config.read_text())
    try:
        if args.model == "rampart":
            params = convert_rampart(args.onnx, cfg)
        else:
            params = convert_flan_t5(args.encoder, args.decoder, cfg)
    except ConversionError as err:
        print(f"convert_onnx: {args.model}: {err}", file=sys.stderr)
        return 1
    save(params, args.out)
    count = sum(v.size for v in params.values())
    print(f"convert_onnx: {args.model}: {len(params)} tensors, {count / 1e6:.1f}M parameters -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
