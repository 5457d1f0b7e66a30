"""Reads a microrec model (a .safetensors file with DLRM names, DESIGN.md
"Model file") into numpy arrays without copying the tables: each tensor is
a read-only memmap of the file. Used by tools/export_torch.py,
tools/export_onnx.py and the peer benchmarks in bench/.

Only the standard library and numpy (python3-numpy): run with /usr/bin/python3.
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


class Model:
    """tables: list of [rows, dim] arrays; bot, top: lists of (weight [out,
    in], bias [out]); interaction: 'dot' or 'cat'; num_dense."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        self.data_offset = 8 + n
        meta = header.pop("__metadata__", {}) or {}
        self.interaction = meta.get("interaction", "dot")
        self.header = header
        self._mm = np.memmap(path, dtype=np.uint8, mode="r")
        self.tables = []
        k = 0
        while f"emb_l.{k}.weight" in header:
            self.tables.append(self.tensor(f"emb_l.{k}.weight"))
            k += 1
        self.bot = self._layers("bot_l")
        self.top = self._layers("top_l")
        self.num_dense = self.bot[0][0].shape[1] if self.bot else 0

    def _layers(self, prefix):
        out, i = [], 0
        while f"{prefix}.{i}.weight" in self.header:
            out.append((self.tensor(f"{prefix}.{i}.weight"),
                        self.tensor(f"{prefix}.{i}.bias")))
            i += 2
        return out

    def tensor_bytes(self, name):
        """(offset in the file, byte length, dtype string, shape)."""
        h = self.header[name]
        b, e = h["data_offsets"]
        return self.data_offset + b, e - b, h["dtype"], h["shape"]

    def tensor(self, name):
        """The tensor as float32: a zero-copy memmap when stored as F32."""
        off, length, dtype, shape = self.tensor_bytes(name)
        if dtype not in _DTYPES:
            raise ValueError(f"{self.path}: tensor {name} has dtype {dtype}, "
                             "expected F32, F16 or BF16")
        raw = self._mm[off:off + length].view(_DTYPES[dtype]).reshape(shape)
        if dtype == "F32":
            return raw
        if dtype == "F16":
            return raw.astype(np.float32)
        return (raw.astype(np.uint32) << 16).view(np.float32)

    def pairs(self):
        """The dot interaction's (i, j) pairs in DLRM order."""
        n = len(self.tables) + (1 if self.bot else 0)
        return [(i, j) for i in range(1, n) for j in range(i)]


def random_inputs(model, n, seed=1):
    """n samples: dense in [0, 10) (ln(1+x) range of Criteo), uniform ids."""
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0, 10, size=(n, model.num_dense)).astype(np.float32)
    ids = np.stack([rng.integers(0, t.shape[0], size=n) for t in model.tables],
                   axis=1).astype(np.int64)
    return dense, ids
