"""A blocking, pipelining client for microrecd.

The wire protocol (proto/microrec.proto): every message is a 4-byte
big-endian length and one protobuf message; the client sends Request, the
server answers Response with the request's id. Requests may be pipelined on
one connection, so ``predict`` on a large input keeps several batches in
flight at once.

A Client is one TCP connection, used by one thread at a time. After a
timeout or a broken connection the next call reconnects.
"""

import itertools
import socket
import struct

import numpy as np

try:
    from . import microrec_pb2 as pb
except ImportError as e:  # generated at build time, never committed
    raise ImportError(
        "microrec_pb2.py is missing: run `make python` in the repository "
        "(protoc generates it from proto/microrec.proto)") from e

__all__ = ["Client", "MicrorecError", "MicrorecTimeout",
           "MicrorecConnectionError", "STATUS_NAMES"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7470
MAX_FRAME = 256 << 20

STATUS_NAMES = {v.number: v.name for v in pb.Status.DESCRIPTOR.values}


class MicrorecError(Exception):
    """An error from the server (``status`` is its code, ``status_name`` the
    code's name, ``message`` the server's explanation), or from the client
    (``status`` None)."""

    def __init__(self, message, status=None):
        self.status = status
        self.status_name = (STATUS_NAMES.get(status, "STATUS_%d" % status)
                            if status is not None else None)
        self.message = message
        text = ("%s: %s" % (self.status_name, message)
                if status is not None else message)
        super().__init__(text)


class MicrorecTimeout(MicrorecError, TimeoutError):
    """The server did not answer (or take our bytes) within the timeout."""


class MicrorecConnectionError(MicrorecError, ConnectionError):
    """Cannot connect, or the connection broke."""


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _infer_body(dense, sparse, n, want_logits):
    """The InferRequest bytes for n samples, packed by hand: the arrays are
    copied as raw little-endian bytes, which is what protobuf's packed
    float / fixed64 encoding is (much faster than filling the repeated
    fields one value at a time)."""
    parts = [b"\x08", _varint(n)]
    if dense.size:
        raw = dense.astype("<f4", copy=False).tobytes()
        parts += [b"\x12", _varint(len(raw)), raw]
    if sparse.size:
        raw = sparse.astype("<u8", copy=False).tobytes()
        parts += [b"\x1a", _varint(len(raw)), raw]
    if want_logits:
        parts.append(b"\x20\x01")
    return b"".join(parts)


def _as_samples(x, name):
    """A 2-D C-contiguous array: samples x features (1-D = one sample)."""
    a = np.asarray(x)
    if a.ndim == 1:
        return np.ascontiguousarray(a.reshape(1, -1))
    if a.ndim != 2:
        raise ValueError("%s must be 1-D (one sample) or 2-D (samples x "
                         "features), not %d-D" % (name, a.ndim))
    return np.ascontiguousarray(a)


def _ids(sparse):
    a = _as_samples(sparse, "sparse")
    if a.size and a.dtype.kind not in "iub":
        f = a.astype(np.float64)
        if not np.all(np.isfinite(f)) or not np.all(f == np.floor(f)):
            raise ValueError("sparse ids must be integers")
        a = f
    if a.size and a.dtype.kind in "if" and a.min() < 0:
        raise ValueError("sparse ids must be >= 0 (found %s)" % a.min())
    return a.astype(np.uint64)


class Client:
    """``Client(host, port, timeout=10.0, batch=256, window=8)``.

    ``timeout`` bounds every wait (connect, send, each answer) in seconds;
    ``batch`` is the samples per request of ``predict``, ``window`` the
    requests it keeps in flight. Use as a context manager to close the
    connection at the end.
    """

    def __init__(self, host=DEFAULT_HOST, port=DEFAULT_PORT, timeout=10.0,
                 batch=256, window=8):
        if batch < 1 or window < 1:
            raise ValueError("batch and window must be >= 1")
        self.host, self.port = host, int(port)
        self.timeout = timeout
        self.batch, self.window = int(batch), int(window)
        self._ids = itertools.count(1)
        self._sock = None
        self._buf = bytearray()
        self._connect()

    # -- connection ------------------------------------------------------

    def _connect(self):
        try:
            s = socket.create_connection((self.host, self.port),
                                         timeout=self.timeout)
        except socket.timeout as e:
            raise MicrorecTimeout("connecting to %s:%d timed out after %gs"
                                  % (self.host, self.port, self.timeout)) from e
        except OSError as e:
            raise MicrorecConnectionError("cannot connect to %s:%d: %s"
                                          % (self.host, self.port,
                                             e.strerror or e)) from e
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.timeout)
        self._sock = s
        self._buf = bytearray()

    def _ensure(self):
        if self._sock is None:
            self._connect()

    def _break(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self):
        """Closes the connection (a later call reconnects)."""
        self._break()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self._break()
        except Exception:
            pass

    # -- framing -----------------------------------------------------------

    def _send(self, id_, body_field, body):
        """Sends Request{id, <body_field>: body bytes}."""
        msg = b"\x08" + _varint(id_) + body_field + _varint(len(body)) + body
        frame = struct.pack(">I", len(msg)) + msg
        try:
            self._sock.sendall(frame)
        except socket.timeout as e:
            self._break()
            raise MicrorecTimeout("sending to %s:%d timed out after %gs"
                                  % (self.host, self.port, self.timeout)) from e
        except OSError as e:
            self._break()
            raise MicrorecConnectionError("sending to %s:%d failed: %s"
                                          % (self.host, self.port, e)) from e

    def _read(self, n):
        while len(self._buf) < n:
            try:
                chunk = self._sock.recv(max(65536, n - len(self._buf)))
            except socket.timeout as e:
                self._break()
                raise MicrorecTimeout("no answer from %s:%d within %gs"
                                      % (self.host, self.port,
                                         self.timeout)) from e
            except OSError as e:
                self._break()
                raise MicrorecConnectionError("reading from %s:%d failed: %s"
                                              % (self.host, self.port,
                                                 e)) from e
            if not chunk:
                self._break()
                raise MicrorecConnectionError("%s:%d closed the connection"
                                              % (self.host, self.port))
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _recv(self):
        (n,) = struct.unpack(">I", self._read(4))
        if n > MAX_FRAME:
            self._break()
            raise MicrorecError("the server announced a %d-byte frame (at "
                                "most %d expected): not the microrec "
                                "protocol?" % (n, MAX_FRAME))
        resp = pb.Response()
        try:
            resp.ParseFromString(self._read(n))
        except Exception as e:
            self._break()
            raise MicrorecError("the server sent a frame that is not a "
                                "Response: %s" % e) from e
        return resp

    def _call(self, field, body=b""):
        """One request, its answer; a non-OK status raises MicrorecError."""
        self._ensure()
        id_ = next(self._ids)
        self._send(id_, field, body)
        resp = self._recv()
        if resp.id != id_:
            self._break()
            raise MicrorecError("answer for request %d arrived while "
                                "waiting for %d" % (resp.id, id_))
        if resp.status != pb.OK:
            raise MicrorecError(resp.message, resp.status)
        return resp

    # -- API ---------------------------------------------------------------

    def predict(self, dense, sparse, logits=False):
        """Scores samples: ``dense`` is samples x num_dense floats (None or
        empty when the model has no dense input), ``sparse`` samples x
        num_tables ids; lists or numpy arrays, 1-D for one sample. Returns a
        float32 numpy array with one score (sigmoid output) per sample, or
        the logits when ``logits`` is true. Large inputs go as requests of
        ``batch`` samples, ``window`` of them in flight; a non-OK answer
        raises MicrorecError with the server's status and message (after
        draining the requests still in flight)."""
        ids = _ids(sparse)
        n = ids.shape[0]
        if dense is None or (np.asarray(dense).size == 0):
            d = np.zeros((n, 0), dtype=np.float32)
        else:
            d = _as_samples(dense, "dense").astype(np.float32, copy=False)
            if d.shape[0] != n:
                raise ValueError("dense has %d samples but sparse has %d"
                                 % (d.shape[0], n))
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        self._ensure()
        chunks = [(s, min(s + self.batch, n)) for s in range(0, n, self.batch)]
        pending = {}
        nxt = 0
        failure = None
        while nxt < len(chunks) or pending:
            while failure is None and nxt < len(chunks) and \
                    len(pending) < self.window:
                s, e = chunks[nxt]
                id_ = next(self._ids)
                self._send(id_, b"\x12",
                           _infer_body(d[s:e], ids[s:e], e - s, logits))
                pending[id_] = (s, e)
                nxt += 1
            if not pending:
                break
            resp = self._recv()
            if resp.id not in pending:
                self._break()
                raise MicrorecError("answer for request %d, which is not in "
                                    "flight" % resp.id)
            s, e = pending.pop(resp.id)
            if resp.status != pb.OK:
                if failure is None:
                    failure = MicrorecError(
                        "samples %d..%d: %s" % (s, e - 1, resp.message)
                        if n > e - s else resp.message, resp.status)
                    failure.message = resp.message
                continue
            vals = resp.infer.logits if logits else resp.infer.scores
            if len(vals) != e - s:
                self._break()
                raise MicrorecError("asked %d %s, the server returned %d"
                                    % (e - s, "logits" if logits else
                                       "scores", len(vals)))
            out[s:e] = vals
        if failure is not None:
            raise failure
        return out

    def health(self):
        """{'alive', 'ready', 'model_path', 'model_generation'}."""
        h = self._call(b"\x1a").health
        return {"alive": h.alive, "ready": h.ready,
                "model_path": h.model_path,
                "model_generation": h.model_generation}

    def model_info(self):
        """The served model: interaction, num_dense, num_tables, tables
        (rows, dim), bottom / top layers (in, out), total_bytes, backend,
        model_path."""
        m = self._call(b"\x22").model_info
        return {"interaction": m.interaction, "num_dense": m.num_dense,
                "num_tables": len(m.tables),
                "tables": [{"rows": t.rows, "dim": t.dim} for t in m.tables],
                "bottom": [(getattr(l, "in"), l.out)
                           for l in m.bottom],
                "top": [(getattr(l, "in"), l.out) for l in m.top],
                "total_bytes": m.total_bytes, "backend": m.backend,
                "model_path": m.model_path}

    def stats(self):
        """The server's counters; 'latency' maps each stage to its
        percentiles, 'errors' each status name to its count."""
        s = self._call(b"\x2a").stats
        return {"requests": s.requests, "samples": s.samples,
                "batches": s.batches, "connections": s.connections,
                "uptime_s": s.uptime_s,
                "mem_allocated_bytes": s.mem_allocated_bytes,
                "mem_resident_bytes": s.mem_resident_bytes,
                "reloads": s.reloads,
                "errors": {STATUS_NAMES.get(e.status, str(e.status)): e.count
                           for e in s.errors},
                "latency": {p.stage: {"count": p.count, "p50_us": p.p50_us,
                                      "p90_us": p.p90_us, "p99_us": p.p99_us,
                                      "p999_us": p.p999_us,
                                      "max_us": p.max_us,
                                      "mean_us": p.mean_us}
                            for p in s.latency}}
