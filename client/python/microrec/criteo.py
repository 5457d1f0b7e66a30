"""Criteo Display Advertising TSV rows (the Kaggle layout) as model input.

Each line: label, 13 integer features, 26 categorical features as hex,
tab separated, empty fields missing. Preprocessing is DLRM's Criteo
convention (the same as the server's tools and the reference outputs):
  dense: missing -> 0, negative -> 0, then ln(1 + x) as float32;
  categorical: missing -> 0, else the hex string as an unsigned integer,
  then the id for table k is value % rows[k].
"""

import numpy as np

NUM_DENSE = 13
NUM_CAT = 26


def load_criteo(path, rows=None, num_dense=NUM_DENSE, num_tables=NUM_CAT):
    """Reads a Criteo TSV file; returns (dense float32 [n, num_dense],
    sparse uint64 [n, num_tables], labels int8 [n]). rows[k] is table k's
    row count (ids are reduced mod rows[k]); None keeps the raw values.
    num_dense is 13 or 0 (a model without dense input); num_tables <= 26
    (the first categorical features are used)."""
    if num_dense not in (0, NUM_DENSE):
        raise ValueError("a Criteo row has 13 dense features; num_dense must "
                         "be 13 or 0, not %d" % num_dense)
    if not 0 <= num_tables <= NUM_CAT:
        raise ValueError("a Criteo row has 26 categorical features; "
                         "num_tables must be <= 26, not %d" % num_tables)
    if rows is not None and len(rows) < num_tables:
        raise ValueError("rows has %d entries for %d tables"
                         % (len(rows), num_tables))
    dense, sparse, labels = [], [], []
    with open(path, "r", encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 1 + NUM_DENSE + NUM_CAT:
                raise ValueError("%s:%d: %d fields, expected %d"
                                 % (path, lineno, len(fields),
                                    1 + NUM_DENSE + NUM_CAT))
            try:
                labels.append(int(fields[0] or 0))
                d = [max(int(x), 0) if x else 0
                     for x in fields[1:1 + NUM_DENSE]]
                c = [int(x, 16) if x else 0 for x in fields[1 + NUM_DENSE:]]
            except ValueError as e:
                raise ValueError("%s:%d: %s" % (path, lineno, e)) from e
            dense.append(d)
            sparse.append(c[:num_tables])
    n = len(labels)
    d = np.log1p(np.asarray(dense, dtype=np.float64).reshape(n, NUM_DENSE))
    d = d.astype(np.float32)[:, :num_dense]
    s = np.asarray(sparse, dtype=np.uint64).reshape(n, num_tables)
    if rows is not None and num_tables:
        s = s % np.asarray(rows[:num_tables], dtype=np.uint64)
    return d, s, np.asarray(labels, dtype=np.int8)
