// Partitioned prep (analyze -> merge -> transform): any partitioning and any tree of merges give the
// statistics, rows per split and class, and shard contents of one-machine prep.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { prep, prepAnalyze, type PrepOptions } from '../src/prep.js';
import { mergeAll } from '../src/mergestats.js';
import { finish, scalePartition } from '../src/transform.js';
import { finalize, partStatsFile, readStats, type FpTable, type PartStats } from '../src/stats.js';
import { readManifest, type Manifest } from '../src/manifest.js';
import { readSafetensors } from '../src/safetensors.js';
import { cli, synthFile, tmpdir } from './helpers.js';

/** Every split's rows in manifest order: features and labels as bytes. */
export function splitData(dir: string, m: Manifest): Record<string, { x: Buffer; y: Buffer }> {
  const out: Record<string, { x: Buffer; y: Buffer }> = {};
  for (const sp of ['train', 'val', 'test'] as const) {
    const xs: Buffer[] = [];
    const ys: Buffer[] = [];
    for (const sh of m.splits[sp].shards) {
      const st = readSafetensors(path.join(dir, sh.file));
      const x = st.get('features') as Float32Array;
      const y = st.get('labels') as Int32Array;
      xs.push(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
      ys.push(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    }
    out[sp] = { x: Buffer.concat(xs), y: Buffer.concat(ys) };
  }
  return out;
}

/** The manifest without what names files (shard lists): statistics, counts, quality, options. */
export function manifestStats(m: Manifest): unknown {
  const { splits, ...rest } = m;
  return { ...rest, splits: Object.fromEntries(Object.entries(splits).map(([k, v]) => [k, { rows: v.rows, class_counts: v.class_counts }])) };
}

export function assertSameData(a: string, b: string): void {
  const ma = readManifest(a, { verify: 'sha256' });
  const mb = readManifest(b, { verify: 'sha256' });
  assert.deepEqual(manifestStats(mb), manifestStats(ma));
  const da = splitData(a, ma);
  const db = splitData(b, mb);
  for (const sp of Object.keys(da)) {
    assert.ok(da[sp].y.equals(db[sp].y), `${sp}: labels differ`);
    assert.ok(da[sp].x.equals(db[sp].x), `${sp}: features differ`);
  }
  assert.ok(fs.readFileSync(path.join(a, 'rejects.ndjson')).equals(fs.readFileSync(path.join(b, 'rejects.ndjson'))), 'rejects differ');
}

type State = { s: PartStats; fp: FpTable | null };

/** Merge in the order of a random binary tree over a random permutation. */
function treeMerge(list: State[], dir: string, order: number[], cuts: number[]): State {
  let items = order.map((i) => list[i]);
  let c = 0;
  while (items.length > 1) {
    const at = cuts[c++ % cuts.length] % (items.length - 1);
    items = [...items.slice(0, at), mergeAll([items[at], items[at + 1]], dir), ...items.slice(at + 2)];
  }
  return items[0];
}

/** Analyze every partition, merge them in a tree, scale them in a shuffled order, finish. */
async function partitioned(out: string, o: Omit<PrepOptions, 'out'>, n: number, order: number[], cuts: number[]): Promise<State> {
  for (let k = 0; k < n; k++) await prepAnalyze({ ...o, out, partition: { k, n } });
  const states = Array.from({ length: n }, (_, k) => readStats(n > 1 ? partStatsFile(out, k) : path.join(out, 'pass1.json')));
  const merged = treeMerge(states, out, order, cuts);
  const fin = finalize(merged.s);
  const parts = [];
  for (const k of [...order].reverse()) parts.push(await scalePartition({ dir: out, s: merged.s, fp: merged.fp, fin, k, pool: [] }));
  finish({ dir: out, s: merged.s, fin, parts, hostContext: merged.s.options.row_context === 'host' });
  return merged;
}

function inputs(d: string): string[] {
  const a = synthFile(d, 'a.csv', { rows: 2500, seed: 21, ipv6: 0.05 });
  const b = synthFile(d, 'b.csv', { rows: 1500, seed: 22 });
  // exact duplicates inside and across files (and so across partitions)
  const lines = fs.readFileSync(b, 'utf8').trimEnd().split('\n');
  fs.writeFileSync(path.join(d, 'c.csv'), [...lines, ...lines.slice(1, 700), ...fs.readFileSync(a, 'utf8').trimEnd().split('\n').slice(1, 400)].join('\n') + '\n');
  return [a, b, path.join(d, 'c.csv')];
}

test('any partitioning and any tree of merges give one-machine prep: statistics, rows per split and class, shard values, rejects (property)', async () => {
  const d = tmpdir();
  const files = inputs(d);
  const refs = new Map<string, string>();
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 5 }),
      fc.boolean(),
      fc.constantFrom('log-standard', 'minmax') as fc.Arbitrary<'log-standard' | 'minmax'>,
      fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
      fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
      async (n, dedupe, scaler, perm, cuts) => {
        const o = { inputs: files, dedupe, scaler, workers: 0, shardRows: 700, chunkBytes: 150_000 };
        const key = `${dedupe}-${scaler}`;
        if (!refs.has(key)) {
          const ref = path.join(d, `ref-${key}`);
          await prep({ ...o, out: ref, chunkBytes: undefined });
          refs.set(key, ref);
        }
        const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => (perm[x] ?? 0) - (perm[y] ?? 0) || x - y);
        const out = path.join(d, `p${run++}`);
        await partitioned(out, o, n, order, cuts);
        assertSameData(refs.get(key)!, out);
      },
    ),
    { numRuns: 10, seed: 7 },
  );
});

test('merged statistics are the same file whatever the order and tree of the merge', async () => {
  const d = tmpdir();
  const files = inputs(d);
  const out = path.join(d, 'p');
  const n = 5;
  for (let k = 0; k < n; k++) await prepAnalyze({ inputs: files, dedupe: true, workers: 0, shardRows: 700, out, partition: { k, n } });
  const states = Array.from({ length: n }, (_, k) => readStats(partStatsFile(out, k)));
  const canon = (x: State) => JSON.stringify(x.s) + Buffer.from(x.fp!.entries.buffer).toString('hex') + Buffer.from(x.fp!.drops.buffer).toString('hex');
  const want = canon(mergeAll(states, out));
  assert.ok(mergeAll(states, out).fp!.drops.length > 0, 'the input has duplicates across partitions');
  fc.assert(
    fc.property(fc.array(fc.nat(), { minLength: n, maxLength: n }), fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (perm, cuts) => {
      const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => perm[x] - perm[y] || x - y);
      assert.equal(canon(treeMerge(states, out, order, cuts)), want);
    }),
    { numRuns: 30, seed: 3 },
  );
  // a partition twice, or statistics of another plan, are refused
  assert.throws(() => mergeAll([states[0], states[0]], out), /partition 0 is in both/);
  const other = path.join(d, 'q');
  await prepAnalyze({ inputs: files.slice(0, 2), dedupe: true, workers: 0, out: other, partition: { k: 1, n } });
  assert.throws(() => mergeAll([states[0], readStats(partStatsFile(other, 1))], out), /differ in plan/);
  // statistics that miss a partition cannot be finalized
  assert.throws(() => finalize(mergeAll(states.slice(0, 3), out).s), /cover 3 of 5 partitions/);
});

test('--split-by connection over partitions equals one machine; --dedupe with a group split over partitions is refused', async () => {
  const d = tmpdir();
  const files = inputs(d).slice(0, 2);
  const ref = path.join(d, 'ref');
  await prep({ inputs: files, splitBy: 'connection', workers: 0, out: ref });
  const out = path.join(d, 'p');
  await partitioned(out, { inputs: files, splitBy: 'connection', workers: 0, chunkBytes: 100_000 }, 3, [2, 0, 1], [1]);
  assertSameData(ref, out);
  await assert.rejects(prepAnalyze({ inputs: files, splitBy: 'connection', dedupe: true, workers: 0, out: path.join(d, 'x'), partition: { k: 0, n: 2 } }), /needs one partition/);
});

test('the partitioned CLI: analyze, merge-stats, scale --partition (twice: a retried task), scale --finish', async () => {
  const d = tmpdir();
  const files = inputs(d);
  const ref = path.join(d, 'ref');
  await prep({ inputs: files, dedupe: true, out: ref, workers: 0 });
  const out = path.join(d, 'p');
  const n = 3;
  for (let k = 0; k < n; k++) {
    const r = cli(['prep', '-q', '--analyze', '--partition', `${k}/${n}`, '--dedupe', '--out', out, ...files]);
    assert.equal(r.status, 0, r.stderr);
  }
  const stats = [0, 1, 2].map((k) => partStatsFile(out, k));
  const merged = path.join(out, 'parts', 'merged.json');
  let r = cli(['merge-stats', '-q', '--out', merged, ...stats]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /3 of 3 partitions/);
  for (const k of [2, 0, 1, 0]) {
    r = cli(['scale', '-q', out, '--stats', merged, '--partition', `${k}/${n}`]);
    assert.equal(r.status, 0, r.stderr);
  }
  r = cli(['scale', '-q', out, '--stats', merged, '--finish']);
  assert.equal(r.status, 0, r.stderr);
  assertSameData(ref, out);
  assert.ok(!fs.existsSync(path.join(out, 'parts')), 'parts/ removed after the manifest');
  // user mistakes: one line, exit 2
  const bad = [
    ['prep', '--analyze', '--partition', '3/3', '--out', out, ...files],
    ['prep', '--analyze', '--out', out, ...files],
    ['prep', '--partition', '0/2', '--out', out, ...files],
    ['scale', out, '--partition', '0/2'],
  ];
  for (const args of bad) {
    const x = cli(args);
    assert.equal(x.status, 2, `${args.join(' ')}: ${x.stderr}`);
    assert.equal(x.stderr.trim().split('\n').length <= 2, true, x.stderr);
  }
});
