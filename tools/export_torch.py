#!/usr/bin/python3
"""Exports a microrec model (.safetensors, DLRM names) to a PyTorch module
with the same weights: DLRM's forward pass (bottom MLP, dot or cat
interaction, top MLP), returning logits.

    /usr/bin/python3 tools/export_torch.py MODEL.safetensors -o MODEL.pt
        writes a TorchScript module: torch.jit.load(path)(dense, ids) -> logits

    import export_torch; m = export_torch.build(path)   (from tools/)

Needs Debian's python3-torch (1.13) and python3-numpy.
"""
import argparse
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mr_safetensors  # noqa: E402


def _mlp(layers, relu_last):
    mods = []
    for i, (w, b) in enumerate(layers):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float32)))
            lin.bias.copy_(torch.from_numpy(np.array(b, dtype=np.float32)))
        mods.append(lin)
        if i + 1 < len(layers) or relu_last:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class DLRM(nn.Module):
    """forward(dense [B, num_dense] float32, ids [B, T] int64) -> [B] logits.
    Models without dense input ignore `dense` (pass a [B, 0] tensor)."""

    def __init__(self, model):
        super().__init__()
        self.dot = model.interaction == "dot"
        self.has_bot = len(model.bot) > 0
        # Tables copied into RAM (from the file's memmap), as a framework holds them.
        self.emb = nn.ParameterList(
            [nn.Parameter(torch.from_numpy(np.array(t, dtype=np.float32)),
                          requires_grad=False) for t in model.tables])
        self.bot = _mlp(model.bot, True) if self.has_bot else nn.Sequential()
        self.top = _mlp(model.top, False)
        pairs = model.pairs()
        n = len(model.tables) + (1 if self.has_bot else 0)
        self.register_buffer("li", torch.tensor([i for i, _ in pairs], dtype=torch.long))
        self.register_buffer("lj", torch.tensor([j for _, j in pairs], dtype=torch.long))
        self.n = n

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        # F.embedding: the fast gather of torch 1.13 (index_select is ~10x slower).
        embs = [F.embedding(ids[:, k], w) for k, w in enumerate(self.emb)]
        if self.has_bot:
            x = self.bot(dense)
            vecs = [x] + embs
        else:
            x = dense[:, :0]
            vecs = embs
        if self.dot:
            t = torch.stack(vecs, dim=1)
            z = torch.bmm(t, t.transpose(1, 2))
            top_in = torch.cat([x, z[:, self.li, self.lj]], dim=1)
        else:
            top_in = torch.cat(vecs, dim=1)
        return self.top(top_in).reshape(-1)


def build(path):
    return DLRM(mr_safetensors.Model(path)).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True, help="TorchScript .pt to write")
    a = ap.parse_args()
    m = build(a.model)
    scripted = torch.jit.script(m)
    scripted.save(a.output)
    print(f"{a.output}: TorchScript DLRM, {len(m.emb)} tables")


if __name__ == "__main__":
    main()
