// `npm run bench`: prints one JSON line per measurement. Inputs come from `synth` (cached in .bench/).
// Usage: node dist/bench/bench.js [prep|parsers|train|predict|threads|lstm|engines|peers|peers-prep|peers-train ...] [--rows 500000,2830743]
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { synthToFile } from '../src/synth.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE = path.join(ROOT, '.bench');
const args = process.argv.slice(2);
const rowsArg = args.indexOf('--rows');
const sizes = rowsArg >= 0 ? args[rowsArg + 1].split(',').map(Number) : [500_000, 2_830_743];
const which = args.filter((a, i) => !a.startsWith('--') && (rowsArg < 0 || i !== rowsArg + 1));
const want = (name: string) => which.length === 0 || which.includes(name);

function emit(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ...o, node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model }) + '\n');
}

/** 8 synth files (like the 8 CICIDS2017 day files) holding `rows` rows together. */
function inputs(rows: number): string[] {
  fs.mkdirSync(CACHE, { recursive: true });
  const files: string[] = [];
  const per = Math.ceil(rows / 8);
  for (let k = 0; k < 8; k++) {
    const n = Math.min(per, rows - k * per);
    const f = path.join(CACHE, `synth-${rows}-${k}.csv`);
    if (!fs.existsSync(f)) synthToFile(f, { rows: n, seed: 100 + k, ipv6: k === 7 ? 0.05 : 0 });
    files.push(f);
  }
  return files;
}

function child(script: string, argv: string[], env: Record<string, string> = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...argv], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

if (want('prep')) {
  for (const rows of sizes) {
    const files = inputs(rows);
    const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
    const out = path.join(CACHE, `shards-${rows}`);
    const script = `
      import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))};
      const t = performance.now();
      const m = await prep({ out: process.argv[1], inputs: process.argv.slice(2) });
      const s = (performance.now() - t) / 1000;
      console.log(JSON.stringify({ seconds: s, rows: m.accounting.data_rows, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
    for (let rep = 0; rep < 2; rep++) {
      const r = child(script, [out, ...files]);
      emit({ bench: 'prep', rows: r.rows, files: files.length, input_mb: Math.round(bytes / 2 ** 20), seconds: +(r.seconds as number).toFixed(2), rows_per_s: Math.round((r.rows as number) / (r.seconds as number)), mb_per_s: Math.round(bytes / 2 ** 20 / (r.seconds as number)), peak_rss_mb: r.peak_rss_mb, target_rows_per_s: 250000, target_peak_rss_mb: 300, run: rep + 1 });
    }
  }
}

if (want('parsers')) {
  // the choice of CSV parser: csv-parser (the design package) vs flowtensor's byte-level parser, same file, one thread
  const file = inputs(500_000)[0];
  const bytes = fs.statSync(file).size;
  const csvParser = `
    import fs from 'node:fs';
    import csv from 'csv-parser';
    const t = performance.now(); let n = 0;
    await new Promise((res, rej) => fs.createReadStream(process.argv[1]).pipe(csv({ mapHeaders: ({ header, index }) => header.trim() + '#' + index })).on('data', (r) => { n++; if (Number(r['Flow Duration#7']) < -5) n--; }).on('end', res).on('error', rej));
    console.log(JSON.stringify({ rows: n, seconds: (performance.now() - t) / 1000 }));`;
  const ours = `
    import fs from 'node:fs';
    import { CsvBatchParser } from ${JSON.stringify(path.join(ROOT, 'dist/stages/parse.js'))};
    import { loadConfig } from ${JSON.stringify(path.join(ROOT, 'dist/src/config.js'))};
    const t = performance.now(); let n = 0;
    const p = new CsvBatchParser({ file: 'x', cfg: loadConfig(), want: null });
    for await (const c of fs.createReadStream(process.argv[1], { highWaterMark: 1 << 20 })) for (const b of p.push(c)) n += b.n;
    for (const b of p.end()) n += b.n;
    console.log(JSON.stringify({ rows: n, seconds: (performance.now() - t) / 1000 }));`;
  for (const [name, script] of [['csv-parser (strings, all columns)', csvParser], ['flowtensor CsvBatchParser (all 85 columns parsed to numbers)', ours]]) {
    const r = child(script, [file]);
    emit({ bench: 'parser', parser: name, rows: r.rows, seconds: +(r.seconds as number).toFixed(2), rows_per_s: Math.round((r.rows as number) / (r.seconds as number)), mb_per_s: Math.round(bytes / 2 ** 20 / (r.seconds as number)) });
  }
}

if (want('plumbing')) {
  // the cost of moving 4,096-row batches between 6 stages: plain calls vs Node streams vs highland
  const script = `
    import { Readable, Transform, Writable } from 'node:stream';
    import { pipeline } from 'node:stream/promises';
    import _ from 'highland';
    const N = 700, STAGES = 6; // 700 batches of 4,096 rows = 2.87M rows
    const work = (b) => { b.k++; return b; };
    const make = () => Array.from({ length: N }, (_, i) => ({ i, k: 0 }));
    let t = performance.now();
    for (const b of make()) { let x = b; for (let s = 0; s < STAGES; s++) x = work(x); }
    const calls = performance.now() - t;
    t = performance.now();
    await pipeline(Readable.from(make()), ...Array.from({ length: STAGES }, () => new Transform({ objectMode: true, transform(b, _e, cb) { cb(null, work(b)); } })), new Writable({ objectMode: true, write(_b, _e, cb) { cb(); } }));
    const streams = performance.now() - t;
    t = performance.now();
    await new Promise((res) => { let s = _(make()); for (let k = 0; k < STAGES; k++) s = s.map(work); s.done(res); });
    const hl = performance.now() - t;
    t = performance.now();
    await new Promise((res) => { _(make()).through(_.pipeline(...Array.from({ length: STAGES }, () => _.map(work)))).done(res); });
    const hlPipeline = performance.now() - t;
    console.log(JSON.stringify({ calls, streams, hl, hlPipeline }));`;
  const r = child(script, []);
  for (const [k, v] of Object.entries(r)) emit({ bench: 'plumbing', how: k, batches: 700, stages: 6, ms: +(v as number).toFixed(2) });
}

if (want('train') || want('predict')) {
  // training and scoring speed on the full-size synthetic shards (prepared above or here), wasm backend
  const rows = Math.max(...sizes);
  const shards = path.join(CACHE, `shards-${rows}`);
  if (!fs.existsSync(path.join(shards, 'manifest.json'))) child(`import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))}; await prep({ out: process.argv[1], inputs: process.argv.slice(2) }); console.log('{}');`, [shards, ...inputs(rows)]);
  const trainScript = `
    import { train } from ${JSON.stringify(path.join(ROOT, 'dist/src/train.js'))};
    const [shards, out, model, batches] = process.argv.slice(1);
    const r = await train({ shards, out, model, batchSize: 256, epochs: 2, patience: 5, maxBatchesPerEpoch: Number(batches), progress: false, force: true });
    console.log(JSON.stringify({ backend: r.backend, trainer: r.trainer, samples_per_s: r.epochs.map((e) => e.samples_per_s), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
  const runs: Record<string, string> = {};
  for (const [model, batches, target] of [['seed', 150, 3000], ['window', 600, 8000]] as const) {
    const out = path.join(CACHE, `run-${model}`);
    runs[model] = out;
    if (!want('train') && fs.existsSync(path.join(out, 'model.json'))) continue;
    const r = child(trainScript, [shards, out, model, String(batches)]);
    const sps = r.samples_per_s as number[];
    emit({ bench: 'train', model, batch: 256, batches_per_epoch: batches, backend: r.backend, trainer: r.trainer, samples_per_s: sps[sps.length - 1], samples_per_s_by_epoch: sps, peak_rss_mb: r.peak_rss_mb, train_rows_available: rows, target_samples_per_s: target, target_peak_rss_mb: 1024 });
  }
  if (want('predict')) {
    const file = inputs(rows)[0];
    const predictScript = `
      import { predict } from ${JSON.stringify(path.join(ROOT, 'dist/src/predict.js'))};
      import { Writable } from 'node:stream';
      let bytes = 0;
      const sink = new Writable({ write(c, _e, cb) { bytes += c.length; cb(); } });
      const s = await predict({ model: process.argv[1], inputs: [process.argv[2]], output: sink });
      console.log(JSON.stringify({ rows: s.rows_scored, seconds: s.seconds, flows_per_s: s.flows_per_s, out_mb: Math.round(bytes / 2 ** 20), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
    for (const model of ['seed', 'window']) {
      if (!fs.existsSync(path.join(runs[model], 'model.json'))) continue;
      const r = child(predictScript, [runs[model], file]);
      emit({ bench: 'predict', model, ...r, target_flows_per_s: model === 'seed' ? 20000 : undefined });
    }
  }
}

if (want('threads')) {
  // prep's thread settings on the largest input
  const rows = Math.max(...sizes);
  const files = inputs(rows);
  const script = `
    import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))};
    const [out, workers, mainParses, ...files] = process.argv.slice(1);
    const t = performance.now();
    const m = await prep({ out, inputs: files, workers: Number(workers), mainParses: mainParses === '1' });
    console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000, rows: m.accounting.data_rows, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
  for (const [workers, mainParses] of [[0, 0], [1, 0], [1, 1], [2, 0]]) {
    const r = child(script, [path.join(CACHE, 'shards-threads'), String(workers), String(mainParses), ...files]);
    emit({ bench: 'prep-threads', workers, main_parses: !!mainParses, rows: r.rows, seconds: +(r.seconds as number).toFixed(2), rows_per_s: Math.round((r.rows as number) / (r.seconds as number)), peak_rss_mb: r.peak_rss_mb });
  }
}

if (want('lstm')) {
  // the standard model and its fused twin with the same weights, B rows of random data (argv: kind, F)
  const models = (B: number) => `
    import { initBackend } from ${JSON.stringify(path.join(ROOT, 'dist/src/backend.js'))};
    import { buildModel, buildFused, copyWeights } from ${JSON.stringify(path.join(ROOT, 'dist/src/models.js'))};
    import { lstmKernel } from ${JSON.stringify(path.join(ROOT, 'dist/src/kernels/lstm.js'))};
    const [kind, F] = [process.argv[1], Number(process.argv[2])];
    const { tf, backend } = await initBackend('auto');
    const B = ${B}, spec = { kind, features: F, classes: 15, units: 32, project: 32, window: 8, seed: 1 };
    const std = buildModel(tf, spec), fused = buildFused(tf, spec);
    copyWeights(std, fused);
    const x = tf.randomUniform(kind === 'seed' ? [B, F] : [B, 8, F]);
    const out = { backend, kernel: lstmKernel().reason };`;
  // one trainOnBatch of tf.layers.lstm vs the fused twin
  const script = `${models(256)}
    const y = tf.randomUniform([B], 0, 15, 'int32').cast('float32');
    for (const [name, m] of [['fused', fused], ['tf_layers_lstm', std]]) {
      m.compile({ optimizer: tf.train.rmsprop(0.001), loss: 'sparseCategoricalCrossentropy' });
      await m.trainOnBatch(x, y); await m.trainOnBatch(x, y);
      const N = 6, t = performance.now();
      for (let k = 0; k < N; k++) await m.trainOnBatch(x, y);
      out[name] = Math.round((N * B) / ((performance.now() - t) / 1000));
    }
    console.log(JSON.stringify(out));`;
  for (const [kind, F] of [['seed', 62], ['seed', 47], ['window', 62]] as const) {
    const r = child(script, [kind, String(F)]);
    emit({ bench: 'lstm-train-step', model: kind, features: F, batch: 256, backend: r.backend, fused_samples_per_s: r.fused, tf_layers_lstm_samples_per_s: r.tf_layers_lstm });
  }
  // inference, one thread: model.predict of 1024 rows (one call) through the WebAssembly kernel, the
  // JavaScript gate loop (FLOWTENSOR_LSTM_KERNEL=js) and tf.layers.lstm, same weights
  const infer = `${models(1024)}
    const call = (m) => { const p = tf.tidy(() => m.predict(x, { batchSize: B })); p.dataSync(); p.dispose(); };
    for (const [name, m] of [['fused', fused], ['tf_layers_lstm', std]]) {
      // warm up for 2 s (V8 and tfjs settle over the first dozens of calls), then count calls in 3 s
      for (let t = performance.now(); performance.now() - t < 2000; ) call(m);
      let N = 0;
      const t = performance.now();
      while (performance.now() - t < 3000) { call(m); N++; }
      out[name] = Math.round((N * B) / ((performance.now() - t) / 1000));
    }
    console.log(JSON.stringify(out));`;
  for (const [kind, F] of [['seed', 62], ['window', 62]] as const) {
    const k = child(infer, [kind, String(F)]);
    const js = child(infer, [kind, String(F)], { FLOWTENSOR_LSTM_KERNEL: 'js' });
    emit({ bench: 'lstm-predict', model: kind, features: F, batch: 1024, backend: k.backend, wasm_kernel_flows_per_s: k.fused, js_gate_loop_flows_per_s: js.fused, tf_layers_lstm_flows_per_s: k.tf_layers_lstm });
  }
}

if (want('engines')) {
  // predict's two engines: the WebAssembly LSTM kernel (tfjs, the default) and onnxruntime-node
  // (--engine onnx, an optional dependency). First the model alone on one thread, 1,024-row calls
  // (as predict makes them), same weights and input, three interleaved runs each; then predict end
  // to end on the first synth file with both engines, one and two threads, on the bench runs. CPU
  // seconds are counted too: on a shared machine flows per CPU-second vary less than flows per second.
  const modelOnly = `
    import { initBackend } from ${JSON.stringify(path.join(ROOT, 'dist/src/backend.js'))};
    import { buildModel, buildFused, copyWeights, predictProbs } from ${JSON.stringify(path.join(ROOT, 'dist/src/models.js'))};
    import { onnxModelBytes, expectedShapes } from ${JSON.stringify(path.join(ROOT, 'dist/src/onnx.js'))};
    import { OnnxScorer, loadOnnxRuntime } from ${JSON.stringify(path.join(ROOT, 'dist/src/onnxengine.js'))};
    const [kind, engine] = process.argv.slice(1);
    const { tf } = await initBackend('auto');
    const B = 1024, spec = { kind, features: 62, classes: 15, units: 32, project: 32, window: 8, seed: 1 };
    const std = buildModel(tf, spec), fused = buildFused(tf, spec);
    copyWeights(std, fused);
    const x = tf.randomUniform(kind === 'seed' ? [B, 62] : [B, 8, 62], -2, 2, 'float32', 5).dataSync();
    let call;
    if (engine === 'onnx') {
      const ort = await loadOnnxRuntime();
      if (!ort.ort) { console.log(JSON.stringify({ skipped: ort.reason })); process.exit(0); }
      const w = new Map(Object.keys(expectedShapes(spec)).map((k, i) => [k, std.getWeights()[i].dataSync()]));
      const s = await OnnxScorer.fromBytes(onnxModelBytes(spec, w), spec);
      call = () => s.probs(x, B);
    } else call = () => predictProbs(tf, fused, spec, x, B);
    for (let t = performance.now(); performance.now() - t < 2000; ) await call();
    let N = 0;
    const c = process.cpuUsage(), t = performance.now();
    while (performance.now() - t < 3000) { await call(); N++; }
    const s = (performance.now() - t) / 1000, u = process.cpuUsage(c);
    console.log(JSON.stringify({ flows_per_s: Math.round((N * B) / s), flows_per_cpu_s: Math.round((N * B) / ((u.user + u.system) / 1e6)) }));`;
  // PyTorch's batched forward pass (bench/torch_lstm.py predict, one thread) in the same rounds: the peer
  // of the model-only figures; ratios per round (flowtensor engine ÷ PyTorch, flows per second)
  const PYT = '/usr/bin/python3';
  const torchFwd = spawnSync(PYT, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (!torchFwd) emit({ bench: 'engine-model', peer: 'pytorch', skipped: `${PYT} has no torch: apt-get install -y python3-torch` });
  for (const kind of ['seed', 'window']) {
    const ratios: Record<string, number[]> = {};
    for (let rep = 1; rep <= 3; rep++) {
      const got: Record<string, number> = {};
      for (const engine of ['wasm', 'onnx']) {
        const r = child(modelOnly, [kind, engine]);
        if (typeof r.flows_per_s === 'number') got[engine] = r.flows_per_s;
        emit({ bench: 'engine-model', model: kind, engine, threads: 1, batch: 1024, ...r, load: os.loadavg().map((v) => +v.toFixed(2)), run: rep });
      }
      if (!torchFwd) continue;
      const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
      const p = spawnSync(PYT, [path.join(ROOT, 'bench/torch_lstm.py'), kind, '1', '3', 'predict'], { encoding: 'utf8', env, cwd: ROOT });
      if (p.status !== 0) throw new Error(`torch_lstm.py predict failed: ${p.stderr}`);
      const t = JSON.parse(p.stdout.trim().split('\n').pop()!);
      emit({ bench: 'engine-model', model: kind, engine: 'pytorch', version: t.torch, threads: 1, batch: 1024, flows_per_s: t.flows_per_s, flows_per_cpu_s: t.flows_per_cpu_s, load: os.loadavg().map((v) => +v.toFixed(2)), run: rep });
      for (const e of Object.keys(got)) (ratios[`${e}_vs_pytorch`] ??= []).push(got[e] / t.flows_per_s);
    }
    const range = (xs: number[]) => [Math.min(...xs), Math.max(...xs)].map((v) => +v.toFixed(2));
    if (torchFwd) emit({ bench: 'engine-model-summary', model: kind, threads: 1, batch: 1024, ...Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, range(v)])), goal_vs_pytorch: kind === 'seed' ? 1.5 : 1.0 });
  }
  // the first of the 8 input files only (as `bench predict` uses), made alone if missing
  const rows = Math.max(...sizes);
  const file = path.join(CACHE, `synth-${rows}-0.csv`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(CACHE, { recursive: true });
    synthToFile(file, { rows: Math.ceil(rows / 8), seed: 100, ipv6: 0 });
  }
  const predictScript = `
    import { predict } from ${JSON.stringify(path.join(ROOT, 'dist/src/predict.js'))};
    import { Writable } from 'node:stream';
    const sink = new Writable({ write(c, _e, cb) { cb(); } });
    const [model, file, engine, threads] = process.argv.slice(1);
    try {
      const c = process.cpuUsage();
      const s = await predict({ model, inputs: [file], output: sink, engine, threads: Number(threads) });
      const u = process.cpuUsage(c), cpu = (u.user + u.system) / 1e6; // every thread of the process
      console.log(JSON.stringify({ rows: s.rows_scored, seconds: s.seconds, flows_per_s: s.flows_per_s, cpu_s: +cpu.toFixed(2), flows_per_cpu_s: Math.round(s.rows_scored / cpu), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));
    } catch (e) {
      if (e.name !== 'UserError') throw e;
      console.log(JSON.stringify({ skipped: e.message }));
    }`;
  for (const model of ['seed', 'window']) {
    const run = path.join(CACHE, `run-${model}`);
    if (!fs.existsSync(path.join(run, 'model.json'))) {
      emit({ bench: 'engine-predict', model, skipped: `no ${run}: run \`node dist/bench/bench.js train\` first` });
      continue;
    }
    for (const threads of [1, 2]) {
      for (const engine of ['wasm', 'onnx']) {
        const r = child(predictScript, [run, file, engine, String(threads)]);
        emit({ bench: 'engine-predict', model, engine, threads, ...r });
      }
    }
  }
}

if (want('peers') || want('peers-prep') || want('peers-train')) {
  // flowtensor beside its peers, interleaved in one run (docs/BENCHMARKS.md, "Peers"): prep vs the same job
  // in DuckDB (bench/duckprep.ts), and training vs PyTorch's LSTMs (bench/torch_lstm.py, Debian's
  // python3-torch under /usr/bin/python3) at batch 256 on one thread and two. Three rounds; each line
  // carries wall and CPU seconds and the load average, since the machine is shared. Ratios are taken within
  // a round (flowtensor ÷ peer on the same round), then their range is printed.
  const rows = Math.max(...sizes);
  const files = inputs(rows);
  const ROUNDS = Number(process.env.PEER_ROUNDS ?? 3);
  const load = () => os.loadavg().map((v) => +v.toFixed(2));
  const range = (xs: number[]) => (xs.length ? [Math.min(...xs), Math.max(...xs)].map((v) => +v.toFixed(2)) : null);
  // prep: flowtensor (default threads, --drop-identifiers) vs DuckDB (its default threads), same 8 CSVs
  const ftPrep = `
    import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))};
    const t = performance.now(), c = process.cpuUsage();
    const m = await prep({ out: process.argv[1], inputs: process.argv.slice(2), dropIdentifiers: true });
    const u = process.cpuUsage(c);
    console.log(JSON.stringify({ seconds: (performance.now() - t) / 1000, cpu_s: (u.user + u.system) / 1e6, rows: m.accounting.data_rows, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
  const ftOut = path.join(CACHE, 'peers-ft');
  const duckOut = path.join(CACHE, 'peers-duckdb');
  let haveDuck = true;
  try {
    await import('@duckdb/node-api');
  } catch (e) {
    haveDuck = false;
    emit({ bench: 'peer-prep', peer: 'duckdb', skipped: `@duckdb/node-api does not load (${(e as Error).message.split('\n')[0]}): npm install` });
  }
  const prepRatios: number[] = [];
  const doPrep = want('peers') || want('peers-prep');
  const doTrain = want('peers') || want('peers-train');
  for (let round = 1; doPrep && round <= ROUNDS; round++) {
    const f = child(ftPrep, [ftOut, ...files]);
    emit({ bench: 'peer-prep', tool: 'flowtensor', rows: f.rows, seconds: +(f.seconds as number).toFixed(2), cpu_s: +(f.cpu_s as number).toFixed(1), peak_rss_mb: f.peak_rss_mb, load: load(), round });
    if (!haveDuck) continue;
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bench/duckprep.js'), duckOut, path.join(ftOut, 'manifest.json'), ...files], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`duckprep failed: ${r.stderr}`);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const ratio = (d.seconds as number) / (f.seconds as number);
    prepRatios.push(ratio);
    emit({ bench: 'peer-prep', tool: 'duckdb', version: d.duckdb, rows: d.rows, seconds: +d.seconds.toFixed(2), cpu_s: +d.cpu_s.toFixed(1), peak_rss_mb: d.peak_rss_mb, load: load(), round, flowtensor_speedup: +ratio.toFixed(2) });
  }
  if (prepRatios.length) emit({ bench: 'peer-prep-summary', rows, flowtensor_speedup_vs_duckdb: range(prepRatios), goal: 2 });

  // training: the same shapes and batch as bench/torch_lstm.py; flowtensor's train loop (shuffled shard
  // stream, the engine on 1 or 2 threads, class weights) without the per-epoch validation
  const shards = path.join(CACHE, `shards-${rows}`);
  if (doTrain && !fs.existsSync(path.join(shards, 'manifest.json'))) child(`import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))}; await prep({ out: process.argv[1], inputs: process.argv.slice(2) }); console.log('{}');`, [shards, ...files]);
  const ftTrain = `
    import { openShards, splitBatches } from ${JSON.stringify(path.join(ROOT, 'dist/src/shardset.js'))};
    import { classWeights } from ${JSON.stringify(path.join(ROOT, 'dist/src/train.js'))};
    import { EngineStepper } from ${JSON.stringify(path.join(ROOT, 'dist/src/parallel.js'))};
    import { weightShapes } from ${JSON.stringify(path.join(ROOT, 'dist/src/trainengine.js'))};
    const [dir, kind, threads, secs] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
    const m = openShards(dir);
    const spec = { kind, features: m.num_features, classes: m.num_classes, units: 32, project: 32, window: 8 };
    const shapes = weightShapes(spec);
    const weights = shapes.map((s, i) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, (_, j) => Math.sin(i * 7919 + j) * 0.1));
    const s = await EngineStepper.create({ spec, classWeights: classWeights(m), threads, maxRows: 256, optimizer: 'rmsprop', learningRate: 0.003, names: shapes.map((_, i) => 'w' + i), weights });
    let n = 0, t, c, epoch = 0;
    const t00 = performance.now();
    for (;;) {
      const it = splitBatches(dir, m, 'train', { batchSize: 256, window: kind === 'window' ? 8 : 1, shuffle: true, seed: ++epoch });
      let next = it.next(), stop = false;
      while (!next.done) {
        s.start(next.value);
        const b = next.value;
        next = it.next();
        await s.finish();
        if (t === undefined) { if (performance.now() - t00 > 1000) { t = performance.now(); c = process.cpuUsage(); } }
        else { n += b.n; if (performance.now() - t > secs * 1000) { stop = true; break; } }
      }
      if (stop) break;
    }
    const sec = (performance.now() - t) / 1000, u = process.cpuUsage(c), cpu = (u.user + u.system) / 1e6;
    await s.dispose();
    console.log(JSON.stringify({ samples_per_s: Math.round(n / sec), samples_per_cpu_s: Math.round(n / cpu), cpu_s: +cpu.toFixed(2), wall_s: +sec.toFixed(2), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`;
  const PY = '/usr/bin/python3';
  const torchOk = doTrain && spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (doTrain && !torchOk) emit({ bench: 'peer-train', peer: 'pytorch', skipped: `${PY} has no torch: apt-get install -y python3-torch` });
  const SECS = Number(process.env.PEER_SECONDS ?? 5);
  const ratios: Record<string, number[]> = {};
  for (let round = 1; doTrain && round <= ROUNDS; round++) {
    for (const kind of ['seed', 'window']) {
      const got: Record<string, number> = {};
      for (const threads of [2, 1]) {
        const r = child(ftTrain, [shards, kind, String(threads), String(SECS)]);
        got[`ft${threads}`] = r.samples_per_s as number;
        emit({ bench: 'peer-train', tool: 'flowtensor', model: kind, threads, batch: 256, ...r, load: load(), round });
      }
      if (!torchOk) continue;
      for (const threads of [1, 2]) {
        const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
        const r = spawnSync(PY, [path.join(ROOT, 'bench/torch_lstm.py'), kind, String(threads), String(SECS)], { encoding: 'utf8', env, cwd: ROOT });
        if (r.status !== 0) throw new Error(`torch_lstm.py failed: ${r.stderr}`);
        const t = JSON.parse(r.stdout.trim().split('\n').pop()!);
        got[`pt${threads}`] = t.samples_per_s;
        emit({ bench: 'peer-train', tool: 'pytorch', version: t.torch, model: kind, threads, batch: 256, samples_per_s: t.samples_per_s, samples_per_cpu_s: t.samples_per_cpu_s, cpu_s: t.cpu_s, wall_s: t.wall_s, peak_rss_mb: t.peak_rss_mb, load: load(), round });
      }
      for (const [name, a, b] of [['ft2_vs_pt1', 'ft2', 'pt1'], ['ft1_vs_pt1', 'ft1', 'pt1'], ['ft2_vs_pt2', 'ft2', 'pt2'], ['ft2_vs_ft1', 'ft2', 'ft1']] as const) {
        if (got[a] && got[b]) (ratios[`${kind}_${name}`] ??= []).push(got[a] / got[b]);
      }
    }
  }
  for (const kind of doTrain ? ['seed', 'window'] : [])
    emit({ bench: 'peer-train-summary', model: kind, batch: 256, rounds: ROUNDS, ...Object.fromEntries(Object.entries(ratios).filter(([k]) => k.startsWith(kind)).map(([k, v]) => [k.slice(kind.length + 1), range(v)])), goal_ft2_vs_pt1: kind === 'seed' ? 1.5 : 1.0 });
}

// Parquet (issue 10): the chosen writer's cost per shard beside safetensors (rows per CPU-second, bytes),
// its reader's, and prep end to end in each format, on the same synth input (default 200,000 rows).
if (want('parquet')) {
  const rows = rowsArg >= 0 ? sizes[0] : 200_000;
  const files = inputs(rows);
  const shards = path.join(CACHE, `parquet-src-${rows}`);
  if (!fs.existsSync(path.join(shards, 'manifest.json'))) child(`import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))}; await prep({ out: process.argv[1], inputs: process.argv.slice(2) }); console.log('{}');`, [shards, ...files]);
  const codec = `
    import { readManifest } from ${JSON.stringify(path.join(ROOT, 'dist/src/manifest.js'))};
    import { loadShard } from ${JSON.stringify(path.join(ROOT, 'dist/src/shardset.js'))};
    import { encodeParquet, decodeParquet } from ${JSON.stringify(path.join(ROOT, 'dist/src/parquet.js'))};
    import { encodeSafetensors, decodeSafetensors } from ${JSON.stringify(path.join(ROOT, 'dist/src/safetensors.js'))};
    const dir = process.argv[1];
    const m = readManifest(dir);
    const sh = m.splits.train.shards.reduce((a, b) => (b.rows > a.rows ? b : a));
    const s = loadShard(dir, m, sh.file, sh.rows, sh.bytes);
    const n = s.y.length, F = m.num_features;
    const cpu = (f) => { f(); const c = process.cpuUsage(); const out = f(); const u = process.cpuUsage(c); return { cpu: (u.user + u.system) / 1e6, out }; };
    const res = [];
    for (let r = 0; r < 3; r++) {
      const pw = cpu(() => encodeParquet(s, m.features, { 'flowtensor.scaler': JSON.stringify(m.scaler) }));
      const st = cpu(() => encodeSafetensors({ features: { dtype: 'F32', shape: [n, F], data: s.x }, labels: { dtype: 'I32', shape: [n], data: s.y }, prev: { dtype: 'I32', shape: [n], data: s.prev } }, {}));
      const bytes = st.out.reduce((a, p) => a + p.byteLength, 0);
      const pr = cpu(() => decodeParquet(pw.out, m.features, 'bench'));
      const buf = Buffer.concat(st.out.map((p) => Buffer.from(p)));
      const sr = cpu(() => decodeSafetensors(buf, 'bench').get('features'));
      res.push({ rows: n, features: F, parquet_write_rows_per_cpu_s: Math.round(n / pw.cpu), parquet_bytes: pw.out.byteLength, safetensors_write_rows_per_cpu_s: Math.round(n / st.cpu), safetensors_bytes: bytes, parquet_read_rows_per_cpu_s: Math.round(n / pr.cpu), safetensors_read_rows_per_cpu_s: Math.round(n / Math.max(sr.cpu, 1e-6)) });
    }
    console.log(JSON.stringify({ runs: res }));`;
  emit({ bench: 'parquet-codec', writer: 'parquet-wasm (snappy)', ...child(codec, [shards]) });
  for (const format of ['safetensors', 'parquet']) {
    const out = path.join(CACHE, `prep-${format}-${rows}`);
    const r = child(`
      import { prep } from ${JSON.stringify(path.join(ROOT, 'dist/src/prep.js'))};
      const t0 = Date.now(), c = process.cpuUsage();
      const m = await prep({ out: process.argv[1], inputs: process.argv.slice(3), format: process.argv[2] });
      const u = process.cpuUsage(c), s = (Date.now() - t0) / 1000;
      const bytes = ['train', 'val', 'test'].reduce((a, sp) => a + m.splits[sp].shards.reduce((b, x) => b + x.bytes, 0), 0);
      console.log(JSON.stringify({ rows: m.accounting.data_rows, seconds: s, rows_per_s: Math.round(m.accounting.data_rows / s), cpu_s: +((u.user + u.system) / 1e6).toFixed(2), shard_bytes: bytes, peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }));`, [out, format, ...files]);
    emit({ bench: 'prep-format', format, ...r });
  }
}
