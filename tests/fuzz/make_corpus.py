#!/usr/bin/python3
"""Writes the fuzzers' seed corpus (tests/fuzz/corpus/<target>/): a few
small valid inputs and a few invalid ones for each target. The files are
committed; run this again only to change them:

    /usr/bin/python3 tests/fuzz/make_corpus.py

Standard library only. The frame seeds are shaped for fuzz_frame's model
(4 dense inputs; tables of 10, 20 and 30 rows)."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def infer(n, dense, ids, logits=False):
    body = field(1, 0, n)
    if dense:
        body += field(2, 2, struct.pack("<%df" % len(dense), *dense))
    if ids:
        body += field(3, 2, struct.pack("<%dQ" % len(ids),
                                        *[i & (2**64 - 1) for i in ids]))
    if logits:
        body += field(4, 0, 1)
    return body


def request(rid, kind, body=b""):
    return field(1, 0, rid) + field(kind, 2, body)


def frame(msg):
    return struct.pack(">I", len(msg)) + msg


def frame_seeds():
    good = infer(2, [0.5, 1.0, -1.0, 2.0] * 2, [1, 2, 3, 9, 19, 29], True)
    return {
        "health": frame(request(1, 3)),
        "model_info": frame(request(2, 4)),
        "stats": frame(request(3, 5)),
        "infer_ok": frame(request(7, 2, good)),
        "infer_bad_id": frame(request(8, 2, infer(1, [0.0] * 4, [10, 0, 0]))),
        "infer_negative_id": frame(request(9, 2, infer(1, [0.0] * 4,
                                                       [-1, 0, 0]))),
        "infer_nan": frame(request(10, 2, infer(1, [float("nan"), 0, 0, 0],
                                                [0, 0, 0]))),
        "infer_wrong_counts": frame(request(11, 2, infer(3, [0.0] * 4,
                                                         [0, 0, 0]))),
        "infer_zero_samples": frame(request(12, 2, infer(0, [], []))),
        "no_body": frame(field(1, 0, 13)),
        "not_protobuf": frame(b"\xff\xff\xff\xff\x0f"),
        "length_zero": b"\x00\x00\x00\x00",
        "length_huge": b"\x7f\xff\xff\xff" + b"\x08\x01",
        "half_frame": frame(request(14, 2, good))[:20],
        "pipelined": b"".join(frame(request(20 + i, 2, good))
                              for i in range(3)) + frame(request(30, 3)),
    }


# ---- safetensors with DLRM names ----

def safetensors(tensors, meta=None, dtype="F32"):
    """tensors: list of (name, shape); values are small and deterministic."""
    header, blobs, off = {}, [], 0
    esz = 4 if dtype == "F32" else 2
    for k, (name, shape) in enumerate(tensors):
        count = 1
        for d in shape:
            count *= d
        if dtype == "F32":
            data = struct.pack("<%df" % count,
                               *[((k * 7 + i) % 13) * 0.05 - 0.3
                                 for i in range(count)])
        else:  # F16/BF16: the same bit pattern is fine for a fuzzer seed
            data = struct.pack("<%dH" % count,
                               *[0x3C00 + (i % 7) for i in range(count)])
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + count * esz]}
        blobs.append(data)
        off += count * esz
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def dlrm(rows, dim, bot, top, inter="dot"):
    t = [("emb_l.%d.weight" % k, (r, dim)) for k, r in enumerate(rows)]
    for i in range(len(bot) - 1):
        t += [("bot_l.%d.weight" % (2 * i), (bot[i + 1], bot[i])),
              ("bot_l.%d.bias" % (2 * i), (bot[i + 1],))]
    n = len(rows) + (1 if bot else 0)
    top_in = (bot[-1] if bot else 0) + (n * (n - 1) // 2 if inter == "dot"
                                        else dim * len(rows))
    widths = [top_in] + top
    for i in range(len(widths) - 1):
        t += [("top_l.%d.weight" % (2 * i), (widths[i + 1], widths[i])),
              ("top_l.%d.bias" % (2 * i), (widths[i + 1],))]
    return t


def model_seeds():
    small = dlrm([10, 20, 30], 4, [4, 8, 4], [8, 1])
    good = safetensors(small, {"interaction": "dot"})
    return {
        "dot_small": good,
        "dot_no_metadata": safetensors(small),
        "cat_no_dense": safetensors(dlrm([5, 7], 3, [], [4, 1], "cat"),
                                    {"interaction": "cat"}),
        "dot_f16": safetensors(small, {"interaction": "dot"}, "F16"),
        "dot_bf16": safetensors(small, {"interaction": "dot"}, "BF16"),
        "bad_top_width": safetensors(dlrm([10, 20], 4, [4, 4], [8, 2]),
                                     {"interaction": "dot"}),
        "bad_interaction": safetensors(small, {"interaction": "sum"}),
        "truncated": good[:len(good) // 2],
        "header_only": good[:8],
        "header_len_huge": struct.pack("<Q", 2**62) + good[8:],
        "not_json": struct.pack("<Q", 8) + b"{\"a\":[1,",
    }


def criteo_seeds():
    row = "\t".join(["1"] + [str(i * 3) for i in range(13)] +
                     ["%08x" % (0x1234567 * (i + 1) & 0xffffffff)
                      for i in range(26)])
    missing = "\t".join(["0"] + [""] * 13 + [""] * 26)
    return {
        "row": (row + "\n").encode(),
        "rows_crlf": (row + "\r\n" + row + "\n").encode(),
        "missing_fields": (missing + "\n").encode(),
        "negative_dense": ("\t".join(["0", "-5"] + ["1"] * 12 +
                                      ["a"] * 26) + "\n").encode(),
        "too_few_fields": b"1\t2\t3\n",
        "not_hex": ("\t".join(["0"] + ["1"] * 13 + ["zz"] * 26)).encode(),
    }


def jsonl_seeds():
    return {
        "two_rows": b'{"dense": [0.5, 1, 2.25], "sparse": [3, 0, 17, 4]}\n'
                    b'{"sparse": [1, 2, 3, 4], "dense": [1e-3, -2, 3e3]}\n',
        "blank_end": b'{"dense": [0, 0, 0], "sparse": [0, 0, 0, 0]}\n\n',
        "wrong_count": b'{"dense": [0, 0], "sparse": [0, 0, 0, 0]}\n',
        "negative_id": b'{"dense": [0, 0, 0], "sparse": [-1, 0, 0, 0]}\n',
        "float_overflow": b'{"dense": [1e39, 0, 0], "sparse": [0, 0, 0, 0]}\n',
        "unknown_key": b'{"dense": [0, 0, 0], "sparse": [0, 0, 0, 0], "x": 1}',
        "not_json": b'{"dense": [0, 0, 0], "sparse": [0, 0\n',
    }


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("fuzz_frame", frame_seeds())
    write("fuzz_model", model_seeds())
    write("fuzz_criteo", criteo_seeds())
    write("fuzz_jsonl", jsonl_seeds())
