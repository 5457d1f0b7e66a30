"""Tests of the Python client against the real microrecd of this build.

Run with `make test-python`, or:
  MICROREC_BUILD=build PYTHONPATH=client/python \
    /usr/bin/python3 -m unittest discover -s client/python/tests -v
MICROREC_BUILD is the build directory (bin/microrecd, bin/microrec);
MR_TESTDATA the shared test data (default ../shared/testdata). Tests that
need the test data skip with a message when it is absent.
"""

import os
import select
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import numpy as np

import microrec
from microrec import client as mclient
from microrec import microrec_pb2 as pb

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BUILD = os.environ.get("MICROREC_BUILD") or os.path.join(REPO, "build")
MICRORECD = os.path.join(BUILD, "bin", "microrecd")
MICROREC = os.path.join(BUILD, "bin", "microrec")
TESTDATA = os.environ.get("MR_TESTDATA") or os.path.join(REPO, "..",
                                                         "shared", "testdata")
CRITEO_TSV = os.path.join(TESTDATA, "criteo-kaggle-1k.tsv")
CRITEO_MODEL = os.path.join(TESTDATA, "dlrm-criteo-small", "model.safetensors")
CRITEO_REF = os.path.join(TESTDATA, "dlrm-criteo-small", "criteo-1k")


def have_testdata():
    return os.path.exists(os.path.join(TESTDATA, "README.md"))


class Server:
    """microrecd on an ephemeral loopback port; stopped on exit."""

    def __init__(self, model):
        if not os.access(MICRORECD, os.X_OK):
            raise unittest.SkipTest("%s is not built (make all)" % MICRORECD)
        self.log = tempfile.NamedTemporaryFile(prefix="microrecd-",
                                               suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [MICRORECD, "--model", model, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL)
        self.port = self._read_port(30.0)

    def _read_port(self, timeout):
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready = select.select([self.proc.stdout], [], [], max(left, 0))[0]
            if not ready:
                self.stop()
                raise AssertionError("microrecd printed no listening line "
                                     "within %gs; log: %s" % (timeout,
                                                              self.tail()))
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                self.stop()
                raise AssertionError("microrecd exited before listening; "
                                     "log: %s" % self.tail())
            line += ch
        text = line.decode().strip()
        if not text.startswith("listening 127.0.0.1:"):
            self.stop()
            raise AssertionError("unexpected first line %r" % text)
        return int(text.rsplit(":", 1)[1])

    def tail(self):
        try:
            with open(self.log.name, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        os.unlink(self.log.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_cli(*args):
    if not os.access(MICROREC, os.X_OK):
        raise unittest.SkipTest("%s is not built (make all)" % MICROREC)
    r = subprocess.run([MICROREC] + list(args), capture_output=True,
                       timeout=120)
    if r.returncode != 0:
        raise AssertionError("microrec %s exited %d: %s"
                             % (" ".join(args), r.returncode,
                                r.stderr.decode(errors="replace")))
    return r.stdout.decode()


class GeneratedModel(unittest.TestCase):
    """A model from `microrec model gen`, checked against `microrec score`.
    Needs no outside data."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="microrec-py-")
        cls.model = os.path.join(cls.tmp.name, "gen.safetensors")
        run_cli("model", "gen", "--preset", "criteo", "--max-rows", "200",
                "--seed", "5", "-o", cls.model)
        cls.server = Server(cls.model)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def client(self, **kw):
        return microrec.Client("127.0.0.1", self.server.port, timeout=30, **kw)

    def inputs(self, n, seed=1):
        with self.client() as c:
            info = c.model_info()
        rng = np.random.default_rng(seed)
        dense = rng.uniform(0, 5, (n, info["num_dense"])).astype(np.float32)
        rows = np.array([t["rows"] for t in info["tables"]], dtype=np.int64)
        sparse = (rng.integers(0, 1 << 40, (n, len(rows))) % rows)
        return dense, sparse.astype(np.int64), info

    def test_logits_match_microrec_score(self):
        dense, sparse, _ = self.inputs(300)
        df = os.path.join(self.tmp.name, "dense.f32")
        sf = os.path.join(self.tmp.name, "sparse.i64")
        dense.astype("<f4").tofile(df)
        sparse.astype("<i8").tofile(sf)
        ref = np.array(run_cli("score", self.model, "--dense", df, "--sparse",
                               sf, "--logits").split(), dtype=np.float64)
        self.assertEqual(ref.shape, (300,))
        with self.client(batch=32, window=4) as c:
            got = c.predict(dense, sparse, logits=True)
            scores = c.predict(dense, sparse)
        self.assertEqual(got.dtype, np.float32)
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=0)
        np.testing.assert_allclose(scores, 1 / (1 + np.exp(-ref)), atol=1e-4,
                                   rtol=0)

    def test_pipelined_batches_equal_one_request(self):
        dense, sparse, _ = self.inputs(257, seed=2)
        with self.client(batch=1000) as c:
            whole = c.predict(dense, sparse)
        with self.client(batch=7, window=5) as c:
            split = c.predict(dense, sparse)
        # The same samples in other batches: equal up to the engine's
        # rounding (its kernels may sum in another order for another batch
        # size), and in input order.
        np.testing.assert_allclose(whole, split, atol=1e-5, rtol=0)

    def test_accepts_lists_and_one_sample(self):
        dense, sparse, _ = self.inputs(3, seed=3)
        with self.client() as c:
            ref = c.predict(dense, sparse)
            from_lists = c.predict(dense.tolist(), sparse.tolist())
            one = c.predict(dense[1].tolist(), sparse[1])
        np.testing.assert_allclose(ref, from_lists, atol=1e-5, rtol=0)
        self.assertEqual(one.shape, (1,))
        self.assertAlmostEqual(float(one[0]), float(ref[1]), delta=1e-5)

    def test_out_of_range_id_raises_with_server_status(self):
        dense, sparse, info = self.inputs(4, seed=4)
        sparse[2, 5] = info["tables"][5]["rows"] + 10
        with self.client(batch=1) as c:
            with self.assertRaises(microrec.MicrorecError) as cm:
                c.predict(dense, sparse)
            self.assertEqual(cm.exception.status, pb.OUT_OF_RANGE)
            self.assertEqual(cm.exception.status_name, "OUT_OF_RANGE")
            self.assertTrue(cm.exception.message)
            # The connection stays usable after a refused request.
            ok = c.predict(dense[:2], sparse[:2])
            self.assertEqual(ok.shape, (2,))

    def test_wrong_dense_width_is_bad_request(self):
        dense, sparse, _ = self.inputs(2, seed=5)
        with self.client() as c:
            with self.assertRaises(microrec.MicrorecError) as cm:
                c.predict(dense[:, :5], sparse)
            self.assertEqual(cm.exception.status, pb.BAD_REQUEST)
            self.assertTrue(cm.exception.message)

    def test_health_model_info_stats(self):
        with self.client() as c:
            h = c.health()
            self.assertTrue(h["alive"])
            self.assertTrue(h["ready"])
            info = c.model_info()
            self.assertEqual(info["num_dense"], 13)
            self.assertEqual(info["num_tables"], 26)
            self.assertEqual(info["interaction"], "dot")
            self.assertTrue(all(1 <= t["rows"] <= 200 for t in info["tables"]))
            c.predict(*self.inputs(5)[:2])
            st = c.stats()
            self.assertGreaterEqual(st["requests"], 1)
            self.assertIsInstance(st["latency"], dict)

    def test_rejects_bad_input_before_sending(self):
        with self.client() as c:
            with self.assertRaises(ValueError):
                c.predict(np.zeros((2, 13)), np.zeros((3, 26), dtype=int))
            with self.assertRaises(ValueError):
                c.predict(np.zeros((1, 13)), [[-1] * 26])
            with self.assertRaises(ValueError):
                c.predict(np.zeros((1, 13)), [[0.5] * 26])


class CriteoSample(unittest.TestCase):
    """The Criteo sample against PyTorch's logits for dlrm-criteo-small."""

    def setUp(self):
        if not have_testdata():
            self.skipTest("shared test data not found at %s (set "
                          "MR_TESTDATA)" % TESTDATA)

    def test_scores_match_pytorch(self):
        with Server(CRITEO_MODEL) as srv:
            with microrec.Client("127.0.0.1", srv.port, timeout=30,
                                 batch=64, window=4) as c:
                info = c.model_info()
                rows = [t["rows"] for t in info["tables"]]
                dense, sparse, _ = microrec.load_criteo(CRITEO_TSV, rows)
                logits = c.predict(dense, sparse, logits=True)
                scores = c.predict(dense, sparse)
            # Our preprocessing is the reference's.
            ref_dense = np.fromfile(os.path.join(CRITEO_REF, "dense.f32"),
                                    dtype="<f4").reshape(-1, 13)
            ref_sparse = np.fromfile(os.path.join(CRITEO_REF, "sparse.i64"),
                                     dtype="<i8").reshape(-1, 26)
            np.testing.assert_array_equal(dense, ref_dense)
            np.testing.assert_array_equal(sparse.astype(np.int64), ref_sparse)
            ref = np.fromfile(os.path.join(CRITEO_REF, "logits.f32"),
                              dtype="<f4")
            self.assertEqual(logits.shape, ref.shape)
            np.testing.assert_allclose(logits, ref, atol=1e-3, rtol=0)
            ref_s = np.fromfile(os.path.join(CRITEO_REF, "scores.f32"),
                                dtype="<f4")
            np.testing.assert_allclose(scores, ref_s, atol=1e-3, rtol=0)
            # And what `microrec infer` gets from the same server.
            out = run_cli("infer", "--server", "127.0.0.1:%d" % srv.port,
                          "--criteo", CRITEO_TSV, "--logits")
            cli = np.array(out.split(), dtype=np.float64)
            np.testing.assert_allclose(logits, cli, atol=1e-5, rtol=0)


class Transport(unittest.TestCase):
    """Encoding, timeouts and connection errors; no server needed."""

    def test_hand_encoding_is_protobuf(self):
        dense = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
        sparse = np.array([[1, 2 ** 40], [3, 0]], dtype=np.uint64)
        body = mclient._infer_body(dense, sparse, 2, True)
        m = pb.InferRequest()
        m.ParseFromString(body)
        self.assertEqual(m.num_samples, 2)
        np.testing.assert_array_equal(np.array(m.dense, np.float32),
                                      dense.ravel())
        self.assertEqual(list(m.sparse), [1, 2 ** 40, 3, 0])
        self.assertTrue(m.want_logits)

    def test_silent_server_times_out(self):
        lsn = socket.socket()
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        held = []
        t = threading.Thread(target=lambda: held.append(lsn.accept()))
        t.start()
        try:
            c = microrec.Client("127.0.0.1", lsn.getsockname()[1],
                                timeout=0.3)
            start = time.monotonic()
            with self.assertRaises(microrec.MicrorecTimeout):
                c.health()
            self.assertLess(time.monotonic() - start, 10)
            c.close()
        finally:
            t.join(10)
            for conn, _ in held:
                conn.close()
            lsn.close()

    def test_refused_connection_raises(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        with self.assertRaises(microrec.MicrorecConnectionError):
            microrec.Client("127.0.0.1", port, timeout=2)


if __name__ == "__main__":
    unittest.main()
