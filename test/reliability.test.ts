// Faults and hostile input: each case has a clear outcome (docs/RELIABILITY.md lists them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { prep } from '../src/prep.js';
import { readManifest } from '../src/manifest.js';
import { createSanitize } from '../stages/sanitize.js';
import { loadConfig } from '../src/config.js';
import { initBackend } from '../src/backend.js';
import { loadModel } from '../src/runio.js';
import { train } from '../src/train.js';
import { SPLITS, type Batch } from '../src/batch.js';
import { synthToFile } from '../src/synth.js';
import { LOCK_NAME, lockDir, processAlive } from '../src/lock.js';
import { BIN, cli, synthFile, tmpdir, tlHeader, tlRow, writeCsv } from './helpers.js';

const listShards = (dir: string) => SPLITS.flatMap((s) => (fs.existsSync(path.join(dir, s)) ? fs.readdirSync(path.join(dir, s)).sort().map((f) => path.join(s, f)) : []));

test('.csv.gz is read transparently; a corrupt gzip is one clear error', async () => {
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 3000, seed: 31 });
  const gz = path.join(d, 'b.csv.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(csv)));
  await prep({ out: path.join(d, 'o1'), inputs: [csv], workers: 0 });
  await prep({ out: path.join(d, 'o2'), inputs: [gz], workers: 0 });
  for (const f of listShards(path.join(d, 'o1'))) assert.ok(fs.readFileSync(path.join(d, 'o1', f)).equals(fs.readFileSync(path.join(d, 'o2', f))), f);
  const bad = path.join(d, 'bad.csv.gz');
  const z = zlib.gzipSync(fs.readFileSync(csv));
  fs.writeFileSync(bad, z.subarray(0, z.length >> 1));
  const r = cli(['prep', '--out', path.join(d, 'o3'), bad]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /bad\.csv\.gz: corrupt gzip data/);
  assert.ok(!fs.existsSync(path.join(d, 'o3', 'manifest.json')));
});

test('bad inputs end in one clear line: no CSVs in a folder, binary garbage, header only, a file given twice', () => {
  const d = tmpdir();
  fs.mkdirSync(path.join(d, 'empty'));
  let r = cli(['prep', '--out', path.join(d, 'o'), path.join(d, 'empty')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /folder holds no \.csv or \.csv\.gz files/);
  const garbage = writeCsv(d, 'garbage.csv', Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 256)));
  r = cli(['prep', '--out', path.join(d, 'o'), garbage]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /looks binary/);
  assert.equal(r.stderr.trim().split('\n').length, 2); // the error and its hint, no stack
  const headerOnly = writeCsv(d, 'h.csv', tlHeader() + '\n');
  r = cli(['prep', '--out', path.join(d, 'ho'), headerOnly]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readManifest(path.join(d, 'ho')).accounting.data_rows, 0);
  const t = cli(['train', '--shards', path.join(d, 'ho'), '--out', path.join(d, 'run')]);
  assert.equal(t.status, 2);
  assert.match(t.stderr, /train split is empty/);
  const csv = synthFile(d, 'x.csv', { rows: 500, seed: 3 });
  r = cli(['prep', '--out', path.join(d, 'twice'), csv, csv, d + '/./x.csv'], { env: { FLOWTENSOR_LOG_LEVEL: 'warn' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /input given twice: read once/);
  assert.equal(readManifest(path.join(d, 'twice')).accounting.data_rows, 500);
});

test('a truncated last line and a 50 MB line without newline are quarantined; memory stays bounded', async () => {
  const d = tmpdir();
  const full = tlRow({ 7: 5 });
  const trunc = writeCsv(d, 'trunc.csv', `${tlHeader()}\n${tlRow()}\n${full.slice(0, 100)}`);
  const m = await prep({ out: path.join(d, 'o1'), inputs: [trunc], workers: 0 });
  assert.equal(m.accounting.quarantined, 1);
  assert.equal(m.accounting.rows_in_shards, 1);
  const rej = JSON.parse(fs.readFileSync(path.join(d, 'o1', 'rejects.ndjson'), 'utf8').trim());
  assert.deepEqual([rej.line, rej.reason], [3, 'field_count']);
  const big = path.join(d, 'big.csv');
  const fd = fs.openSync(big, 'w');
  fs.writeSync(fd, `${tlHeader()}\n${tlRow()}\n`);
  const block = Buffer.alloc(1 << 20, 0x41);
  for (let i = 0; i < 50; i++) fs.writeSync(fd, block);
  fs.writeSync(fd, `\n${tlRow()}\n`);
  fs.closeSync(fd);
  const before = process.memoryUsage().rss;
  const m2 = await prep({ out: path.join(d, 'o2'), inputs: [big], workers: 0 });
  assert.ok(process.memoryUsage().rss - before < 40 << 20, 'no 50 MB line buffered');
  assert.equal(m2.accounting.rows_in_shards, 2);
  assert.deepEqual(m2.quality.quarantine_reasons, { line_too_long: 1 });
});

test('an output folder that cannot be written: one line, exit 1, nothing half-written', () => {
  const d = tmpdir();
  const csv = synthFile(d, 'x.csv', { rows: 200, seed: 3 });
  const r = cli(['prep', '--out', '/proc/flowtensor-test', csv]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot write \/proc\/flowtensor-test/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  // a file in the way is a user mistake, caught before any work: exit 2
  const file = writeCsv(d, 'plain-file', 'x');
  const r2 = cli(['prep', '--out', path.join(file, 'sub'), csv]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /--out .*plain-file\/sub: a part of the path is not a folder/);
  const r3 = cli(['prep', '--out', file, csv]);
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /--out .*plain-file: exists and is not a folder/);
});

test('disk full (ENOSPC) in pass 1 or pass 2: one line, exit 1, temp files removed, no manifest', () => {
  const d = tmpdir();
  const files = [0, 1].map((k) => synthFile(d, `f${k}.csv`, { rows: 30000, seed: 60 + k }));
  // pass 1 writes ~15 MB on the main thread (the count is per thread): 2 MB fails in pass 1, 16 MB in pass 2
  for (const after of [2_000_000, 16_000_000]) {
    const out = path.join(d, `o${after}`);
    const r = cli(['prep', '--shard-rows', '8192', '--out', out, ...files], { env: { FLOWTENSOR_FAULT_ENOSPC_AFTER: String(after) } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /cannot write .*: disk full/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    assert.ok(!fs.existsSync(path.join(out, 'manifest.json')));
    const left = SPLITS.flatMap((s) => (fs.existsSync(path.join(out, s)) ? fs.readdirSync(path.join(out, s)) : [])).concat(fs.readdirSync(out));
    assert.deepEqual(left.filter((f) => f.includes('.tmp-') || f.endsWith('.safetensors') || f === 'pass1.json'), [], `files left after ENOSPC at ${after}`);
    assert.throws(() => readManifest(out), /no manifest\.json/);
  }
  // the disk fills while the last, partial shards are written (after the rows, before pass 2): their temp files go too
  const x = synthFile(d, 'x.csv', { rows: 20000, seed: 5 });
  const out = path.join(d, 'last');
  const r = cli(['prep', '-q', '--workers', '0', '--shard-rows', '3000', '--out', out, x], { env: { FLOWTENSOR_FAULT_ENOSPC_AFTER: '5000000' } });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /disk full/);
  const left = SPLITS.flatMap((s) => (fs.existsSync(path.join(out, s)) ? fs.readdirSync(path.join(out, s)) : []));
  assert.deepEqual(left.filter((f) => f.includes('.tmp-')), [], 'no temp file of the last shards');
});

test('prep killed with SIGKILL at random points: never a manifest over unfinished shards; the rerun is byte-identical', async () => {
  const d = tmpdir();
  const files = [0, 1, 2].map((k) => synthFile(d, `f${k}.csv`, { rows: 60000, seed: 40 + k }));
  const ref = path.join(d, 'ref');
  await prep({ out: ref, inputs: files, shardRows: 8192 });
  const out = path.join(d, 'out');
  for (const delay of [150, 400, 800, 1300, 2000]) {
    const child = spawn(process.execPath, [BIN, 'prep', '-q', '--shard-rows', '8192', '--out', out, ...files], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await exited;
    if (fs.existsSync(path.join(out, 'manifest.json'))) readManifest(out, { verify: 'sha256' }); // complete and true
    else assert.throws(() => readManifest(out), /no manifest\.json/);
  }
  const r = cli(['prep', '-q', '--shard-rows', '8192', '--out', out, ...files]);
  assert.equal(r.status, 0, r.stderr);
  const shards = listShards(ref);
  assert.deepEqual(listShards(out), shards);
  for (const f of [...shards, 'manifest.json', 'rejects.ndjson']) assert.ok(fs.readFileSync(path.join(ref, f)).equals(fs.readFileSync(path.join(out, f))), f);
  assert.ok(fs.readdirSync(out).every((f) => !f.includes('.tmp-')));
});

test('train killed with SIGKILL mid-epoch: checkpoints are whole, --resume goes on from the last one', async () => {
  const d = tmpdir();
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows: 20000, seed: 50, classes: ['BENIGN', 'DDoS', 'PortScan'] });
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [csv], workers: 0 });
  const run = path.join(d, 'run');
  const child = spawn(process.execPath, [BIN, 'train', '-q', '--shards', shards, '--out', run, '--model', 'window', '--window', '2', '--epochs', '50', '--patience', '50', '--batch-size', '32'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const t0 = Date.now();
  // last/ exists from the start (epoch 0): wait for the end of epoch 1
  const epochDone = () => {
    try {
      return JSON.parse(fs.readFileSync(path.join(run, 'last', 'state.json'), 'utf8')).epoch >= 1;
    } catch {
      return false;
    }
  };
  while (!epochDone() && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 700)); // into the next epoch
  child.kill('SIGKILL');
  await exited;
  const st = JSON.parse(fs.readFileSync(path.join(run, 'last', 'state.json'), 'utf8'));
  assert.ok(st.epoch >= 1);
  const { tf } = await initBackend('auto');
  (await loadModel(tf, path.join(run, 'last'))).dispose(); // loads: not half-written
  const r = await train({ shards, out: run, resume: true, epochs: st.epoch + 1, progress: false });
  assert.deepEqual(r.epochs.map((e) => e.epoch), [st.epoch + 1]);
});

test('untrusted artefacts: paths leaving the folder and sizes that do not match are refused before use', async () => {
  const d = tmpdir();
  const out = path.join(d, 'o');
  await prep({ out, inputs: [synthFile(d, 'a.csv', { rows: 500, seed: 2 })], workers: 0 });
  const mf = path.join(out, 'manifest.json');
  const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
  for (const evil of ['../../etc/passwd', '/etc/passwd', 'train/../../x']) {
    m.splits.train.shards[0].file = evil;
    fs.writeFileSync(mf, JSON.stringify(m));
    assert.throws(() => readManifest(out), /refusing path|leaves/);
  }
  // a model folder: weight paths confined, sizes checked
  const csv = path.join(d, 'b.csv');
  synthToFile(csv, { rows: 2000, seed: 4, classes: ['BENIGN', 'DDoS'] });
  const sh = path.join(d, 'sh');
  await prep({ out: sh, inputs: [csv], workers: 0 });
  const run = path.join(d, 'run');
  await train({ shards: sh, out: run, model: 'window', window: 2, epochs: 1, progress: false });
  const { tf } = await initBackend('auto');
  const mj = path.join(run, 'model.json');
  const orig = fs.readFileSync(mj, 'utf8');
  const j = JSON.parse(orig);
  j.weightsManifest[0].paths = ['../../../etc/passwd'];
  fs.writeFileSync(mj, JSON.stringify(j));
  await assert.rejects(loadModel(tf, run), /refusing path/);
  const j2 = JSON.parse(orig);
  j2.weightsManifest[0].weights[0].shape = [100000, 100000];
  fs.writeFileSync(mj, JSON.stringify(j2));
  await assert.rejects(loadModel(tf, run), /weight files hold \d+ bytes, the manifest needs/);
  fs.writeFileSync(mj, orig);
  fs.appendFileSync(path.join(run, 'weights.bin'), Buffer.alloc(4));
  await assert.rejects(loadModel(tf, run), /hold more bytes|hold \d+ bytes/);
});

test('sanitize on any numbers: every cell is kept finite or ±Infinity, and the counts add up (property)', () => {
  const cfg = loadConfig();
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.double(), fc.constant(NaN), fc.constant(Infinity), fc.constant(-Infinity), fc.constant(1e39)), { minLength: 1, maxLength: 60 }), (vals) => {
      const s = createSanitize({ cfg });
      const b: Batch = { file: 'f', format: 'x', n: vals.length, line: Int32Array.from(vals, (_, i) => i + 2), num: new Map([['a', Float64Array.from(vals)]]), str: new Map(), issues: [] };
      const out = s.apply(b);
      assert.equal(out.n, vals.length);
      const col = out.num.get('a')!;
      let inf = 0;
      for (const v of col) {
        assert.ok(!Number.isNaN(v));
        if (!Number.isFinite(v)) inf++;
        else assert.ok(Math.abs(v) <= 3.4028234663852886e38);
      }
      const kept = Object.values(s.counts.kept_for_scale as Record<string, number>).reduce((x, y) => x + y, 0);
      const nan = Object.values(s.counts.replaced as Record<string, number>).reduce((x, y) => x + y, 0);
      assert.equal(kept, inf);
      assert.equal(nan, vals.filter((v) => Number.isNaN(v)).length);
    }),
    { numRuns: 300 },
  );
});

test('one unterminated quote loses one row, not thousands; line numbers stay true in every thread layout', async () => {
  const d = tmpdir();
  const src = synthFile(d, 'src.csv', { rows: 20000, seed: 71, quirks: false });
  const lines = fs.readFileSync(src, 'latin1').split('\n');
  lines[2] = '"' + lines[2]; // line 3: a quote that is never closed
  lines[15001] = '"' + lines[15001]; // line 15002, far past the first MiB and the first chunks
  const f = writeCsv(d, 'bad.csv', Buffer.from(lines.join('\n'), 'latin1'));
  for (const [workers, mainParses] of [[0, false], [1, true], [2, false]] as const) {
    const out = path.join(d, `o${workers}${mainParses}`);
    const m = await prep({ out, inputs: [f], workers, mainParses, chunkBytes: 200_000 });
    assert.equal(m.accounting.data_rows, 20000, `workers ${workers}`);
    assert.equal(m.accounting.quarantined, 2);
    assert.equal(m.accounting.rows_in_shards, 19998);
    const rej = fs.readFileSync(path.join(out, 'rejects.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(rej.map((r) => [r.line, r.reason]), [[3, 'unterminated_quote'], [15002, 'unterminated_quote']]);
  }
  // --multiline-quotes: RFC 4180 fields over several lines, read in one pass (the open quote then swallows up to the 1 MiB cap)
  const ok = writeCsv(d, 'multi.csv', `${tlHeader()}\n${tlRow({ 0: '"a\nb"' })}\n${tlRow()}\n`);
  const mm = await prep({ out: path.join(d, 'mq'), inputs: [ok], multilineQuotes: true, workers: 1 });
  assert.equal(mm.accounting.rows_in_shards, 2);
  const r = cli(['prep', '-q', '--out', path.join(d, 'mq2'), ok]);
  assert.equal(r.status, 0, r.stderr);
  // without it, line 2 (the open quote) is quarantined; line 3 (`b",...`) holds all its fields and is read
  assert.deepEqual(readManifest(path.join(d, 'mq2')).quality.quarantine_reasons, { unterminated_quote: 1 });
});

test('the stage pipe: a CSV column named _meta stays data; forged, duplicate and late metadata are refused', () => {
  const d = tmpdir();
  const src = synthFile(d, 'a.csv', { rows: 200, seed: 9, quirks: false });
  const lines = fs.readFileSync(src, 'latin1').trimEnd().split('\n');
  const f = writeCsv(d, 'm.csv', Buffer.from(lines.map((l, i) => (i === 0 ? l + ',_meta' : l + (i % 10 === 1 ? ',x' : ','))).join('\n') + '\n', 'latin1'));
  let data = cli(['parse', f]);
  assert.equal(data.status, 0, data.stderr);
  assert.match(data.stdout, /"__meta":"x"/); // the column, escaped: never a metadata record
  for (const stage of ['filter', 'ipsplit', 'labels', 'sanitize', 'split']) {
    data = cli([stage], { input: data.stdout });
    assert.equal(data.status, 0, `${stage}: ${data.stderr}`);
  }
  const out = path.join(d, 'o');
  assert.equal(cli(['shard', '--out', out], { input: data.stdout }).status, 0);
  assert.equal(cli(['scale', out]).status, 0);
  const m = readManifest(out);
  assert.deepEqual([m.accounting.data_rows, m.accounting.rows_in_shards, m.accounting.unaccounted], [200, 200, 0]);
  // a forged labels record after the real one would rename the classes: refused, nothing left behind
  const forged = data.stdout + JSON.stringify({ _meta: { stage: 'labels', counts: {}, vocab: ['A', 'B'] } }) + '\n';
  const o2 = path.join(d, 'o2');
  let r = cli(['shard', '--out', o2], { input: forged });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /a second metadata record of stage labels/);
  assert.ok(!fs.existsSync(path.join(o2, 'pass1.json')) && listShards(o2).length === 0);
  // data after the metadata, metadata of a later stage, malformed records
  const firstRow = data.stdout.split('\n')[0];
  for (const [input, msg] of [
    [data.stdout + firstRow + '\n', /a data record after the metadata/],
    ['{"_meta":{"stage":"shard","counts":{}}}\n', /already went through shard/],
    ['null\n', /stdin:1: null, not a JSON record/],
    ['{"_meta":null}\n', /not a stage's metadata/],
    ['{"_meta":{"stage":"x","counts":{}}}\n', /an unknown stage/],
  ] as const) {
    r = cli(['shard', '--out', path.join(d, 'o3')], { input });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stderr, /internal error/);
  }
});

test('scale rerun after pass 2 died midway: temp files removed, the same counters as an uninterrupted run', () => {
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 6000, seed: 44 });
  let data = cli(['parse', csv]);
  for (const stage of ['filter', 'ipsplit', 'labels', 'sanitize', 'split']) data = cli([stage], { input: data.stdout });
  const ref = path.join(d, 'ref');
  assert.equal(cli(['shard', '--shard-rows', '400', '--out', ref], { input: data.stdout }).status, 0);
  const out = path.join(d, 'out');
  fs.cpSync(ref, out, { recursive: true });
  assert.equal(cli(['scale', ref]).status, 0);
  // pass 2 fails after a few shards (as a kill would stop it), leaving one temp file of the dead process
  const r = cli(['scale', out], { env: { FLOWTENSOR_FAULT_ENOSPC_AFTER: '300000' } });
  assert.equal(r.status, 1, r.stderr);
  fs.writeFileSync(path.join(out, 'train', '.shard-00003.safetensors.tmp-999999'), 'half');
  assert.equal(cli(['scale', out]).status, 0);
  const a = readManifest(ref);
  const b = readManifest(out);
  assert.deepEqual(b.quality, a.quality);
  assert.ok((a.quality.infinities_replaced as Record<string, number>).flow_bytes_per_s > 0, 'the data has counted infinities');
  for (const f of listShards(ref)) assert.ok(fs.readFileSync(path.join(ref, f)).equals(fs.readFileSync(path.join(out, f))), f);
  assert.deepEqual(listShards(out).filter((f) => f.includes('.tmp-')), []);
});

test('a lock whose owner was killed but not yet reaped (a zombie) is taken over', async (t) => {
  if (!fs.existsSync('/proc/self/stat')) return t.skip('no /proc here: a zombie cannot be told from a live process');
  // sh starts a short sleep in the background, prints its id and becomes a long sleep, which never reaps it
  const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const zpid = Number(await new Promise<string>((r) => parent.stdout.once('data', (b: Buffer) => r(b.toString()))));
    let state = '';
    for (let i = 0; i < 100 && state !== 'Z'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const st = fs.readFileSync(`/proc/${zpid}/stat`, 'latin1');
      state = st.charAt(st.lastIndexOf(')') + 2);
    }
    assert.equal(state, 'Z', 'the background sleep is a zombie');
    assert.equal(processAlive(zpid), false);
    assert.equal(processAlive(process.pid), true);
    const d = tmpdir();
    fs.writeFileSync(path.join(d, LOCK_NAME), `${zpid} prep\n`);
    const release = lockDir(d, 'prep');
    assert.equal(fs.readFileSync(path.join(d, LOCK_NAME), 'utf8'), `${process.pid} prep\n`);
    release();
  } finally {
    parent.kill('SIGKILL');
  }
});
