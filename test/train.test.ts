import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { prep } from '../src/prep.js';
import { train, evalRun, loadFused, TrainProgress } from '../src/train.js';
import { initBackend, resetBackendChoice, type Loaders, type Tf } from '../src/backend.js';
import { buildModel, buildFused, copyWeights } from '../src/models.js';
import { loadModel } from '../src/runio.js';
import { lstmKernel, lstmTrainKernel, GX_BYTES } from '../src/kernels/lstm.js';
import { splitBatches } from '../src/shardset.js';
import { readManifest } from '../src/manifest.js';
import { synthToFile } from '../src/synth.js';
import { tmpdir, cli } from './helpers.js';
import type * as TF from '@tensorflow/tfjs';

const CLASSES = ['BENIGN', 'DDoS', 'PortScan', 'DoS Hulk', 'SSH-Patator'];

async function shards(rows = 6000, seed = 5): Promise<string> {
  const d = tmpdir();
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows, seed, classes: CLASSES });
  const out = path.join(d, 'shards');
  await prep({ out, inputs: [csv], workers: 0, shardRows: 2000 });
  return out;
}

test('backend choice: tfjs-node first, then wasm, then cpu; the reason is kept', async () => {
  const real = await import('@tensorflow/tfjs');
  const calls: string[] = [];
  const fake = (failNode: boolean, failWasm: boolean): Loaders => ({
    node: async () => {
      calls.push('node');
      if (failNode) throw new Error('Cannot find module @tensorflow/tfjs-node');
      return real as unknown as Tf;
    },
    js: async () => real as unknown as Tf,
    wasm: async () => {
      calls.push('wasm');
      if (failWasm) throw new Error('no wasm');
      const w = await import('@tensorflow/tfjs-backend-wasm');
      const { createRequire } = await import('node:module');
      w.setWasmPaths(path.join(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
    },
  });
  resetBackendChoice();
  let c = await initBackend('auto', undefined, fake(true, false));
  assert.equal(c.backend, 'wasm');
  assert.match(c.reason, /fallback: tensorflow unavailable \(Cannot find module/);
  resetBackendChoice();
  c = await initBackend('auto', undefined, fake(true, true));
  assert.equal(c.backend, 'cpu');
  assert.match(c.reason, /wasm unavailable \(no wasm\)/);
  resetBackendChoice();
  // a loadable tfjs-node is taken first, with no change of command; here a stand-in whose backend is cpu
  const nodeLike: Loaders = { ...fake(false, false), node: async () => { calls.push('node-ok'); return real as unknown as Tf; } };
  await assert.rejects(initBackend('auto', undefined, { ...nodeLike, node: async () => { throw new Error('x'); }, js: async () => { throw new Error('y'); } }), /no TensorFlow.js backend could start/);
  resetBackendChoice();
  c = await initBackend('cpu', undefined, nodeLike);
  assert.equal(c.reason, 'forced by --backend cpu');
  resetBackendChoice();
  await initBackend('auto');
});

test('FusedLSTM matches tf.layers.lstm: outputs and gradients on the same weights (seed and window; JavaScript path and WebAssembly kernel)', async () => {
  const { tf } = await initBackend('auto');
  assert.ok(lstmTrainKernel(), 'training kernel loaded');
  // 6 units: the JavaScript gate loop (the kernels need a multiple of 8); 8 units: the kernels
  for (const [kind, units] of [['seed', 6], ['window', 6], ['seed', 8], ['window', 8]] as const) {
    const spec = { kind, features: 9, classes: 4, units, project: 5, window: 3, seed: 7 };
    const std = buildModel(tf, spec);
    const fused = buildFused(tf, spec);
    copyWeights(std, fused);
    const x = kind === 'seed' ? tf.randomUniform([5, 9], 0, 1, 'float32', 3) : tf.randomUniform([5, 3, 9], 0, 1, 'float32', 3);
    const a = std.predict(x) as TF.Tensor;
    const b = fused.predict(x) as TF.Tensor;
    assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-5, `${kind} ${units} units: outputs`);
    const r = tf.randomUniform([5, 4], 0, 1, 'float32', 4);
    // the loss applies the model twice (to x and to 2x): the kernel keeps one forward pass's state, so
    // the first application's backward pass must notice and compute its forward pass again
    const x2 = tf.mul(x, 2);
    const gradsOf = (m: TF.LayersModel) => {
      const vars = m.trainableWeights.map((w) => (w as unknown as { val: TF.Variable }).val);
      const loss = () => tf.add(tf.sum(tf.mul(m.apply(x, { training: true }) as TF.Tensor, r)), tf.sum(tf.mul(m.apply(x2, { training: true }) as TF.Tensor, tf.sqrt(r)))) as TF.Scalar;
      const { grads } = tf.variableGrads(loss, vars);
      return vars.map((v) => grads[v.name]);
    };
    const ga = gradsOf(std);
    const gb = gradsOf(fused);
    assert.equal(ga.length, gb.length);
    ga.forEach((g, k) => {
      assert.deepEqual(g.shape, gb[k].shape);
      const d = tf.max(tf.abs(tf.sub(g, gb[k]))).dataSync()[0];
      const scale = tf.max(tf.abs(g)).dataSync()[0];
      assert.ok(d <= 1e-4 * Math.max(1, scale), `${kind} ${units} units: gradient ${k}: ${d}`);
    });
  }
});

test('inference runs in the WebAssembly kernel and matches tf.layers.lstm (seed and window, extreme inputs, several chunks)', async () => {
  const k = lstmKernel();
  assert.ok(k.kernel, `kernel not loaded: ${k.reason}`); // a missing dist/src/kernels/lstm.wasm fails here, not silently slower
  const { tf } = await initBackend('auto');
  for (const kind of ['seed', 'window'] as const) {
    const spec = { kind, features: 7, classes: 5, units: 16, project: 6, window: 3, seed: 11 };
    const std = buildModel(tf, spec);
    const fused = buildFused(tf, spec);
    // larger weights than the initialiser's, so gates saturate and the exp clamp is exercised
    fused.setWeights(std.getWeights().map((w, i) => tf.mul(w, i % 2 ? 3 : 6)));
    std.setWeights(fused.getWeights());
    const n = 2048 + 37; // the kernel runs 2048 rows per call: two calls, the second partial
    const shape = kind === 'seed' ? [n, 7] : [n, 3, 7];
    const x = tf.tidy(() => {
      const u = tf.randomUniform(shape, -1, 2, 'float32', 5);
      const big = tf.mul(tf.randomUniform(shape, -1, 1, 'float32', 6), 1e4); // far outside the training range
      return tf.where(tf.less(tf.randomUniform(shape, 0, 1, 'float32', 7), 0.05), big, u);
    });
    const a = std.predict(x) as TF.Tensor;
    const b = fused.predict(x) as TF.Tensor;
    const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
    assert.ok(d < 2e-5, `${kind}: max difference ${d}`);
    // the trainable path (custom op) gives the same outputs when asked for training behaviour
    const c = fused.apply(x, { training: true }) as TF.Tensor;
    assert.ok(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0] < 2e-5, `${kind}: training path`);
  }
});

test('kernel builds: fused multiply-add by default (relaxed SIMD), strict on FLOWTENSOR_LSTM_KERNEL=strict; both agree; a wrong mode is one line, exit 2', () => {
  // each build in its own process (the choice is made once per thread), the same weights and inputs
  const script = `
    import { lstmKernel, kernelVariant } from ${JSON.stringify(new URL('../src/kernels/lstm.js', import.meta.url).href)};
    const B = 64, T = 5, P = 3, H = 16, G = 4 * H;
    const v = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + s) * 0.5);
    const h = lstmKernel().kernel.forward(v(B * T * P, 1), B, T, P, H, v(P * G, 2), v(G, 3), v(H * G, 4));
    console.log(JSON.stringify({ variant: kernelVariant(), h: Array.from(h) }));`;
  const run = (mode?: string) => {
    const env: Record<string, string | undefined> = { ...process.env, FLOWTENSOR_LSTM_KERNEL: mode };
    if (mode === undefined) delete env.FLOWTENSOR_LSTM_KERNEL;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { variant: string; h: number[] };
  };
  const strict = run('strict');
  const fma = run();
  assert.equal(strict.variant, 'strict');
  assert.deepEqual(run('fma'), fma);
  // Node 20's V8 has relaxed SIMD behind a flag that the loader sets; x86-64 and ARM64 run it
  if (process.arch === 'x64' || process.arch === 'arm64') assert.equal(fma.variant, 'fma');
  let d = 0;
  for (let i = 0; i < strict.h.length; i++) d = Math.max(d, Math.abs(strict.h[i] - fma.h[i]));
  assert.ok(d < 1e-5, `fused and strict builds differ by ${d}`);
  const bad = cli(['inspect', 'x'], { env: { FLOWTENSOR_LSTM_KERNEL: 'fast' } });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /FLOWTENSOR_LSTM_KERNEL="fast": not a kernel mode; use one of fma, strict, js/);
  const scan = cli(['inspect', 'x'], { env: { FLOWTENSOR_CSV_SCAN: 'simd' } });
  assert.equal(scan.status, 2);
  assert.match(scan.stderr, /^flowtensor: FLOWTENSOR_CSV_SCAN="simd": not a scan mode; use one of wasm, js/);
});

test('window inference projects its inputs in blocks of rows within GX_BYTES (a window of 256 flows and 512 units once asked for 2 GiB at once), and matches a plain LSTM', () => {
  const k = lstmKernel().kernel!;
  // T·4H floats a row: 64 × 1,024 × 4 bytes = 256 KiB, so GX_BYTES (16 MiB) holds 64 rows: 150 rows run as 64 + 64 + 22
  const B = 150, T = 64, P = 8, H = 256, G = 4 * H;
  assert.ok(Math.floor(GX_BYTES / (T * G * 4)) < B, 'the shape spans several blocks');
  const v = (n: number, s: number, a: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + s) * a);
  const x = v(B * T * P, 1, 1), w = v(P * G, 2, 0.2), bias = v(G, 3, 0.1), u = v(H * G, 4, 0.05);
  const h = k.forward(x, B, T, P, H, w, bias, u);
  // a plain LSTM in doubles (gate order i, f, g, o as tf.layers.lstm) for rows at the blocks' edges
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  for (const r of [0, 63, 64, 127, 128, 149]) {
    let hh = new Float64Array(H);
    let cc = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      const z = Float64Array.from(bias);
      for (let p = 0; p < P; p++) for (let j = 0; j < G; j++) z[j] += x[(r * T + t) * P + p] * w[p * G + j];
      for (let q = 0; q < H; q++) for (let j = 0; j < G; j++) z[j] += hh[q] * u[q * G + j];
      const h2 = new Float64Array(H);
      const c2 = new Float64Array(H);
      for (let q = 0; q < H; q++) {
        c2[q] = sig(z[H + q]) * cc[q] + sig(z[q]) * Math.tanh(z[2 * H + q]);
        h2[q] = sig(z[3 * H + q]) * Math.tanh(c2[q]);
      }
      hh = h2;
      cc = c2;
    }
    let d = 0;
    for (let q = 0; q < H; q++) d = Math.max(d, Math.abs(hh[q] - h[r * H + q]));
    assert.ok(d < 1e-4, `row ${r}: max difference ${d}`);
  }
});

test('a wrong FLOWTENSOR_LSTM_KERNEL or FLOWTENSOR_CSV_SCAN is said as such by the library too (not as every backend failing)', () => {
  for (const [name, value, mod, call] of [
    ['FLOWTENSOR_LSTM_KERNEL', 'fast', '../src/backend.js', 'await m.initBackend("auto", { info() {}, warn() {}, debug() {} })'],
    ['FLOWTENSOR_CSV_SCAN', 'simd', '../stages/parse.js', 'new m.CsvBatchParser({ file: "x", cfg: {}, want: null })'],
  ] as const) {
    const script = `const m = await import(${JSON.stringify(new URL(mod, import.meta.url).href)}); try { ${call}; console.log('no error'); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, [name]: value } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout.trim(), new RegExp(`^UserError: ${name}="${value}": not a (kernel|scan) mode`), r.stdout);
  }
});

test('train the window model on synth shards: test macro-F1 clearly beats the majority class; save -> load -> same predictions', async () => {
  const dir = await shards(8000, 5);
  const run = path.join(tmpdir(), 'run');
  const r = await train({ shards: dir, out: run, model: 'window', window: 4, epochs: 3, batchSize: 128, learningRate: 0.01, seed: 3, progress: false });
  assert.ok(r.eval, 'evaluated on test');
  assert.ok(r.eval!.macro_f1 > r.eval!.majority_macro_f1 + 0.25, `macro-F1 ${r.eval!.macro_f1} vs majority ${r.eval!.majority_macro_f1}`);
  for (const f of ['model.json', 'weights.bin', 'run.json', 'metrics.ndjson', 'eval.json', 'best/model.json', 'last/optimizer.bin', 'last/state.json']) assert.ok(fs.existsSync(path.join(run, f)), f);
  const lines = fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3]);
  for (const k of ['loss', 'acc', 'val_loss', 'val_acc', 'samples_per_s', 'seconds']) assert.equal(typeof lines[0][k], 'number', k);
  const runInfo = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  assert.deepEqual(runInfo.labels, readManifest(dir).labels);
  assert.ok(runInfo.scaler.max.length === runInfo.features.length);
  // saved as standard layers: loads without flowtensor's custom classes, predicts the same as the fused twin
  const { tf } = await initBackend('auto');
  const std = await loadModel(tf, run);
  assert.ok(std.layers.every((l) => ['Reshape', 'Dense', 'LSTM', 'InputLayer'].includes(l.getClassName())));
  const fused = await loadFused(tf, run, { kind: 'window', features: runInfo.features.length, classes: runInfo.labels.length, units: 32, project: 32, window: 4, seed: 3 });
  const m = readManifest(dir);
  const b = splitBatches(dir, m, 'test', { batchSize: 64, window: 4 }).next().value!;
  const x = tf.tensor3d(b.x, [b.n, 4, m.num_features]);
  const p1 = (std.predict(x) as TF.Tensor).dataSync();
  const p2 = (fused.predict(x) as TF.Tensor).dataSync();
  const p3 = ((await loadModel(tf, run)).predict(x) as TF.Tensor).dataSync();
  assert.deepEqual(Array.from(p1), Array.from(p3));
  assert.ok(p1.every((v, i) => Math.abs(v - p2[i]) < 1e-5));
  // eval reproduces train's evaluation of the best model
  const ev = await evalRun({ model: run, shards: dir, split: 'test' });
  assert.equal(ev.macro_f1, r.eval!.macro_f1);
  assert.deepEqual(ev.confusion, r.eval!.confusion);
});

test('resume continues the epoch count and the loss curve; no tensors leak per batch', async () => {
  const dir = await shards(4000, 8);
  const run = path.join(tmpdir(), 'run');
  const { tf } = await initBackend('auto');
  const first = await train({ shards: dir, out: run, model: 'seed', epochs: 2, patience: 5, batchSize: 128, learningRate: 0.003, progress: false });
  assert.equal(first.epochs.length, 2);
  const before = tf.memory().numTensors;
  const second = await train({ shards: dir, out: run, resume: true, epochs: 4, progress: false });
  const after = tf.memory().numTensors;
  assert.deepEqual(second.epochs.map((e) => e.epoch), [3, 4]);
  const lines = fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3, 4]);
  // the optimizer state came back: the loss goes on from where it was, not from a fresh start
  assert.ok(lines[2].loss < lines[0].loss, `loss ${lines.map((l) => l.loss.toFixed(3)).join(' ')}`);
  assert.ok(after - before < 40, `tensors before ${before}, after ${after}`);
});

test('Ctrl-C (stop request) keeps the last finished epoch; --resume then trains exactly as an uninterrupted run', async () => {
  const dir = await shards(3000, 9);
  const m = readManifest(dir);
  const opts = { shards: dir, model: 'window' as const, window: 2, epochs: 2, patience: 5, batchSize: 32, progress: false };
  const ref = path.join(tmpdir(), 'ref');
  await train({ ...opts, out: ref });
  const run = path.join(tmpdir(), 'run');
  // the trainer looks at the stop request once per batch: stop 10 batches into epoch 2
  let calls = 0;
  const perEpoch = Math.ceil(m.splits.train.rows / 32);
  const stop = {
    get requested() {
      return ++calls > perEpoch + 10;
    },
    set requested(_v: boolean) {},
  };
  const r = await train({ ...opts, out: run, stop });
  assert.ok(r.interrupted);
  const st = JSON.parse(fs.readFileSync(path.join(run, 'last', 'state.json'), 'utf8'));
  assert.equal(st.epoch, 1, 'last/ is the end of epoch 1, not the middle of epoch 2');
  const again = await train({ ...opts, out: run, resume: true });
  assert.deepEqual(again.epochs.map((e) => e.epoch), [2]);
  const strip = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => { const { seconds, samples_per_s, ...rest } = JSON.parse(l); return rest; });
  assert.deepEqual(strip(path.join(run, 'metrics.ndjson')), strip(path.join(ref, 'metrics.ndjson')));
  assert.ok(fs.readFileSync(path.join(run, 'weights.bin')).equals(fs.readFileSync(path.join(ref, 'weights.bin'))), 'the same weights as without the stop');
  // a stop in epoch 1 resumes from the starting checkpoint
  const early = path.join(tmpdir(), 'early');
  const r1 = await train({ ...opts, out: early, stop: { requested: true } });
  assert.ok(r1.interrupted);
  assert.equal(JSON.parse(fs.readFileSync(path.join(early, 'last', 'state.json'), 'utf8')).epoch, 0);
  assert.deepEqual((await train({ ...opts, epochs: 1, out: early, resume: true })).epochs.map((e) => e.epoch), [1]);
});

test('a run folder holds one run: a used --out is refused unless --resume or --force; crash leftovers are cleared', async () => {
  const dir = await shards(2000, 16);
  const run = path.join(tmpdir(), 'run');
  const opts = { shards: dir, model: 'window' as const, window: 2, epochs: 1, batchSize: 128, progress: false };
  await train({ ...opts, out: run });
  fs.writeFileSync(path.join(run, 'report.html'), 'old report');
  await assert.rejects(train({ ...opts, out: run }), /holds a run already/);
  const r = cli(['train', '--shards', dir, '--out', run, '--epochs', '1']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /holds a run already .*\n  hint: go on with it: --resume; replace it: --force/);
  await train({ ...opts, out: run, force: true, seed: 2 });
  assert.ok(!fs.existsSync(path.join(run, 'report.html')), 'no stale report of the replaced run');
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).config.seed, 2);
  // what a SIGKILL or a full disk leaves: temp folders of a dead process, a half-swapped last/, an
  // epoch's metrics line without its checkpoint; --resume clears them all
  const dead = 999999;
  fs.mkdirSync(path.join(run, `.best.tmp-${dead}`));
  fs.mkdirSync(path.join(run, `.last.tmp-${dead}`));
  fs.cpSync(path.join(run, 'last'), path.join(run, `last.old-${dead}`), { recursive: true });
  fs.appendFileSync(path.join(run, 'metrics.ndjson'), JSON.stringify({ epoch: 2, loss: 9 }) + '\n');
  const again = await train({ ...opts, out: run, resume: true, epochs: 2 });
  assert.deepEqual(again.epochs.map((e) => e.epoch), [2]);
  assert.deepEqual(fs.readdirSync(run).filter((f) => f.includes('.tmp-') || f.includes('.old-')), []);
  const epochs = fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).epoch);
  assert.deepEqual(epochs, [1, 2], 'epoch 2 once');
});

test('a corrupted shard, a missing manifest and an unfinished folder are refused clearly', async () => {
  const dir = await shards(2000, 10);
  const m = readManifest(dir);
  const shard = path.join(dir, m.splits.train.shards[0].file);
  const buf = fs.readFileSync(shard);
  buf[buf.length - 5] ^= 0xff;
  fs.writeFileSync(shard, buf);
  await assert.rejects(train({ shards: dir, out: path.join(tmpdir(), 'r'), epochs: 1, progress: false }), /checksum does not match/);
  fs.rmSync(path.join(dir, 'manifest.json'));
  await assert.rejects(train({ shards: dir, out: path.join(tmpdir(), 'r'), epochs: 1, progress: false }), /no manifest\.json/);
  fs.writeFileSync(path.join(dir, 'pass1.json'), '{}');
  const r = cli(['train', '--shards', dir, '--out', path.join(tmpdir(), 'r')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /pass 1 finished but scaling did not/);
  assert.match(r.stderr, /flowtensor scale/);
});

test('--class-weights auto and --max-benign-ratio: recorded in the run, benign rows capped per epoch', async () => {
  const dir = await shards(6000, 14);
  const m = readManifest(dir);
  const run = path.join(tmpdir(), 'run');
  const r = await train({ shards: dir, out: run, model: 'window', window: 2, epochs: 1, batchSize: 64, classWeights: 'auto', maxBenignRatio: 0.5, progress: false });
  const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  assert.equal(info.config.class_weights, 'auto');
  assert.equal(info.config.max_benign_ratio, 0.5);
  const cc = m.splits.train.class_counts;
  // weights n / (k · n_c): the rarer the class, the larger its weight; absent classes get 0
  assert.ok(info.class_weights.BENIGN < info.class_weights.DDoS);
  assert.equal(info.class_weights.Heartbleed, 0);
  const others = m.splits.train.rows - cc.BENIGN;
  const seen = r.epochs[0].samples;
  assert.ok(seen > others && seen < others + 0.5 * others * 1.25 + 50, `samples ${seen}, others ${others}, benign ${cc.BENIGN}`);
  assert.ok(r.eval && r.eval.rows === m.splits.test.rows, 'test is evaluated in full, not down-sampled');
});

test('the training progress line shows the time left in the epoch (batches left at the measured batch rate)', (t) => {
  const writes: string[] = [];
  t.mock.method(fs, 'writeSync', (_fd: number, s: string) => {
    writes.push(String(s));
    return 0;
  });
  let now = 1_000_000;
  t.mock.method(Date, 'now', () => now);
  const p = new TrainProgress(true);
  p.update(1, 3, 10, 100, 2000, 1, 0.5); // 2,000 samples/s of batch 64 is ~31 batches/s ...
  now += 1000;
  p.update(1, 3, 20, 100, 2000, 1, 0.5); // ... but 10 batches took 1 s here: 80 left take 8 s
  t.mock.restoreAll();
  assert.match(writes[writes.length - 1], /epoch 1\/3 .*ETA 0:08 /);
});
