#!/usr/bin/python3
"""PyTorch (Debian's python3-torch, OpenBLAS) on a microrec model through
tools/export_torch.py, timed like `microrec bench`: per-batch latency p50
and p99 and samples per second over random batches (uniform ids, dense in
[0, 10)); one JSON line on stdout.

    bench/peer_torch.py MODEL.safetensors --batch B --threads T --seconds S
    bench/peer_torch.py MODEL.safetensors --score DENSE.f32 SPARSE.i64 OUT.f32

T is torch's intra-op thread count (set OPENBLAS_NUM_THREADS=T too, as
bench/run does). Runs under torch.inference_mode().
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import export_torch  # noqa: E402
import mr_safetensors  # noqa: E402


def openblas_core():
    """The kernel OpenBLAS chose on this CPU (OPENBLAS_CORETYPE overrides)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "not OpenBLAS"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--score", nargs=3, metavar=("DENSE", "SPARSE", "OUT"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = mr_safetensors.Model(a.model)
    net = export_torch.DLRM(model).eval()
    nd, nt = model.num_dense, len(model.tables)
    with torch.inference_mode():
        if a.score:
            ids = np.fromfile(a.score[1], dtype="<i8").reshape(-1, nt)
            n = ids.shape[0]
            dense = (np.fromfile(a.score[0], dtype="<f4").reshape(n, nd) if nd
                     else np.zeros((n, 0), np.float32))
            out = net(torch.from_numpy(dense), torch.from_numpy(ids)).numpy()
            out.astype("<f4").tofile(a.score[2])
            return
        pool = []
        for p in range(32):
            d, i = mr_safetensors.random_inputs(model, a.batch, seed=p + 1)
            pool.append((torch.from_numpy(d), torch.from_numpy(i)))
        lat, samples = [], 0
        t0 = time.perf_counter()
        start, end = t0 + a.warmup, t0 + a.warmup + a.seconds
        k = 0
        while True:
            d, i = pool[k % len(pool)]
            k += 1
            b = time.perf_counter()
            net(d, i)
            z = time.perf_counter()
            if b < start:
                continue
            lat.append((z - b) * 1e6)
            samples += a.batch
            if z >= end:
                break
        elapsed = z - start
    lat.sort()
    pct = lambda q: lat[max(0, int(np.ceil(q * len(lat))) - 1)]  # noqa: E731
    print(json.dumps({
        "engine": "pytorch", "version": torch.__version__, "model": a.model,
        "batch": a.batch, "threads": a.threads, "mode": "intra-op",
        "batches": len(lat), "p50_us": pct(0.5), "p99_us": pct(0.99),
        "samples_per_s": samples / elapsed,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "openblas_core": openblas_core(),
        "torch_parallel": torch.__config__.parallel_info().splitlines()[0:3],
    }))


if __name__ == "__main__":
    main()
