#!/usr/bin/python3
"""Exports a microrec model (.safetensors, DLRM names) to ONNX with the same
weights: inputs `dense` [B, num_dense] float32 (absent without a bottom MLP)
and `ids` [B, T] int64, output `logits` [B].

    /usr/bin/python3 tools/export_onnx.py MODEL.safetensors -o MODEL.onnx

The weights go to MODEL.onnx.data beside it (ONNX external data), streamed
from the model file, so models past protobuf's 2 GB limit export too and the
export needs little memory. Built with Debian's python3-onnx (no torch).
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mr_safetensors  # noqa: E402

OPSET = 13
ALIGN = 4096


class ExternalWriter:
    """Appends float32 tensors to one data file and makes their
    TensorProtos point at it."""

    def __init__(self, onnx_path):
        self.name = os.path.basename(onnx_path) + ".data"
        self.f = open(onnx_path + ".data", "wb")
        self.off = 0

    def add(self, name, arr):
        arr = np.asarray(arr)
        pad = (-self.off) % ALIGN
        self.f.write(b"\0" * pad)
        self.off += pad
        start = self.off
        flat = arr.reshape(-1)
        step = 1 << 24
        for i in range(0, flat.shape[0], step):  # stream big memmaps
            chunk = np.ascontiguousarray(flat[i:i + step], dtype="<f4")
            self.f.write(chunk.tobytes())
        length = flat.shape[0] * 4
        self.off += length
        t = TensorProto()
        t.name = name
        t.data_type = TensorProto.FLOAT
        t.dims.extend(arr.shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.name), ("offset", str(start)),
                     ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        return t

    def close(self):
        self.f.close()


def build(model, onnx_path):
    ext = ExternalWriter(onnx_path)
    inits, nodes = [], []
    i64 = lambda name, vals, shape: helper.make_tensor(  # noqa: E731
        name, TensorProto.INT64, shape, vals)

    inputs = []
    if model.bot:
        inputs.append(helper.make_tensor_value_info(
            "dense", TensorProto.FLOAT, ["B", model.num_dense]))
    inputs.append(helper.make_tensor_value_info(
        "ids", TensorProto.INT64, ["B", len(model.tables)]))

    def mlp(prefix, layers, x, relu_last):
        for i, (w, b) in enumerate(layers):
            inits.append(ext.add(f"{prefix}.{2 * i}.weight", w))
            inits.append(ext.add(f"{prefix}.{2 * i}.bias", b))
            y = f"{prefix}.{i}.out"
            nodes.append(helper.make_node(
                "Gemm", [x, f"{prefix}.{2 * i}.weight", f"{prefix}.{2 * i}.bias"],
                [y], transB=1))
            if i + 1 < len(layers) or relu_last:
                nodes.append(helper.make_node("Relu", [y], [y + ".relu"]))
                y += ".relu"
            x = y
        return x

    x = mlp("bot_l", model.bot, "dense", True) if model.bot else None

    embs = []
    for k, t in enumerate(model.tables):
        inits.append(ext.add(f"emb_l.{k}.weight", t))
        inits.append(i64(f"col{k}", [k], []))
        nodes.append(helper.make_node("Gather", ["ids", f"col{k}"], [f"id{k}"], axis=1))
        nodes.append(helper.make_node("Gather", [f"emb_l.{k}.weight", f"id{k}"],
                                      [f"e{k}"], axis=0))
        embs.append(f"e{k}")

    vecs = ([x] if x else []) + embs
    if model.interaction == "dot":
        n = len(vecs)
        inits.append(i64("axis1", [1], [1]))
        for v in vecs:
            nodes.append(helper.make_node("Unsqueeze", [v, "axis1"], [v + ".u"]))
        nodes.append(helper.make_node("Concat", [v + ".u" for v in vecs], ["T"], axis=1))
        nodes.append(helper.make_node("Transpose", ["T"], ["Tt"], perm=[0, 2, 1]))
        nodes.append(helper.make_node("MatMul", ["T", "Tt"], ["Z"]))
        inits.append(i64("zshape", [-1, n * n], [2]))
        nodes.append(helper.make_node("Reshape", ["Z", "zshape"], ["Zf"]))
        pairs = model.pairs()
        inits.append(i64("pairs", [i * n + j for i, j in pairs], [len(pairs)]))
        nodes.append(helper.make_node("Gather", ["Zf", "pairs"], ["P"], axis=1))
        parts = ([x] if x else []) + ["P"]
    else:
        parts = vecs
    if len(parts) > 1:
        nodes.append(helper.make_node("Concat", parts, ["top_in"], axis=1))
        top_in = "top_in"
    else:
        top_in = parts[0]
    y = mlp("top_l", model.top, top_in, False)
    inits.append(i64("flat", [-1], [1]))
    nodes.append(helper.make_node("Reshape", [y, "flat"], ["logits"]))
    ext.close()

    graph = helper.make_graph(
        nodes, "dlrm", inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B"])],
        initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="microrec tools/export_onnx.py")
    m.ir_version = 7  # readable by any onnxruntime of the last years
    onnx.save_model(m, onnx_path)
    onnx.checker.check_model(onnx_path)  # beside its .data: finds the weights


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True, help=".onnx to write")
    a = ap.parse_args()
    model = mr_safetensors.Model(a.model)
    build(model, a.output)
    print(f"{a.output} (+ .data): ONNX DLRM, {len(model.tables)} tables, "
          f"{model.interaction} interaction")


if __name__ == "__main__":
    main()
