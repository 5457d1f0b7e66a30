#!/usr/bin/python3
"""Scores a Criteo TSV file on a running microrecd.

  PYTHONPATH=client/python /usr/bin/python3 \
      client/python/examples/score_criteo.py ../shared/testdata/criteo-kaggle-1k.tsv \
      --server 127.0.0.1:7470

Reads the model's table sizes from the server, preprocesses the rows as
DLRM does for Criteo (dense ln(1 + max(x, 0)), ids hex % rows), sends them
in pipelined batches and prints one score per row (or --logits), then a
summary on stderr: rows, time, mean score and, since the file has labels,
the log loss and accuracy at 0.5.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import microrec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tsv", nargs="?",
                    default="../shared/testdata/criteo-kaggle-1k.tsv",
                    help="Criteo TSV file (default %(default)s)")
    ap.add_argument("--server", default="127.0.0.1:7470",
                    help="HOST:PORT of microrecd (default %(default)s)")
    ap.add_argument("--batch", type=int, default=256,
                    help="samples per request (default %(default)s)")
    ap.add_argument("--window", type=int, default=8,
                    help="requests in flight (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for each answer (default "
                         "%(default)s)")
    ap.add_argument("--logits", action="store_true",
                    help="print logits instead of scores")
    a = ap.parse_args()
    host, _, port = a.server.rpartition(":")
    try:
        with microrec.Client(host or "127.0.0.1", int(port), timeout=a.timeout,
                             batch=a.batch, window=a.window) as c:
            info = c.model_info()
            rows = [t["rows"] for t in info["tables"]]
            dense, sparse, labels = microrec.load_criteo(
                a.tsv, rows, num_dense=info["num_dense"],
                num_tables=info["num_tables"])
            start = time.monotonic()
            out = c.predict(dense, sparse, logits=a.logits)
            took = time.monotonic() - start
    except microrec.MicrorecError as e:
        print("score_criteo: %s" % e, file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print("score_criteo: %s" % e, file=sys.stderr)
        return 1
    sys.stdout.write("".join("%.9g\n" % v for v in out))
    p = out if not a.logits else 1 / (1 + np.exp(-out.astype(np.float64)))
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    acc = np.mean((p >= 0.5) == (labels == 1))
    print("score_criteo: %d rows in %.1f ms (%.0f rows/s), mean score %.4f, "
          "log loss %.4f, accuracy %.3f"
          % (len(out), took * 1e3, len(out) / took, p.mean(), loss, acc),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
