// bin/flowtensor-dask (docs/SCALE.md): partitioned prep on a local Dask cluster gives what one-machine
// prep gives, with a task of each step killed midway and retried by Dask; its mistakes exit 2 in one line.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readManifest, type Manifest } from '../src/manifest.js';
import { BIN, ROOT, splitRows, synthFile, tmpdir } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const DASK_BIN = path.join(ROOT, 'bin', 'flowtensor-dask');
const NO_DASK = 'python3-distributed not installed: apt-get install python3-distributed';

function haveDask(): boolean {
  return spawnSync(PYTHON, ['-c', 'import distributed'], { encoding: 'utf8' }).status === 0;
}

function daskCli(args: string[], env: Record<string, string> = {}, cwd?: string) {
  return spawnSync(PYTHON, [DASK_BIN, ...args], {
    cwd,
    encoding: 'utf8',
    // the node running this test runs the tasks too
    env: { ...process.env, FLOWTENSOR_NODE: process.execPath, FLOWTENSOR_LOG_LEVEL: 'warn', ...env },
    maxBuffer: 1 << 26,
    timeout: 300_000,
  });
}

/** The manifest without what names files (shard lists). */
function manifestStats(m: Manifest): unknown {
  const { splits, ...rest } = m;
  return { ...rest, splits: Object.fromEntries(Object.entries(splits).map(([k, v]) => [k, { rows: v.rows, class_counts: v.class_counts }])) };
}

test('flowtensor-dask prep --scheduler local:2 --partitions 4 --dedupe equals one-machine prep (a task of analyze and of scale killed midway and retried)', async (t) => {
  if (!haveDask()) return t.skip(NO_DASK);
  const d = tmpdir();
  const a = synthFile(d, 'a.csv', { rows: 3000, seed: 41, ipv6: 0.05 });
  const b = synthFile(d, 'b.csv', { rows: 2000, seed: 42 });
  // c.csv repeats rows of a.csv: duplicates across files, so across partitions (global dedupe)
  const lines = fs.readFileSync(a, 'utf8').split('\n');
  const c = path.join(d, 'c.csv');
  fs.writeFileSync(c, [lines[0], ...lines.slice(100, 700)].join('\n') + '\n');
  // both run in d with the same relative names: the manifests name the inputs alike
  const files = [a, b, c].map((f) => path.basename(f));
  const ref = path.join(d, 'ref');
  const one = spawnSync(process.execPath, [BIN, 'prep', '-q', '--workers', '0', '--dedupe', '--out', 'ref', ...files], { cwd: d, encoding: 'utf8' });
  assert.equal(one.status, 0, one.stderr);
  const out = path.join(d, 'dask');
  const r = daskCli(['prep', '--scheduler', 'local:2', '--partitions', '4', '--merge-fanin', '2', '--dedupe', '--out', 'dask', ...files], { FLOWTENSOR_DASK_FAULT: 'analyze:1,scale:2' }, d);
  assert.equal(r.status, 0, r.stderr);

  const mr = readManifest(ref, { verify: 'sha256' });
  const md = readManifest(out, { verify: 'sha256' });
  assert.ok(md.splits.train.shards.some((s) => /part-00003-/.test(s.file)), 'four partitions wrote shards');
  assert.ok(md.accounting.deduplicated > 0, 'the input has duplicates to drop');
  // statistics: scaler, counts, accounting, quality, rows and class counts per split
  assert.deepEqual(manifestStats(md), manifestStats(mr));
  const x = splitRows(ref, mr);
  const y = splitRows(out, md);
  for (const sp of Object.keys(x)) {
    assert.ok(y[sp].y.equals(x[sp].y), `${sp}: labels differ`);
    assert.ok(y[sp].x.equals(x[sp].x), `${sp}: features differ`);
  }
  assert.ok(fs.readFileSync(path.join(ref, 'rejects.ndjson')).equals(fs.readFileSync(path.join(out, 'rejects.ndjson'))), 'rejects differ');
  assert.ok(!fs.existsSync(path.join(out, 'parts')), 'parts/ removed after the manifest');
  for (const sub of ['', 'train', 'val', 'test']) assert.deepEqual(fs.readdirSync(path.join(out, sub)).filter((f) => f.startsWith('.')), [], `${sub}: no lock, temp or fault file left`);
  assert.equal((md.sources[0] as { file: string }).file, 'a.csv');

  // progress: JSON lines on stderr (not a terminal), one per finished task; the summary on stdout
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
  const done = (step: string) => events.filter((e) => e.event === 'task' && e.step === step);
  assert.deepEqual(done('analyze').map((e) => e.partition).sort(), [0, 1, 2, 3]);
  assert.deepEqual(done('scale').map((e) => e.partition).sort(), [0, 1, 2, 3]);
  assert.equal(done('merge').length, 3, 'a tree of two-way merges');
  assert.equal(done('finish').length, 1);
  // partitions drop their own duplicates; the merge drops copies across partitions
  const analyzed = done('analyze').reduce((s, e) => s + e.rows, 0);
  assert.ok(analyzed > mr.accounting.rows_in_shards && analyzed <= mr.accounting.rows_in_shards + mr.accounting.deduplicated, `${analyzed} rows analysed`);
  // the injected faults did kill their task midway (else this test would not test retries)
  assert.deepEqual(events.filter((e) => e.event === 'fault injected').map((e) => `${e.task} ${e.outcome}`), ['analyze:1 killed', 'scale:2 killed']);
  const total = mr.splits.train.rows + mr.splits.val.rows + mr.splits.test.rows;
  assert.match(r.stdout, new RegExp(`${total.toLocaleString('en-US')} rows in shards .* rows/s: 4 partitions on 2 workers`, 's'));
});

test('flowtensor-dask: a failed task names its partition and its stderr (exit 1); mistakes exit 2 in one line', async (t) => {
  if (!haveDask()) return t.skip(NO_DASK);
  const d = tmpdir();
  const a = synthFile(d, 'a.csv', { rows: 1500, seed: 43 });
  const out = path.join(d, 'o');
  const bad: [string[], RegExp][] = [
    [['prep', '--scheduler', 'bogus', '--partitions', '4', '--out', out, a], /--scheduler bogus: give local:N or tcp:\/\/HOST:PORT/],
    [['prep', '--scheduler', 'local:0', '--partitions', '4', '--out', out, a], /local:N/],
    [['prep', '--scheduler', 'local:2', '--partitions', 'x', '--out', out, a], /--partitions x/],
    [['prep', '--scheduler', 'local:2', '--partitions', '2', '--out', out, path.join(d, 'missing.csv')], /missing\.csv: no such file/],
    [['prep', '--scheduler', 'local:2', '--partitions', '2', '--analyze', '--out', out, a], /--analyze/],
    [['prep', '--scheduler', 'local:2', '--out', out, a], /--partitions/],
    [['train', '--scheduler', 'local:2'], /unknown command/],
  ];
  for (const [args, re] of bad) {
    const r = daskCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^flowtensor-dask: /);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /Traceback/);
  }
  // a user mistake the flowtensor CLI finds on the cluster: exit 2, its line
  let r = daskCli(['prep', '--scheduler', 'local:1', '--partitions', '2', '--split-by', 'connection', '--dedupe', '--out', out, a]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^flowtensor-dask: analyze partition \d\/2: .*needs one partition/);
  // a task that fails every try: exit 1, the partition and the tail of its stderr
  r = daskCli(['prep', '--scheduler', 'local:1', '--partitions', '2', '--retries', '0', '--out', path.join(d, 'o2'), a], { FLOWTENSOR_DASK_FAULT: 'analyze:1' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /flowtensor-dask: analyze partition 1\/2 failed \(killed by signal 9 \(FLOWTENSOR_DASK_FAULT\), on tcp:\/\//);
  assert.doesNotMatch(r.stderr, /Traceback/);
});
