// onnxruntime (CPU, from npm: bench/peers/node_modules/onnxruntime-node) on
// a model exported by tools/export_onnx.py, timed like `microrec bench`:
// per-batch latency p50/p99 and samples per second over random batches
// (uniform ids, dense in [0, 10)), one JSON line on stdout.
//
//   node bench/peer_ort.js MODEL.onnx --batch B --threads T --seconds S
//        [--warmup S] [--streams N]
//   node bench/peer_ort.js MODEL.onnx --score DENSE.f32 SPARSE.i64 OUT.f32
//
// The session runs with intraOpNumThreads = T (onnxruntime's own thread
// pool: how a user gives it T cores); --streams N instead runs N sessions
// of one thread each, one per worker thread (our engine's mode, for
// throughput). Timing calls the native binding's synchronous run, so the
// figures hold onnxruntime's work and the tensor hand-over only, not the
// event loop's scheduling of the promise API.
'use strict';
const path = require('path');
const fs = require('fs');
const {Worker, isMainThread, parentPort, workerData} = require('worker_threads');

const peers = path.join(__dirname, 'peers', 'node_modules');
const ort = require(path.join(peers, 'onnxruntime-node'));
const {binding, initOrt} = require(path.join(peers, 'onnxruntime-node', 'dist', 'binding'));

function parseArgs(argv) {
  const a = {model: argv[0], batch: 1, threads: 1, seconds: 5, warmup: 1, streams: 0};
  for (let i = 1; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--score') {
      a.score = argv.slice(i + 1, i + 4);
      i += 3;
    } else if (k === '--rows') {
      a.rows = argv[++i]; // comma-separated rows per table
    } else {
      a[k.replace(/^--/, '')] = Number(argv[++i]);
    }
  }
  return a;
}

function open(model, threads) {
  initOrt();
  const s = new binding.InferenceSession();
  s.loadModel(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const inputs = s.inputMetadata.map((m) => m.name);
  return {s, inputs};
}

// The model's input widths: from the ONNX inputs' shapes.
function widths(sess) {
  const meta = sess.s.inputMetadata;
  const get = (name) => {
    const m = meta.find((x) => x.name === name);
    return m ? Number(m.shape[1]) : 0;
  };
  return {nd: get('dense'), nt: get('ids')};
}

function feeds(sess, dense, ids, b, nd, nt) {
  const f = {};
  if (sess.inputs.includes('dense')) f.dense = new ort.Tensor('float32', dense, [b, nd]);
  f.ids = new ort.Tensor('int64', ids, [b, nt]);
  return f;
}

function run(sess, f) {
  const out = sess.s.run(f, {logits: null}, {});
  return out.logits.data;
}

// Random inputs for a pool of batches; row counts from the .data-less
// metadata are unknown, so the caller passes them (tools/mr_safetensors).
function pool(b, nd, nt, rows, n, seed) {
  let x = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  const M = (1n << 64n) - 1n;
  const next = () => {
    x ^= (x << 13n) & M;
    x ^= x >> 7n;
    x ^= (x << 17n) & M;
    return x;
  };
  const out = [];
  for (let p = 0; p < n; p++) {
    const dense = new Float32Array(b * nd);
    for (let i = 0; i < dense.length; i++) dense[i] = Number(next() % 1000n) / 100;
    const ids = new BigInt64Array(b * nt);
    for (let i = 0; i < b; i++)
      for (let k = 0; k < nt; k++) ids[i * nt + k] = next() % BigInt(rows[k]);
    out.push({dense, ids});
  }
  return out;
}

function timeLoop(sess, batches, b, nd, nt, seconds, warmup) {
  const lat = [];
  const t0 = process.hrtime.bigint();
  const from = t0 + BigInt(Math.round(warmup * 1e9));
  const end = from + BigInt(Math.round(seconds * 1e9));
  let i = 0, samples = 0, measured = 0n;
  for (;;) {
    const p = batches[i++ % batches.length];
    const f = feeds(sess, p.dense, p.ids, b, nd, nt);
    const a = process.hrtime.bigint();
    run(sess, f);
    const z = process.hrtime.bigint();
    if (a < from) continue;
    lat.push(Number(z - a) / 1e3);
    samples += b;
    if (z >= end) {
      measured = z - from;
      break;
    }
  }
  return {lat, samples, elapsed: Number(measured) / 1e9};
}

function pct(sorted, q) {
  if (!sorted.length) return 0;
  const i = Math.ceil(q * sorted.length);
  return sorted[i ? i - 1 : 0];
}

function rowsOf(a) {
  return String(a.rows).split(',').map(Number);
}

if (!isMainThread) {
  const w = workerData;
  const sess = open(w.model, 1);
  const batches = pool(w.batch, w.nd, w.nt, w.rows, 32, w.seed);
  parentPort.postMessage(timeLoop(sess, batches, w.batch, w.nd, w.nt, w.seconds, w.warmup));
} else {
  main();
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.score) {
    const sess = open(a.model, 1);
    const {nd, nt} = widths(sess);
    const sparse = fs.readFileSync(a.score[1]);
    const n = sparse.length / 8 / nt;
    const ids = new BigInt64Array(sparse.buffer, sparse.byteOffset, n * nt);
    let dense = new Float32Array(0);
    if (nd) {
      const d = fs.readFileSync(a.score[0]);
      dense = new Float32Array(d.buffer, d.byteOffset, n * nd);
    }
    const logits = run(sess, feeds(sess, dense, ids, n, nd, nt));
    fs.writeFileSync(a.score[2], Buffer.from(new Float32Array(logits).buffer));
    return;
  }
  const rows = rowsOf(a);
  const probe = open(a.model, a.threads);
  const {nd, nt} = widths(probe);
  let lat = [], samples = 0, elapsed = 0;
  if (a.streams > 0) {
    let left = a.streams;
    const res = [];
    for (let s = 0; s < a.streams; s++) {
      const w = new Worker(__filename, {
        workerData: {model: a.model, batch: a.batch, nd, nt, rows, seed: s + 1,
                     seconds: a.seconds, warmup: a.warmup},
      });
      w.on('message', (r) => {
        res.push(r);
        if (--left === 0) finish(res);
      });
    }
    return;
  }
  const batches = pool(a.batch, nd, nt, rows, 32, 1);
  finish([timeLoop(probe, batches, a.batch, nd, nt, a.seconds, a.warmup)]);

  function finish(res) {
    for (const r of res) {
      lat = lat.concat(r.lat);
      samples += r.samples;
      elapsed = Math.max(elapsed, r.elapsed);
    }
    lat.sort((x, y) => x - y);
    console.log(JSON.stringify({
      engine: 'onnxruntime', version: require(path.join(peers, 'onnxruntime-node', 'package.json')).version,
      model: a.model, batch: a.batch, threads: a.streams > 0 ? a.streams : a.threads,
      mode: a.streams > 0 ? 'streams' : 'intra-op',
      batches: lat.length, p50_us: pct(lat, 0.5), p99_us: pct(lat, 0.99),
      samples_per_s: elapsed > 0 ? samples / elapsed : 0,
    }));
  }
}
