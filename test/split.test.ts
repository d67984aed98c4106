import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { prep } from '../src/prep.js';
import { CsvBatchParser } from '../stages/parse.js';
import { createKeys, type SplitBy } from '../stages/keys.js';
import { createSplit, rowHashes, toRowMajor } from '../stages/split.js';
import { createFilter } from '../stages/filter.js';
import { loadConfig } from '../src/config.js';
import { rng } from '../src/synth.js';
import { SPLITS, type Batch } from '../src/batch.js';
import { cli, synthFile, tmpdir } from './helpers.js';

const cfg = loadConfig('cicids2017');

/** Parse a CSV whole into batches with every column (the keys need the identifiers). */
function parseAll(file: string): Batch[] {
  const p = new CsvBatchParser({ file, cfg, want: null, batchSize: 512 });
  return [...p.push(fs.readFileSync(file)), ...p.end()];
}

/** Each row's split under a mode, the rows in the given order; keyed by the row's line. */
function assign(batches: Batch[], mode: SplitBy, order: number[]): { split: Map<number, number>; key: Map<number, string> } {
  const keys = createKeys({ splitBy: mode });
  const filter = createFilter({ cfg });
  const names = filter.columns.filter((c) => !cfg.ip_columns.includes(c));
  const rows: { line: number; x: Float32Array; g: Uint32Array; label: number }[] = [];
  for (const b of batches) {
    const k = keys.apply(b);
    const x = toRowMajor(b, names);
    for (let i = 0; i < b.n; i++) rows.push({ line: b.line[i], x: x.slice(i * names.length, (i + 1) * names.length), g: k.keys!.group!.slice(2 * i, 2 * i + 2), label: 0 });
  }
  const s = createSplit({ ratios: { train: 70, val: 15, test: 15 }, grouped: true });
  const split = new Map<number, number>();
  const key = new Map<number, string>();
  for (const at of order) {
    const r = rows[at];
    const label = new Int32Array([r.label]);
    const res = s.assignHashed(rowHashes(r.x, names.length, 1, label), 1, label, r.g);
    split.set(r.line, res.split[0]);
    key.set(r.line, `${r.g[0]}:${r.g[1]}`);
  }
  return { split, key };
}

test('--split-by connection and host: every group in one split, whatever the row order; both directions of a connection are one group', () => {
  const d = tmpdir();
  const f = synthFile(d, 'a.csv', { rows: 4000, seed: 31, ipv6: 0.05 });
  // add the reverse direction of some flows: same connection, endpoints swapped
  const lines = fs.readFileSync(f, 'latin1').split('\n');
  const extra: string[] = [];
  for (let i = 1; i < 200; i += 7) {
    const c = lines[i].split(',');
    if (c.length !== 85) continue;
    [c[1], c[3]] = [c[3], c[1]];
    [c[2], c[4]] = [c[4], c[2]];
    extra.push(c.join(','));
  }
  fs.writeFileSync(f, Buffer.from([...lines.slice(0, -1), ...extra, lines[lines.length - 1]].join('\n'), 'latin1'));
  const batches = parseAll(f);
  const n = batches.reduce((a, b) => a + b.n, 0);
  const forward = [...Array(n).keys()];
  const r = rng(5);
  const shuffled = [...forward].sort(() => r() - 0.5);
  for (const mode of ['connection', 'host'] as const) {
    const a = assign(batches, mode, forward);
    const b = assign(batches, mode, shuffled);
    assert.deepEqual([...b.split].sort((x, y) => x[0] - y[0]), [...a.split].sort((x, y) => x[0] - y[0]), `${mode}: order-free`);
    const bySplit = new Map<string, Set<number>>();
    for (const [line, k] of a.key) (bySplit.get(k) ?? bySplit.set(k, new Set()).get(k)!).add(a.split.get(line)!);
    for (const [k, s] of bySplit) assert.equal(s.size, 1, `${mode}: group ${k} spans splits ${[...s]}`);
    const groups = bySplit.size;
    assert.ok(groups > 3, `${mode}: ${groups} groups`);
    const used = new Set(a.split.values());
    assert.equal(used.size, 3, `${mode}: all three splits used`);
  }
  // the reversed copies share their original's connection key
  const a = assign(batches, 'connection', forward);
  const lineOf = (text: string) => lines.indexOf(text) + 1;
  let checked = 0;
  for (let i = 1; i < 200; i += 7) {
    const c = lines[i].split(',');
    if (c.length !== 85) continue;
    [c[1], c[3]] = [c[3], c[1]];
    [c[2], c[4]] = [c[4], c[2]];
    const revLine = lines.length - 1 + extra.indexOf(c.join(',')) + 1;
    assert.equal(a.key.get(revLine), a.key.get(lineOf(lines[i])), `line ${i + 1} and its reverse`);
    checked++;
  }
  assert.ok(checked > 20);
});

test('--split-by connection in prep: byte-identical whatever the file order or threads; no row moved for the per-class minimum', async () => {
  const d = tmpdir();
  const files = [synthFile(d, 'x.csv', { rows: 5000, seed: 41 }), synthFile(d, 'y.csv', { rows: 3000, seed: 42, ipv6: 0.1 })];
  const o1 = path.join(d, 'o1');
  const o2 = path.join(d, 'o2');
  const m1 = await prep({ out: o1, inputs: files, splitBy: 'connection', workers: 0, dedupe: true });
  await prep({ out: o2, inputs: [...files].reverse(), splitBy: 'connection', workers: 2, chunkBytes: 300_000, dedupe: true });
  assert.ok(fs.readFileSync(path.join(o1, 'manifest.json')).equals(fs.readFileSync(path.join(o2, 'manifest.json'))));
  for (const s of SPLITS) for (const sh of m1.splits[s].shards) assert.ok(fs.readFileSync(path.join(o1, sh.file)).equals(fs.readFileSync(path.join(o2, sh.file))), sh.file);
  assert.equal(m1.options.split_by, 'connection');
  const k = m1.stages.keys as Record<string, number>;
  assert.equal(k.grouped, m1.accounting.data_rows);
});

test('--split-by file: whole files to splits by ratio (order-free) or by --test-files; a mode without its identifiers is refused', async () => {
  const d = tmpdir();
  const files = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'].map((n, k) => synthFile(d, `${n}.csv`, { rows: 800 + 100 * k, seed: 50 + k }));
  const m = await prep({ out: path.join(d, 'f1'), inputs: files, splitBy: 'file', workers: 0 });
  const fs1 = m.options.file_splits as Record<string, string>;
  assert.deepEqual(Object.keys(fs1).sort(), files.map((f) => path.basename(f)).sort());
  assert.ok(new Set(Object.values(fs1)).has('train'));
  // each split holds exactly its files' rows
  for (const s of SPLITS) {
    const want = files.filter((f) => fs1[path.basename(f)] === s).reduce((a, f) => a + (fs.readFileSync(f, 'latin1').split('\n').length - 1 - 5), 0);
    assert.equal(m.splits[s].rows, want, s);
  }
  const m2 = await prep({ out: path.join(d, 'f2'), inputs: [...files].reverse(), splitBy: 'file', workers: 1 });
  assert.deepEqual(m2.options.file_splits, fs1);
  const m3 = await prep({ out: path.join(d, 'f3'), inputs: files, splitBy: 'file', testFiles: ['fri*', 'sat.csv'], workers: 0 });
  const fs3 = m3.options.file_splits as Record<string, string>;
  assert.equal(fs3['fri.csv'], 'test');
  assert.equal(fs3['sat.csv'], 'test');
  assert.ok(Object.entries(fs3).filter(([f]) => !['fri.csv', 'sat.csv'].includes(f)).every(([, s]) => s !== 'test'));
  const r = cli(['prep', '--out', path.join(d, 'x'), '--split-by', 'file', '--test-files', 'nope*', ...files]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--test-files nope\*: matches none/);
  const mlc = synthFile(d, 'mlc.csv', { rows: 100, seed: 3, layout: 'machinelearningcve' });
  const r2 = cli(['prep', '--out', path.join(d, 'y'), '--split-by', 'connection', '--allow-missing-features', mlc]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /--split-by connection needs source_ip, source_port, destination_ip, destination_port, protocol \(or Flow ID\) in every input; mlc\.csv \(machinelearningcve\) has none/);
});
