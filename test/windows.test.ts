import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { prep } from '../src/prep.js';
import fs from 'node:fs';
import { loadShard, openShards, splitBatches } from '../src/shardset.js';
import { encodeSafetensors, readSafetensors } from '../src/safetensors.js';
import { train } from '../src/train.js';
import { predict } from '../src/predict.js';
import { tmpdir, tlHeader, tlRow, writeCsv } from './helpers.js';

// raw TrafficLabelling columns: 1 source IP, 7 flow duration (a unique row id here), 84 label
const HOSTS = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];

function rowsFor(ids: number[], hostOf: (id: number) => string): string {
  return ids.map((id) => tlRow({ 1: hostOf(id), 7: 1000 + id, 84: id % 2 ? 'DDoS' : 'BENIGN' })).join('\n');
}

test('per-host windows (training): a window holds its row last and only earlier flows of the same host, in input order, never across files; zeros before', async () => {
  const d = tmpdir();
  const hostOf = (id: number) => HOSTS[(id * 7) % 3];
  // a first row of its own host holds the smallest duration: scaled, it is all zeros like padding
  const a = writeCsv(d, 'a.csv', `${tlHeader()}\n${tlRow({ 1: '10.9.9.9', 7: 999 })}\n${rowsFor([...Array(40).keys()], hostOf)}\n`);
  const b = writeCsv(d, 'b.csv', `${tlHeader()}\n${rowsFor([...Array(20).keys()].map((k) => 100 + k), hostOf)}\n`);
  const out = path.join(d, 'shards');
  // everything in train, minmax so that flow_duration maps back to the row id exactly enough
  const m = await prep({ out, inputs: [a, b], ratios: { train: 1, val: 0, test: 0 }, scaler: 'minmax', workers: 0 });
  assert.equal(m.options.row_context, 'host');
  const F = m.num_features;
  const k = m.features.indexOf('flow_duration');
  const lo = m.scaler.min[k];
  const span = m.scaler.max[k] - lo;
  const idOf = (v: number) => Math.round(v * span + lo) - 1000;
  const W = 4;
  let windows = 0;
  for (const bt of splitBatches(out, m, 'train', { batchSize: 64, window: W })) {
    for (let i = 0; i < bt.n; i++) {
      const at = i * W * F;
      const ids: (number | null)[] = [];
      for (let w = 0; w < W; w++) {
        const slot = bt.x.subarray(at + w * F, at + (w + 1) * F);
        ids.push(w < W - 1 && slot.every((v) => v === 0) ? null : idOf(slot[k]));
      }
      const me = ids[W - 1]!;
      if (me === -1) {
        assert.deepEqual(ids, [null, null, null, -1]);
        continue;
      }
      const mine = me < 100 ? [...Array(40).keys()] : [...Array(20).keys()].map((q) => 100 + q);
      // the host's earlier flows in the same file, the most recent last
      const earlier = mine.filter((q) => q < me && hostOf(q) === hostOf(me)).slice(-(W - 1));
      const want = [...Array(W - 1 - earlier.length).fill(null), ...earlier, me];
      assert.deepEqual(ids, want, `window of row ${me}`);
      windows++;
    }
  }
  assert.equal(windows, 60);
});

test('per-host windows (predict): a flow\'s score depends on its host\'s earlier flows only', async () => {
  const d = tmpdir();
  const hostOf = (id: number) => HOSTS[id % 3];
  const ids = [...Array(300).keys()];
  const train_ = writeCsv(d, 'train.csv', `${tlHeader()}\n${rowsFor(ids, hostOf)}\n`);
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [train_], workers: 0 });
  const run = path.join(d, 'run');
  await train({ shards, out: run, model: 'window', window: 3, epochs: 1, batchSize: 64, progress: false });
  const score = async (rowIds: number[]) => {
    const f = writeCsv(d, `p${rowIds.length}-${rowIds[0]}.csv`, `${tlHeader()}\n${rowsFor(rowIds, hostOf)}\n`);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c) => chunks.push(c));
    await predict({ model: run, inputs: [f], output: out, threads: 1 });
    out.end();
    const lines = Buffer.concat(chunks).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    return new Map(lines.map((l, k) => [rowIds[k], l.top3.map((t: { p: number }) => t.p).join(',')]));
  };
  const seq = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const all = await score(seq);
  // without host 1's and host 2's flows, host 0's scores are unchanged
  const only0 = await score(seq.filter((q) => hostOf(q) === '10.0.0.1'));
  for (const [q, p] of only0) assert.equal(p, all.get(q), `row ${q}`);
  // without host 0's flow 3, its next flows (6, 9) see other context and score differently
  const without3 = await score(seq.filter((q) => q !== 3));
  assert.notEqual(without3.get(6), all.get(6));
  for (const q of [1, 2, 4, 5, 7, 8]) assert.equal(without3.get(q), all.get(q), `row ${q} of another host`);
  const m = openShards(shards);
  assert.equal(m.options.row_context, 'host');
});

test('a damaged prev pointer (not to an earlier row) is refused before any window follows it', async () => {
  const d = tmpdir();
  const a = writeCsv(d, 'a.csv', `${tlHeader()}\n${rowsFor([...Array(30).keys()], (id) => HOSTS[id % 3])}\n`);
  const out = path.join(d, 'shards');
  const m = await prep({ out, inputs: [a], ratios: { train: 1, val: 0, test: 0 }, workers: 0 });
  const sh = m.splits.train.shards[0];
  const st = readSafetensors(path.join(out, sh.file));
  const prev = Int32Array.from(st.get('prev') as Int32Array);
  prev[10] = 10; // points at itself: a chain that would never end
  const parts = encodeSafetensors(
    { features: { dtype: 'F32', shape: [sh.rows, m.num_features], data: st.get('features') as Float32Array }, labels: { dtype: 'I32', shape: [sh.rows], data: st.get('labels') as Int32Array }, prev: { dtype: 'I32', shape: [sh.rows], data: prev } },
    st.metadata,
  );
  const bytes = Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
  fs.writeFileSync(path.join(out, sh.file), bytes);
  assert.throws(() => loadShard(out, m, sh.file, sh.rows, bytes.length), /prev\[10\] = 10 does not point to an earlier row/);
});
