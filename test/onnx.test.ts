// `flowtensor export --onnx`: the exported graph against the tfjs model (loadFused + predictProbs) on the
// same inputs, for both model kinds: through an independent float64 reading of the file by the ONNX
// LSTM's definition (always), through onnxruntime-node (when it loads), through the `onnx` package's
// checker (when python3 has it). Also `predict --engine onnx` and the scaler in the file's metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { prep } from '../src/prep.js';
import { train, loadFused } from '../src/train.js';
import { predict } from '../src/predict.js';
import { initBackend } from '../src/backend.js';
import { predictProbs } from '../src/models.js';
import { fitScaler, applyScaler } from '../stages/scale.js';
import { decodeModel, type Model, type Tensor } from '../src/onnxproto.js';
import { flatScaler, readRunInfo, specOf, onnxGateMatrix, ONNX_OPSET, ONNX_IR_VERSION, type FlatScaler } from '../src/onnx.js';
import { loadOnnxRuntime } from '../src/onnxengine.js';
import { synthToFile } from '../src/synth.js';
import type { ScalerStats } from '../src/manifest.js';
import { BIN, ROOT, cli, tmpdir } from './helpers.js';

const CLASSES = ['BENIGN', 'DDoS', 'PortScan', 'DoS Hulk', 'SSH-Patator'];
const TOL = 1e-5;

async function trained(kind: 'seed' | 'window') {
  const d = tmpdir('ft-onnx-');
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows: 3000, seed: 31, classes: CLASSES });
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [csv], workers: 0 });
  const run = path.join(d, 'run');
  await train({ shards, out: run, model: kind, window: 4, epochs: 2, batchSize: 128, learningRate: 0.01, progress: false });
  return { d, csv, shards, run };
}

// both runs are trained once, on first use
const runs = new Map<string, ReturnType<typeof trained>>();
const runOf = (kind: 'seed' | 'window') => {
  if (!runs.has(kind)) runs.set(kind, trained(kind));
  return runs.get(kind)!;
};

/** Test inputs: uniform in [-3, 3] plus saturating rows (±40), n rows of the model's shape. */
function inputs(per: number, n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(n * per);
  for (let i = 0; i < x.length; i++) x[i] = (rnd() - 0.5) * 6;
  for (let r = 0; r < Math.min(n, 8); r++) for (let k = 0; k < per; k++) x[r * per + k] = (rnd() < 0.5 ? -40 : 40) * rnd();
  return x;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

function tensorData(t: Tensor): Float64Array {
  const raw = Buffer.from(t.raw_data);
  const out = new Float64Array(raw.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = raw.readFloatLE(i * 4);
  return out;
}

/**
 * The exported graph evaluated in float64 by ONNX's definitions, written here from the operator
 * documents, not from the exporter: LSTM gates in order i, o, f, c; W [1, 4H, in], R [1, 4H, H],
 * B [1, 8H] = Wb, Rb; f(x) = sigmoid, g = h = tanh; then MatMul, Add, Softmax over the last axis.
 */
function referenceProbs(m: Model, x: Float32Array, n: number, T: number, inDim: number): Float64Array {
  const init = new Map(m.graph.initializer.map((t) => [t.name, t]));
  const lstm = m.graph.node.find((nd) => nd.op_type === 'LSTM')!;
  const [, wName, rName, bName] = lstm.input;
  const W = tensorData(init.get(wName)!);
  const R = tensorData(init.get(rName)!);
  const Bi = tensorData(init.get(bName)!);
  const H = Number(lstm.attribute!.find((a) => a.name === 'hidden_size')!.i);
  const mm = m.graph.node.find((nd) => nd.op_type === 'MatMul')!;
  const add = m.graph.node.find((nd) => nd.op_type === 'Add')!;
  const K = tensorData(init.get(mm.input[1])!);
  const kb = tensorData(init.get(add.input[1])!);
  const C = kb.length;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const out = new Float64Array(n * C);
  for (let b = 0; b < n; b++) {
    let h = new Float64Array(H);
    const c = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      // x_t of row b: the seed model's step t is feature t (one input); the window model's is flow t
      const xt = (k: number) => x[b * T * inDim + t * inDim + k];
      const gate = (g: number, j: number) => {
        const r = g * H + j;
        let v = Bi[r] + Bi[4 * H + r];
        for (let k = 0; k < inDim; k++) v += W[r * inDim + k] * xt(k);
        for (let k = 0; k < H; k++) v += R[r * H + k] * h[k];
        return v;
      };
      const hn = new Float64Array(H);
      for (let j = 0; j < H; j++) {
        const i = sig(gate(0, j));
        const o = sig(gate(1, j));
        const f = sig(gate(2, j));
        const ct = Math.tanh(gate(3, j));
        c[j] = f * c[j] + i * ct;
        hn[j] = o * Math.tanh(c[j]);
      }
      h = hn;
    }
    let mx = -Infinity;
    const z = new Float64Array(C);
    for (let q = 0; q < C; q++) {
      let v = kb[q];
      for (let j = 0; j < H; j++) v += h[j] * K[j * C + q];
      z[q] = v;
      mx = Math.max(mx, v);
    }
    let sum = 0;
    for (let q = 0; q < C; q++) sum += z[q] = Math.exp(z[q] - mx);
    for (let q = 0; q < C; q++) out[b * C + q] = z[q] / sum;
  }
  return out;
}

test('gate conversion: Keras [in, 4H] in gate order i, f, c, o to ONNX [4H, in] in order i, o, f, c', () => {
  // in = 2, H = 1: kernel[k][gate] = 10·k + the gate's Keras index
  const kernel = [0, 1, 2, 3, 10, 11, 12, 13];
  assert.deepEqual([...onnxGateMatrix(kernel, 2, 1)], [0, 10, 3, 13, 1, 11, 2, 12]);
});

for (const kind of ['seed', 'window'] as const) {
  test(`export --onnx (${kind} model): the file's graph, read by ONNX's definitions in float64, gives the tfjs model's probabilities (max |Δ| < ${TOL})`, async (t) => {
    const { run } = await runOf(kind);
    const r = cli(['export', '--onnx', run]);
    assert.equal(r.status, 0, r.stderr);
    const file = path.join(run, 'model.onnx');
    assert.equal(r.stdout.trim(), file);
    assert.deepEqual(fs.readdirSync(run).filter((f) => f.includes('.tmp-')), [], 'no temp file left');
    const m = decodeModel(fs.readFileSync(file));
    assert.equal(m.ir_version, ONNX_IR_VERSION);
    assert.deepEqual(m.opset_import.map((o) => [o.domain ?? '', o.version]), [['', ONNX_OPSET]]);
    const info = readRunInfo(run);
    const spec = specOf(info);
    const dims = m.graph.input[0].type.tensor_type.shape.dim.map((d) => ('dim_param' in d ? d.dim_param : d.dim_value));
    assert.deepEqual([m.graph.input[0].name, dims], ['features', kind === 'seed' ? ['N', spec.features] : ['N', spec.window, spec.features]]);
    assert.equal(m.graph.output[0].name, 'probabilities');
    const meta = Object.fromEntries(m.metadata_props.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(meta['flowtensor.features']), info.features);
    assert.deepEqual(JSON.parse(meta['flowtensor.labels']), info.labels);
    assert.deepEqual(JSON.parse(meta['flowtensor.scaler']), flatScaler(info.scaler, info.features));
    assert.equal(meta['flowtensor.model'], kind);

    const { tf } = await initBackend('auto');
    const model = await loadFused(tf, run, spec);
    const n = 64;
    const per = kind === 'seed' ? spec.features : spec.window * spec.features;
    const x = inputs(per, n, 7);
    const ours = await predictProbs(tf, model, spec, x, n);
    model.dispose();
    const ref = kind === 'seed' ? referenceProbs(m, x, n, spec.features, 1) : referenceProbs(m, x, n, spec.window, spec.features);
    const d = maxDiff(ours, ref);
    t.diagnostic(`${kind}: max |tfjs - ONNX reference (float64)| = ${d.toExponential(2)} over ${n} rows x ${spec.classes} classes`);
    assert.ok(d < TOL, `max difference ${d}`);
  });

  test(`onnxruntime-node scores the exported ${kind} model as the tfjs model does (max |Δ| < ${TOL})`, async (t) => {
    const { ort, reason } = await loadOnnxRuntime();
    if (!ort) return t.skip(`onnxruntime-node cannot load (${reason}): install it with ONNXRUNTIME_NODE_INSTALL=skip npm install; skipped`);
    const { run } = await runOf(kind);
    const file = path.join(run, 'model.onnx');
    if (!fs.existsSync(file)) assert.equal(cli(['export', '--onnx', run]).status, 0);
    const spec = specOf(readRunInfo(run));
    const session = await ort.InferenceSession.create(fs.readFileSync(file));
    const { tf } = await initBackend('auto');
    const model = await loadFused(tf, run, spec);
    let worst = 0;
    // 1,500 rows: the kernel's batches and onnxruntime's; then one row
    for (const n of [1500, 1]) {
      const per = kind === 'seed' ? spec.features : spec.window * spec.features;
      const x = inputs(per, n, 11 + n);
      const ours = await predictProbs(tf, model, spec, x, n);
      const dims = kind === 'seed' ? [n, spec.features] : [n, spec.window, spec.features];
      const out = await session.run({ features: new ort.Tensor('float32', x, dims) });
      assert.deepEqual([...out.probabilities.dims], [n, spec.classes]);
      worst = Math.max(worst, maxDiff(ours, out.probabilities.data as Float32Array));
    }
    model.dispose();
    await session.release();
    t.diagnostic(`${kind}: max |tfjs - onnxruntime| = ${worst.toExponential(2)}`);
    assert.ok(worst < TOL, `max difference ${worst}`);
  });
}

/** A python3 that has the onnx and numpy packages, or null. */
function pythonWithOnnx(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) if (spawnSync(py, ['-c', 'import onnx, numpy'], { encoding: 'utf8' }).status === 0) return py;
  return null;
}

test('the onnx package checks the exported files (full_check: shape inference), and the README\'s Python scaling lines give what predict feeds the model', async (t) => {
  const py = pythonWithOnnx();
  if (!py) return t.skip('no python3 with the onnx package (Debian: apt-get install python3-onnx): skipped');
  for (const kind of ['seed', 'window'] as const) {
    const { run, csv } = await runOf(kind);
    assert.equal(cli(['export', '--onnx', run, '--out', path.join(run, 'check.onnx')]).status, 0);
    // the stage pipeline's records, as a Python user would make them
    const stages = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" parse "${csv}" | "${process.execPath}" "${BIN}" filter | "${process.execPath}" "${BIN}" ipsplit | "${process.execPath}" "${BIN}" sanitize | head -400`], { encoding: 'utf8', env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'error' }, maxBuffer: 1 << 26 });
    const rowsFile = path.join(run, 'rows.ndjson');
    fs.writeFileSync(rowsFile, stages.stdout);
    const r: SpawnSyncReturns<string> = spawnSync(py!, [path.join(ROOT, 'test', 'onnxcheck.py'), path.join(run, 'check.onnx'), rowsFile], { encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    const info = readRunInfo(run);
    const spec = specOf(info);
    assert.equal(c.opset, ONNX_OPSET);
    assert.deepEqual(c.inputs, { features: kind === 'seed' ? ['N', spec.features] : ['N', spec.window, spec.features] });
    assert.deepEqual(c.outputs, { probabilities: ['N', spec.classes] });
    assert.deepEqual(c.labels, info.labels);
    // predict's path: raw values as float32, then applyScaler
    const recs = stages.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    assert.ok(recs.length >= 300);
    const F = info.features.length;
    const x = new Float32Array(recs.length * F);
    recs.forEach((rec, i) => info.features.forEach((f, k) => (x[i * F + k] = Number(rec[f]))));
    applyScaler(x, F, info.scaler, undefined, info.features);
    const d = maxDiff(x, (c.scaled as number[][]).flat());
    t.diagnostic(`${kind}: onnx ${c.ops.join(' ')}; scaled by the README's lines vs predict: max |Δ| ${d}`);
    assert.ok(d <= 1e-6, `scaling differs by ${d}`);
  }
});

/** The Python lines of the README, in JavaScript: the flat scaler alone must reproduce applyScaler. */
function applyFlat(s: FlatScaler, raw: number[]): number[] {
  return raw.map((v, f) => {
    let x = Number.isNaN(v) ? 0 : v === Infinity ? s.posinf[f] : v === -Infinity ? s.neginf[f] : v;
    if (s.log1p[f]) x = Math.sign(x) * Math.log1p(Math.abs(x));
    x = (x - s.center[f]) * s.inv_scale[f];
    if (s.clip) x = Math.min(Math.max(x, s.y_min[f]), s.y_max[f]);
    return Math.fround(x) + 0; // -0 as 0
  });
}

test('the flat scaler in the ONNX metadata reproduces applyScaler: every method, clip or not, ±Infinity policies, format-1 scalers', () => {
  const features = ['a', 'b', 'c', 'd', 'e'];
  const rawMin = [0, -5, 3, 10, 0];
  const rawMax = [100, 5, 3, 1e9, 0];
  const scalers: ScalerStats[] = [];
  for (const clip of [true, false]) {
    const opts = { clip, posinf: ['train_max', 'zero', 'train_min', 'train_max', 'zero'], neginf: ['train_min', 'train_max', 'zero', 'train_min', 'zero'] };
    scalers.push(fitScaler(features, rawMin, rawMax, { ...opts, log1p: [] }));
    scalers.push(fitScaler(features, rawMin, rawMax, { ...opts, log1p: ['a', 'd'] }));
    scalers.push(fitScaler(features, rawMin, rawMax, { ...opts, log1p: [...features], method: 'log-minmax' }));
    // log-standard: centre and scale as fitScaler would store them from moments
    const ls = fitScaler(features, rawMin, rawMax, { ...opts, log1p: [...features], method: 'log-minmax' });
    ls.method = 'log-standard';
    ls.center = [1.5, -0.2, 1.386, 12.1, 0];
    ls.scale = [2.1, 0.7, 1, 3.3, 1];
    ls.y_min = ls.t_min.map((v, k) => (v - ls.center![k]) * (1 / ls.scale![k]));
    ls.y_max = ls.t_max.map((v, k) => (v - ls.center![k]) * (1 / ls.scale![k]));
    scalers.push(ls);
  }
  // format 1: min-max only, no centre/scale/bounds stored
  const f1 = fitScaler(features, rawMin, rawMax, { clip: true, posinf: Array(5).fill('train_max'), neginf: Array(5).fill('train_min'), log1p: ['d'] }) as Partial<ScalerStats>;
  delete f1.center;
  delete f1.scale;
  delete f1.y_min;
  delete f1.y_max;
  scalers.push(f1 as ScalerStats);
  const rows = [
    [50, 0, 3, 1e5, 0],
    [Infinity, -Infinity, NaN, -Infinity, Infinity],
    [-Infinity, Infinity, -1, Infinity, -Infinity],
    [1e12, -1e12, 1e-9, -3, 7],
    [0.5, 4.99, 3, 10, -0],
  ];
  for (const sc of scalers) {
    const flat = JSON.parse(JSON.stringify(flatScaler(sc, features))) as FlatScaler; // as it travels, through JSON
    for (const raw of rows) {
      const x = Float32Array.from(raw);
      applyScaler(x, features.length, sc, undefined, features);
      assert.deepEqual(applyFlat(flat, [...Float32Array.from(raw)]), [...x].map((v) => v + 0), `${sc.method} clip=${sc.clip} log1p=${sc.log1p} raw=${raw}`);
    }
  }
});

test('user errors of export --onnx and predict --engine onnx: one line, exit 2; predict --engine onnx makes the WebAssembly kernel\'s predictions, one or two threads', async (t) => {
  const { run, csv } = await runOf('window');
  const missing = cli(['predict', '--model', run, '--engine', 'onnx', csv], { env: { FLOWTENSOR_ONNXRUNTIME_MODULE: 'flowtensor-no-such-module' } });
  assert.equal(missing.status, 2);
  assert.equal(missing.stdout, '');
  const lines = missing.stderr.trim().split('\n');
  assert.equal(lines.length, 1, missing.stderr);
  assert.match(lines[0], /^flowtensor: --engine onnx: onnxruntime-node cannot load \(.*\); install it with ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node, or leave out --engine/);
  const bad = cli(['export', run]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^flowtensor: export: name the format, --onnx/);
  const none = cli(['export', '--onnx', path.join(run, 'nope')]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /nope: no such run folder/);
  // weights that do not match run.json are refused, naming the weight
  const odd = path.join(path.dirname(run), 'odd');
  fs.cpSync(run, odd, { recursive: true });
  fs.rmSync(path.join(odd, 'model.onnx'), { force: true });
  const info = JSON.parse(fs.readFileSync(path.join(odd, 'run.json'), 'utf8'));
  info.config.units = 16;
  fs.writeFileSync(path.join(odd, 'run.json'), JSON.stringify(info));
  const mismatch = cli(['export', '--onnx', odd]);
  assert.equal(mismatch.status, 2);
  assert.match(mismatch.stderr, /^flowtensor: .*odd\/model.json: weight LSTMnet\/kernel has shape \[\d+,128\], run.json implies \[\d+,64\]/);
  assert.ok(!fs.existsSync(path.join(odd, 'model.onnx')));

  const { ort, reason } = await loadOnnxRuntime();
  if (!ort) return t.skip(`onnxruntime-node cannot load (${reason}): the comparison with the WebAssembly kernel skipped`);
  const collect = async (engine: 'wasm' | 'onnx', threads: number) => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c) => chunks.push(c));
    await predict({ model: run, inputs: [csv], output: out, engine, threads, batchSize: 700 });
    out.end();
    return Buffer.concat(chunks).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
  };
  const wasm = await collect('wasm', 1);
  const one = await collect('onnx', 1);
  const two = await collect('onnx', 2);
  assert.deepEqual(two, one);
  assert.equal(one.length, wasm.length);
  let d = 0;
  one.forEach((r, i) => {
    assert.equal(r.line, wasm[i].line);
    assert.equal(r.predicted, wasm[i].predicted, `line ${r.line}`);
    d = Math.max(d, Math.abs(r.probability - wasm[i].probability));
  });
  t.diagnostic(`window model, ${one.length} flows: max |Δ probability| (6 decimals) ${d}`);
  assert.ok(d <= 2e-6);
});
