// The CLI as users (and mistakes) meet it: every failure one clear line with the right exit status,
// results on stdout, logs on stderr, outputs never written into inputs, standard output failures seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { prep } from '../src/prep.js';
import { train } from '../src/train.js';
import { synthToFile } from '../src/synth.js';
import { readManifest } from '../src/manifest.js';
import { createHash } from 'node:crypto';
import { readSafetensors } from '../src/safetensors.js';
import { BIN, ROOT, cli, cliAll, tmpdir, synthFile, tlHeader, tlRow, writeCsv } from './helpers.js';

let fixture: Promise<{ d: string; csv: string; shards: string; run: string }> | null = null;
/** One small trained run shared by the tests of this file. */
function trained() {
  fixture ??= (async () => {
    const d = tmpdir();
    const csv = path.join(d, 'a.csv');
    synthToFile(csv, { rows: 3000, seed: 23, classes: ['BENIGN', 'DDoS', 'PortScan'] });
    const shards = path.join(d, 'shards');
    await prep({ out: shards, inputs: [csv], workers: 0 });
    const run = path.join(d, 'run');
    await train({ shards, out: run, model: 'window', window: 2, epochs: 1, batchSize: 128, progress: false });
    return { d, csv, shards, run };
  })();
  return fixture;
}

/** A failure as promised: the exit status, one error line (and at most a hint), no stack, no internal error. */
function assertUserError(r: ReturnType<typeof cli>, pattern: RegExp, status = 2): void {
  assert.equal(r.status, status, `exit ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+|Options:/);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length <= 2 && (lines.length === 1 || lines[1].startsWith('  hint:')), r.stderr);
}

test('predict onto a full disk (/dev/full) fails at once with one line, with one thread or two', async (t) => {
  if (!fs.existsSync('/dev/full')) return t.skip('no /dev/full on this system');
  const { csv, run } = await trained();
  for (const threads of ['1', '2']) {
    const full = fs.openSync('/dev/full', 'w');
    const r = spawnSync(process.execPath, [BIN, 'predict', '-q', '--threads', threads, '--model', run, csv], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 60000, env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn' } });
    fs.closeSync(full);
    assert.notEqual(r.signal, 'SIGTERM', `threads ${threads}: still running after 60 s`);
    assert.equal(r.status, 1, `threads ${threads}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), 'flowtensor: cannot write standard output: disk full');
  }
  // short results (inspect) on a full disk: exit 1 too, never a silent 0
  const { shards } = await trained();
  const full = fs.openSync('/dev/full', 'w');
  const r = spawnSync(process.execPath, [BIN, 'inspect', shards], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 60000 });
  fs.closeSync(full);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /cannot write standard output: disk full/);
});

test('an output that is one of the inputs is refused: --rejects, appended stdout, a hard link, prep\'s own files', async () => {
  const { d, csv, run } = await trained();
  const link = path.join(d, 'link.csv');
  fs.linkSync(csv, link);
  const size = fs.statSync(csv).size;
  assertUserError(cli(['parse', '--rejects', csv, csv]), /--rejects .*a\.csv is the input .*a\.csv: refusing to write into a file being read/);
  assertUserError(cli(['predict', '--model', run, '--rejects', link, csv]), /--rejects .*link\.csv is the input .*a\.csv/);
  assertUserError(cli(['prep', '--out', d, '--rejects', csv, csv]), /--rejects .*is the input/);
  assertUserError(cli(['labels', '--rejects', csv], { stdinFile: csv }), /--rejects .*is the input standard input/);
  // `predict a.csv >> a.csv` would grow its own input without end
  const fd = fs.openSync(csv, 'a');
  const r = spawnSync(process.execPath, [BIN, 'predict', '--model', run, csv], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', timeout: 60000 });
  fs.closeSync(fd);
  assertUserError({ ...r, stdout: '' } as ReturnType<typeof cli>, /standard output is the input .*a\.csv/);
  // the log file too
  assertUserError(cli(['parse', '--log-file', link, csv]), /--log-file .*link\.csv is the input/);
  assert.equal(fs.statSync(csv).size, size, 'the input is unchanged');
  // prep's own output files cannot be inputs: OUT/rejects.ndjson named as an input
  const o = path.join(d, 'o');
  fs.mkdirSync(o, { recursive: true });
  fs.copyFileSync(csv, path.join(o, 'rejects.ndjson'));
  assertUserError(cli(['prep', '--out', o, path.join(o, 'rejects.ndjson')]), /--out .* holds .*rejects\.ndjson is the input/);
});

test('a hard link or symlink to the same file is read once', async () => {
  const d = tmpdir();
  const csv = synthFile(d, 'x.csv', { rows: 400, seed: 5 });
  fs.linkSync(csv, path.join(d, 'hard.csv'));
  fs.symlinkSync(csv, path.join(d, 'soft.csv'));
  const m = await prep({ out: path.join(d, 'o'), inputs: [csv, path.join(d, 'hard.csv'), path.join(d, 'soft.csv')], workers: 0 });
  assert.equal(m.accounting.data_rows, 400);
});

test('two writers into one folder: the second gets a clear error; a lock left by a killed process is taken over', async () => {
  const d = tmpdir();
  const files = [0, 1].map((k) => synthFile(d, `f${k}.csv`, { rows: 40000, seed: 80 + k }));
  const out = path.join(d, 'out');
  const first = spawn(process.execPath, [BIN, 'prep', '-q', '--out', out, ...files], { stdio: 'ignore' });
  const done = new Promise<number | null>((r) => first.once('exit', r));
  const t0 = Date.now();
  while (!fs.existsSync(path.join(out, '.flowtensor.lock')) && Date.now() - t0 < 30000) await new Promise((r) => setTimeout(r, 20));
  assertUserError(cli(['prep', '-q', '--out', out, files[0]]), /: in use by another flowtensor prep \(process \d+\)/);
  assert.equal(await done, 0);
  const m = readManifest(out, { verify: 'sha256' }); // the first run's output, whole
  assert.equal(m.accounting.data_rows, 80000);
  assert.ok(!fs.existsSync(path.join(out, '.flowtensor.lock')), 'released');
  // a lock whose process is gone (SIGKILL) is taken over; a live one is respected, for train too
  fs.writeFileSync(path.join(out, '.flowtensor.lock'), '999999 prep\n');
  assert.equal(cli(['prep', '-q', '--out', out, files[0]]).status, 0);
  const run = path.join(d, 'run');
  fs.mkdirSync(run);
  fs.writeFileSync(path.join(run, '.flowtensor.lock'), `${process.pid} train\n`);
  assertUserError(cli(['train', '--shards', out, '--out', run]), /run: in use by another flowtensor train/);
  // the lock appears with its owner written (never empty: a process killed right after creating it
  // once left an empty lock that blocked every retry); an empty one is someone mid-write unless old
  const lockfile = path.join(out, '.flowtensor.lock');
  fs.writeFileSync(lockfile, '');
  assertUserError(cli(['prep', '-q', '--out', out, files[0]]), /out: in use by another flowtensor command/);
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lockfile, old, old);
  // a writer killed between linking its lock and removing the temp it linked from leaves the temp
  fs.writeFileSync(path.join(out, '.flowtensor.lock.tmp-999999'), '999999 prep\n');
  assert.equal(cli(['prep', '-q', '--out', out, files[0]]).status, 0);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.')), [], 'no lock or temp left');
});

test('labels: at most 1,000 classes; a huge label is cut in messages; a merged label never takes an existing class name', async () => {
  const d = tmpdir();
  const many = writeCsv(d, 'many.csv', `${tlHeader()}\n${Array.from({ length: 10000 }, (_, i) => tlRow({ 7: i, 84: `L${i}` })).join('\n')}\n`);
  assertUserError(cli(['prep', '--log-level', 'error', '--allow-new-labels', '--out', path.join(d, 'o'), many]), /many\.csv:\d+: label "L\d+" would be class 1001: at most 1000 classes/);
  const big = writeCsv(d, 'big.csv', `${tlHeader()}\n${tlRow({ 84: 'A'.repeat(500_000) })}\n`);
  let r = cli(['prep', '-q', '--out', path.join(d, 'o2'), big]);
  assertUserError(r, /big\.csv:2: unknown label "A{80}"… \(500,000 characters\)/);
  assert.ok(r.stderr.length < 2000, `${r.stderr.length} characters of error`);
  r = cli(['prep', '-q', '--allow-new-labels', '--out', path.join(d, 'o3'), big]);
  assertUserError(r, /a new class name has at most 100 characters/);
  assert.ok(r.stderr.length < 2000);
  // BruteForce in a derived file merges FTP/SSH-Patator: with --allow-new-labels it is a class of its own
  const rows = [tlRow({ 84: 'BruteForce' }), tlRow({ 7: 2, 84: 'Web Attack \u2013 Brute Force' }), tlRow({ 7: 3, 84: 'dos' }), tlRow({ 7: 4, 84: 'DoS' }), tlRow({ 7: 5, 84: 'BENIGN' }), tlRow({ 7: 6, 84: 'Gremlins' }), tlRow({ 7: 7, 84: 'gremlins' })];
  const mixed = writeCsv(d, 'derived.csv', `${tlHeader()}\n${rows.join('\n')}\n`);
  const m = await prep({ out: path.join(d, 'o4'), inputs: [mixed], allowNewLabels: true, workers: 0 });
  assert.equal(new Set(m.labels).size, m.labels.length, 'class names are distinct');
  assert.deepEqual(m.labels.slice(15), ['BruteForce (merged)', 'dos (merged)', 'Gremlins']);
  const total = (l: string) => (['train', 'val', 'test'] as const).reduce((s, k) => s + (m.splits[k].class_counts[l] ?? 0), 0);
  assert.deepEqual([total('BruteForce'), total('BruteForce (merged)'), total('dos (merged)'), total('Gremlins')], [1, 1, 2, 2]);
  assert.equal(m.labels.reduce((s, l) => s + total(l), 0), 7);
});

test('shards and weights that are /dev/zero, a FIFO or a symlink out of their folder are refused before reading', async () => {
  const { d, shards, run } = await trained();
  const copy = (from: string, to: string) => fs.cpSync(from, to, { recursive: true });
  const m = readManifest(shards);
  const rel = m.splits.train.shards[0].file;
  const cases: [string, (f: string) => void, RegExp][] = [
    ['zero', (f) => fs.symlinkSync('/dev/zero', f), /not a regular file/],
    ['fifo', (f) => spawnSync('mkfifo', [f]), /a pipe \(FIFO\), not a regular file/],
    ['outside', (f) => { const out = path.join(d, `outside-${path.basename(f)}`); fs.copyFileSync(path.join(shards, rel), out); fs.symlinkSync(out, f); }, /a symbolic link out of/],
  ];
  for (const [name, make, msg] of cases) {
    const sh = path.join(d, `sh-${name}`);
    copy(shards, sh);
    const f = path.join(sh, rel);
    fs.rmSync(f);
    make(f);
    for (const args of [['eval', '--model', run, '--shards', sh, '--split', 'train'], ['inspect', '--verify', sh]]) {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60000, env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn' } });
      assert.notEqual(r.signal, 'SIGTERM', `${name} ${args[0]}: hangs`);
      assertUserError(r as ReturnType<typeof cli>, msg);
    }
    const rn = path.join(d, `run-${name}`);
    copy(run, rn);
    const w = path.join(rn, 'weights.bin');
    fs.rmSync(w);
    make(w);
    const r = spawnSync(process.execPath, [BIN, 'eval', '--model', rn, '--shards', shards], { encoding: 'utf8', timeout: 60000, env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn' } });
    assert.notEqual(r.signal, 'SIGTERM', `${name} weights: hangs`);
    assertUserError(r as ReturnType<typeof cli>, name === 'fifo' ? /not a regular file/ : /a symbolic link out of .*run-\w+ \(to /);
  }
});

test('user mistakes end in one line naming the value and what is allowed, exit 2, never an internal error', async () => {
  const { d, csv, shards, run } = await trained();
  const o = path.join(d, 'mistake-out');
  const bad: [string[], RegExp][] = [
    [['prep', '--out', o, '--shard-rows', '0', csv], /--shard-rows 0: give a whole number from 1 to/],
    [['prep', '--out', o, '--shard-rows', '-1', csv], /--shard-rows -1: give a whole number/],
    [['prep', '--out', o, '--shard-rows', '1.5', csv], /--shard-rows 1\.5: give a whole number/],
    [['prep', '--out', o, '--shard-rows', 'abc', csv], /--shard-rows abc: give a whole number/],
    [['prep', '--out', o, '--workers', '-1', csv], /--workers -1: give a whole number from 0 to 16/],
    [['prep', '--out', o, '--delimiter', ';;', csv], /--delimiter ";;": give one ASCII character/],
    [['prep', '--out', o, '--ratios', '1,2', csv], /--ratios 1,2: give three non-negative numbers/],
    [['train', '--shards', shards, '--out', o, '--batch-size', '0'], /--batch-size 0: give a whole number from 1/],
    [['train', '--shards', shards, '--out', o, '--batch-size', '-5'], /--batch-size -5/],
    [['train', '--shards', shards, '--out', o, '--units', '0'], /--units 0: give a whole number from 1/],
    [['train', '--shards', shards, '--out', o, '--window', '0'], /--window 0/],
    [['train', '--shards', shards, '--out', o, '--epochs', '0'], /--epochs 0/],
    [['train', '--shards', shards, '--out', o, '--lr', '-1'], /--lr -1: give a number above 0/],
    [['train', '--shards', shards, '--out', o, '--lr', 'NaN'], /--lr NaN/],
    [['synth', '--rows', '-5'], /--rows -5: give a whole number from 0/],
    [['prep', '--config', 'nope', '--out', o, csv], /--config nope: no such data-set config \(known: cicids2017/],
    [['prep', '--config', path.join(d, 'missing.json'), '--out', o, csv], /missing\.json: no such file or folder/],
    [['prep', '--log-file', path.join(d, 'no', 'such', 'x.log'), '--out', o, csv], /--log-file .*x\.log: folder .* does not exist/],
    [['prep', '--out', o, path.join(d, 'nope.csv')], /nope\.csv: no such file or folder/],
    [['predict', '--model', run, path.join(d, 'nope.csv')], /nope\.csv: no such file or folder/],
    [['split'], /stdin:1: null, not a JSON record/],
  ];
  fs.writeFileSync(path.join(d, 'bad-config.json'), '{"name": 3}');
  bad.push([['prep', '--config', path.join(d, 'bad-config.json'), '--out', o, csv], /bad-config\.json: name is not a string/]);
  // a folder named like a CSV inside an input folder, a symlink loop
  const folder = path.join(d, 'in');
  fs.mkdirSync(path.join(folder, 'x.csv'), { recursive: true });
  bad.push([['prep', '--out', o, folder], /in\/x\.csv: a folder inside .* named like a CSV file/]);
  fs.symlinkSync(path.join(d, 'loop-b.csv'), path.join(d, 'loop-a.csv'));
  fs.symlinkSync(path.join(d, 'loop-a.csv'), path.join(d, 'loop-b.csv'));
  bad.push([['prep', '--out', o, path.join(d, 'loop-a.csv')], /loop-a\.csv: a symbolic link loop/]);
  // stage commands in the wrong order
  const parsed = cli(['parse', csv]).stdout;
  const results = await cliAll(bad.map(([args]) => ({ args, input: args[0] === 'split' ? 'null\n' : undefined })));
  results.forEach((r, k) => assertUserError(r as ReturnType<typeof cli>, bad[k][1]));
  assertUserError(cli(['split'], { input: parsed }), /split: rows have no class: run labels before split/);
  assertUserError(cli(['shard', '--out', path.join(d, 'so')], { input: parsed }), /shard reads the output of split/);
  const labelled = cli(['labels'], { input: parsed }).stdout;
  assertUserError(cli(['split'], { input: labelled }), /split: column flow_id holds text: run filter and ipsplit before split/);
  assert.ok(!fs.existsSync(o), 'no output folder left by a refused command');
});

test('damaged or hand-edited run files, manifests and shards: one clear line, exit 2', async () => {
  const { d, csv, shards, run } = await trained();
  const edit = (src: string, name: string, file: string, f: (j: any) => unknown) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const dst = path.join(d, name);
    fs.cpSync(src, dst, { recursive: true });
    const p = path.join(dst, file);
    const v = f(JSON.parse(fs.readFileSync(p, 'utf8')));
    fs.writeFileSync(p, typeof v === 'string' ? v : JSON.stringify(v));
    return dst;
  };
  const runCases: [string, string, (j: any) => unknown, RegExp][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['r1', 'model.json', (j) => ({ ...j, weightsManifest: [{ weights: j.weightsManifest[0].weights }] }), /a weightsManifest entry lacks paths or weights/],
    ['r2', 'model.json', (j) => ({ ...j, weightsManifest: [{ paths: ['weights.bin'] }] }), /lacks paths or weights/],
    ['r3', 'run.json', () => '{"config": ', /run\.json: not valid JSON/],
    ['r4', 'run.json', () => 'null', /run\.json: holds null, not a JSON object/],
    ['r5', 'run.json', (j) => ({ ...j, scaler: { ...j.scaler, min: j.scaler.min.slice(1) } }), /run\.json: scaler min is not \d+ finite numbers/],
    ['r6', 'run.json', (j) => ({ ...j, config: { ...j.config, units: 0 } }), /run\.json: config\.units is 0/],
    ['r7', 'eval.json', () => '{}', /eval\.json: not an evaluation/],
  ];
  const runResults = await cliAll(runCases.map(([name, file, f]) => {
    const r = edit(run, name, file, f);
    return { args: file === 'eval.json' ? ['report', r] : ['predict', '--model', r, csv] };
  }));
  runResults.forEach((r, k) => assertUserError(r as ReturnType<typeof cli>, runCases[k][3]));
  const st = edit(run, 'r8', 'last/state.json', (j) => ({ ...j, epoch: -1 }));
  assertUserError(cli(['train', '--shards', shards, '--out', st, '--resume', '--epochs', '3']), /state\.json: epoch is -1/);
  const shardCases: [string, (j: any) => unknown, RegExp][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['s1', (j) => { delete j.splits; return j; }, /manifest\.json: no splits object/],
    ['s2', (j) => { delete j.scaler; return j; }, /manifest\.json: scaler is missing/],
    ['s3', (j) => ({ ...j, scaler: { ...j.scaler, t_max: [1] } }), /manifest\.json: scaler t_max is not \d+ finite numbers/],
    ['s4', (j) => ({ ...j, splits: { ...j.splits, val: null } }), /split val is missing or malformed/],
  ];
  const shardRuns = shardCases.flatMap(([name, f]) => {
    const s = edit(shards, name, 'manifest.json', f);
    return [{ args: ['eval', '--model', run, '--shards', s] }, { args: ['inspect', s] }];
  });
  (await cliAll(shardRuns)).forEach((r, k) => assertUserError(r as ReturnType<typeof cli>, shardCases[k >> 1][2]));
  // hostile safetensors headers (the manifest's checksum made to match, as an attacker would)
  const m = readManifest(shards);
  for (const [name, header, msg] of [
    ['h1', 'null', /safetensors header is not a JSON object/],
    ['h2', JSON.stringify({ features: { dtype: 'F32', shape: [-1, -4], data_offsets: [0, 16] } }), /shape \[-1,-4\]: dimensions are whole numbers from 0/],
  ] as const) {
    const s = path.join(d, name);
    fs.cpSync(shards, s, { recursive: true });
    const entry = m.splits.test.shards[0];
    const body = Buffer.from(header.padEnd(Math.ceil(header.length / 8) * 8));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(body.length));
    const bytes = Buffer.concat([len, body, Buffer.alloc(16)]);
    fs.writeFileSync(path.join(s, entry.file), bytes);
    const mj = JSON.parse(fs.readFileSync(path.join(s, 'manifest.json'), 'utf8'));
    Object.assign(mj.splits.test.shards[0], { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    fs.writeFileSync(path.join(s, 'manifest.json'), JSON.stringify(mj));
    assertUserError(cli(['eval', '--model', run, '--shards', s]), msg);
  }
});

test('prep --rejects F is used; --no-clip never writes Infinity; eval on an empty split and inspect --verify say what they did', async () => {
  const { d, run } = await trained();
  // the three rows of a class go to train, val and test (by fingerprint): whichever is in train, a constant
  // train value and a far val or test value overflow float32 unclipped
  const rows = [tlRow({ 7: '-3e38', 8: 1 }), tlRow({ 7: '3e38', 8: 2 }), tlRow({ 7: '3e38', 8: 3 }), '1,2,3'];
  const f = writeCsv(d, 'noclip.csv', `${tlHeader()}\n${rows.join('\n')}\n`);
  const out = path.join(d, 'noclip');
  const rej = path.join(d, 'my-rejects.ndjson');
  // min-max (the log scalers cannot overflow): (3e38 - (-3e38)) / 1 is beyond float32
  const r = cli(['prep', '-q', '--no-clip', '--scaler', 'minmax', '--rejects', rej, '--out', out, f]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(fs.readFileSync(rej, 'utf8').trim()).line, 5);
  assert.ok(!fs.existsSync(path.join(out, 'rejects.ndjson')), 'written to --rejects instead');
  const m = readManifest(out);
  for (const sp of ['val', 'test'] as const) {
    const x = readSafetensors(path.join(out, m.splits[sp].shards[0].file)).get('features') as Float32Array;
    assert.ok(x.every((v) => Number.isFinite(v)), `no Infinity in the ${sp} shard`);
  }
  const cl = m.quality.clipped_to_train_range as Record<string, Record<string, number>>;
  assert.equal((cl.val.flow_duration ?? 0) + (cl.test.flow_duration ?? 0), 1, 'and the clipped value is counted');
  // eval on a split without rows
  const empty = path.join(d, 'empty');
  await prep({ out: empty, inputs: [synthFile(d, 'tiny.csv', { rows: 300, seed: 3, classes: ['BENIGN', 'DDoS', 'PortScan'] })], ratios: { train: 1, val: 1, test: 0 }, workers: 0 });
  assertUserError(cli(['eval', '--model', run, '--shards', empty, '--split', 'test']), /the test split is empty: nothing to evaluate/);
  const v = cli(['inspect', '--verify', out]);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /verified {2}3 shards: sizes and sha256 match the manifest/);
});

test('predict on files shows bytes, the total and an ETA; results on stdout, the summary and logs on stderr', async () => {
  const { csv, run } = await trained();
  const r = cli(['predict', '-q', '--progress', '--model', run, csv]);
  assert.equal(r.status, 0, r.stderr);
  const size = fs.statSync(csv).size;
  assert.match(r.stderr, new RegExp(`predict {2}[\\d.k]+ rows {2}[\\d.k]+ rows/s {2}[\\d.]+ [KM]iB/${(size / 2 ** 20).toFixed(1)} MiB {2}ETA \\d+:\\d\\d`));
  assert.equal(r.stdout.trim().split('\n').length, 3000);
});

test('results go to stdout and logs to stderr for every command; -q quiets logs only', async () => {
  const { d, csv, shards } = await trained();
  const out = path.join(d, 'results');
  const p = cli(['prep', '-q', '--out', out, csv]);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /rows {6}3,000 read = 3,000 in shards/);
  assert.equal(p.stderr, '');
  const run = path.join(d, 'results-run');
  const t = cli(['train', '-q', '--shards', shards, '--out', run, '--model', 'window', '--window', '2', '--epochs', '1', '--batch-size', '256']);
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stdout, /macro-F1 \d\.\d{4} {3}weighted-F1/);
  assert.equal(t.stderr, '');
  const e = cli(['eval', '-q', '--model', run, '--shards', shards]);
  assert.match(e.stdout, /macro-F1/);
  // the stage commands: shard says what it wrote, scale prints the finished folder
  let data = cli(['parse', '-q', csv]);
  for (const stage of ['filter', 'ipsplit', 'labels', 'sanitize', 'split']) data = cli([stage, '-q'], { input: data.stdout });
  const sh = cli(['shard', '-q', '--out', path.join(d, 'piped')], { input: data.stdout });
  assert.match(sh.stdout, /3,000 rows in unscaled shards .*next: flowtensor scale/);
  const sc = cli(['scale', '-q', path.join(d, 'piped')]);
  assert.match(sc.stdout, /3,000 read = 3,000 in shards/);
  assert.equal(sc.stderr, '');
});

test('usage errors: the error and one line pointing at --help; unknown options named; every option described in --help', async () => {
  const usage = [
    [['prep', '--bogus', '1', '--out', 'x', 'a.csv'], /^flowtensor: prep: unknown option --bogus\n  hint: flowtensor prep --help lists the options\n$/],
    [['prep', 'a.csv'], /^flowtensor: prep: missing --out \(required\)\n/],
    [['eval', '--model', 'r', '--shards', 's', '--split', 'foo'], /^flowtensor: eval: --split "foo": choose one of train, val, test\n/],
    [['inspect'], /^flowtensor: inspect: missing a shard folder\n/],
    [['nocmd'], /^flowtensor: unknown command "nocmd" \(commands: prep, /],
    [[], /^flowtensor: give a command\n  hint: flowtensor --help lists the commands\n$/],
  ] as const;
  (await cliAll(usage.map(([args]) => ({ args: [...args] })))).forEach((r, k) => {
    assert.equal(r.status, 2, usage[k][0].join(' '));
    assert.match(r.stderr, usage[k][1]);
    assert.equal(r.stdout, '');
  });
  const commands = ['prep', 'parse', 'filter', 'ipsplit', 'labels', 'sanitize', 'split', 'shard', 'scale', 'inspect', 'train', 'eval', 'predict', 'report', 'synth', 'demo'];
  const helps = await cliAll(commands.map((c) => ({ args: [c, '--help'] })));
  for (const [k, c] of commands.entries()) {
    const help = helps[k].stdout;
    // an option or positional line that goes straight from its name to its [type] has no description
    const bare = help.split('\n').filter((l) => /^\s+(-\w, )?--[a-z0-9-]+(, -\w)?\s+\[|^ {2}[a-z]+\s+\[/.test(l));
    assert.deepEqual(bare, [], `${c} --help`);
  }
});

test('the tests remove their temp folders when their process exits', () => {
  const helpers = new URL('./helpers.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const { tmpdir } = await import(${JSON.stringify(helpers)}); const fs = await import('node:fs'); const d = tmpdir(); fs.mkdirSync(d + '/sub'); fs.writeFileSync(d + '/sub/x', 'x'); console.log(d);`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const d = r.stdout.trim();
  assert.ok(d.length > 0 && !fs.existsSync(d), `${d} is left behind`);
});

test('run.json says when, how and with what a run was made; report.html says which run it shows, marks the best epoch, never cuts class names', async () => {
  const d = tmpdir();
  const long = 'A Very Long Class Name From Some Other Flow Extractor That Goes On And On Here';
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows: 2000, seed: 31, classes: ['BENIGN', 'DDoS', 'PortScan'] });
  const extra = writeCsv(d, 'extra.csv', `${tlHeader()}\n${Array.from({ length: 12 }, (_, i) => tlRow({ 7: i, 84: long })).join('\n')}\n`);
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [csv, extra], allowNewLabels: true, dropIdentifiers: true, workers: 0 });
  const run = path.join(d, 'run');
  await train({ shards, out: run, model: 'window', window: 2, epochs: 2, patience: 5, batchSize: 128, progress: false });
  const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  assert.ok(!Number.isNaN(Date.parse(info.created)), 'created');
  assert.ok(Array.isArray(info.command) && info.command.length > 0, 'command');
  assert.equal(info.runtime.node, process.version);
  assert.match(info.runtime.tfjs, /^\d+\.\d+/);
  assert.equal(info.runtime.flowtensor, info.flowtensor_version);
  const r = cli(['report', run]);
  assert.equal(r.status, 0, r.stderr);
  const html = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
  for (const want of [/identifiers \(IPs, ports\) dropped<\/th><td>yes/, /exact duplicates removed<\/th><td>no/, /inputs<\/th><td>a\.csv, extra\.csv/, /split train\/val\/test<\/th><td>by row content \(hash\), 0\.7\/0\.15\/0\.15/, /★ best \(the model\)/, /best epoch \d/, /created<\/th><td>\d{4}-\d\d-\d\dT/]) assert.match(html, want);
  // the class name is in the heat map whole, with room to its left
  const m = new RegExp(`<text x="(\\d+)" y="[\\d.]+" text-anchor="end" font-size="12">${long}</text>`).exec(html);
  assert.ok(m, 'the long class name labels a heat-map row');
  assert.ok(Number(m[1]) >= long.length * 7, `row labels end at x=${m[1]}, the name needs ~${long.length * 7} px`);
});

test('README: paths the demo writes, how to run flowtensor, cut output said so, the tool\'s class names; npm start does not rebuild', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.doesNotMatch(readme, /(?<!data\/)demo\/synth\.csv/, 'the demo writes data/demo/synth.csv');
  assert.match(readme, /npx flowtensor/);
  assert.match(readme, /npm link/);
  // every output block with cut lines has a sentence next to it (before or after) that says `...` marks a cut
  const parts = readme.split('```');
  const cutBlocks = parts.map((b, i) => ({ b, i })).filter(({ b, i }) => i % 2 === 1 && b.split('\n').some((l) => l.trim() === '...'));
  const unsaid = cutBlocks.filter(({ i }) => ![parts[i - 1], parts[i + 1] ?? ''].some((p) => /`\.\.\.` marks (rows|lines) cut here/.test(p)));
  assert.ok(cutBlocks.length > 0, 'the README shows cut output');
  assert.deepEqual(unsaid.map(({ b }) => b.split('\n')[1]), [], 'cut outputs whose text does not say so');
  const classes = new Set(JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'cicids2017.json'), 'utf8')).classes as string[]);
  const blocks = readme.split('```').filter((_, i) => i % 2 === 1);
  const named = blocks.flatMap((b) => b.split('\n').map((l) => /^([A-Za-z][\w-]*)\s{2,}[\d,.]+\s/.exec(l)?.[1]).filter((x): x is string => !!x));
  assert.ok(named.length > 5);
  assert.deepEqual(named.filter((n) => !classes.has(n) && !['all', 'shards', 'features', 'rows', 'sources', 'macro-F1'].includes(n)), [], 'class names in README outputs are the tool\'s');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert.doesNotMatch(pkg.scripts.start, /build/);
});

test('more of the same kind: a stage waiting on a terminal says what it reads; a failed write names the file, not its temp name', async (t) => {
  const { d, run } = await trained();
  const r = cli(['report', run, '--out', path.join(d, 'no', 'such', 'r.html')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^flowtensor: cannot write .*\/no\/such\/r\.html: no such folder\n$/);
  const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!hasScript) return t.skip('`script` (util-linux) not installed: the terminal case is skipped');
  // `script` gives the command a terminal as its standard input
  const tty = spawnSync('script', ['-qec', `${process.execPath} ${BIN} filter`, '/dev/null'], { encoding: 'utf8', timeout: 30000, input: '' });
  assert.notEqual(tty.signal, 'SIGTERM', 'waited on the terminal');
  assert.match(tty.stdout, /flowtensor: filter reads NDJSON records on standard input, which is a terminal here/);
});

test('the demo (npm start) runs again into its own folder', () => {
  const dir = path.join(tmpdir(), 'demo');
  for (const k of [1, 2]) {
    const r = cli(['demo', '-q', '--rows', '2000', '--epochs', '1', '--dir', dir]);
    assert.equal(r.status, 0, `run ${k}: ${r.stderr}`);
    assert.match(r.stdout, /report: .*report\.html/);
  }
});
