// prep --format parquet: the same rows as safetensors, readable by DuckDB (and so by any Parquet engine),
// and by flowtensor's own shard reader (train, eval, baseline).
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { prep, prepAnalyze } from '../src/prep.js';
import { mergeAll } from '../src/mergestats.js';
import { finish, scalePartition } from '../src/transform.js';
import { finalize, partStatsFile, readStats } from '../src/stats.js';
import { cli, splitRows, synthFile, tmpdir } from './helpers.js';

test('prep --format parquet: DuckDB reads the same rows per split and class as the safetensors run; metadata; flowtensor reads the same values; partitioned too', async (t) => {
  const d = tmpdir();
  const files = [synthFile(d, 'a.csv', { rows: 4000, seed: 31, ipv6: 0.05 }), synthFile(d, 'b.csv', { rows: 2000, seed: 32 })];
  const st = path.join(d, 'st');
  const pq = path.join(d, 'pq');
  const ms = await prep({ inputs: files, out: st, workers: 0, dedupe: true });
  const mp = await prep({ inputs: files, out: pq, workers: 0, dedupe: true, format: 'parquet' });
  assert.ok(mp.splits.train.shards.every((s) => s.file.endsWith('.parquet')));
  assert.deepEqual({ ...mp.options, shard_format: 'x' }, { ...ms.options, shard_format: 'x' });
  assert.deepEqual(mp.scaler, ms.scaler);
  const a = splitRows(st);
  const b = splitRows(pq);
  for (const sp of Object.keys(a)) {
    assert.ok(b[sp].y.equals(a[sp].y), sp);
    assert.ok(b[sp].x.equals(a[sp].x), sp);
  }
  // partitioned, in Parquet: the same again
  const pp = path.join(d, 'pp');
  const n = 3;
  for (let k = 0; k < n; k++) await prepAnalyze({ inputs: files, out: pp, workers: 0, dedupe: true, format: 'parquet', partition: { k, n } });
  const merged = mergeAll([0, 1, 2].map((k) => readStats(partStatsFile(pp, k))), pp);
  const fin = finalize(merged.s);
  const parts = [];
  for (const k of [1, 2, 0]) parts.push(await scalePartition({ dir: pp, s: merged.s, fp: merged.fp, fin, k, pool: [] }));
  finish({ dir: pp, s: merged.s, fin, parts, hostContext: true });
  const c = splitRows(pp);
  for (const sp of Object.keys(a)) assert.ok(c[sp].x.equals(a[sp].x) && c[sp].y.equals(a[sp].y), `partitioned ${sp}`);
  // eval reads Parquet shards (a short run is enough: the reader is what is tested)
  const run = path.join(d, 'run');
  const tr = cli(['train', '-q', '--shards', pq, '--out', run, '--epochs', '1', '--max-batches', '3']);
  assert.equal(tr.status, 0, tr.stderr);
  const ev = cli(['eval', '-q', '--json', '--model', run, '--shards', pq, '--split', 'val']);
  assert.equal(ev.status, 0, ev.stderr);
  assert.equal(JSON.parse(ev.stdout).rows, ms.splits.val.rows);

  let duck: typeof import('@duckdb/node-api');
  try {
    duck = await import('@duckdb/node-api');
  } catch (e) {
    t.skip(`@duckdb/node-api does not load here (${(e as Error).message.split('\n')[0]})`);
    return;
  }
  const db = await duck.DuckDBInstance.create(':memory:');
  const con = await db.connect();
  for (const sp of ['train', 'val', 'test'] as const) {
    const r = await con.runAndReadAll(`select label, count(*) as n from read_parquet('${path.join(pq, sp)}/*.parquet') group by label order by label`);
    const got = Object.fromEntries(r.getRows().map(([lab, cnt]) => [ms.labels[Number(lab)], Number(cnt)]));
    assert.deepEqual(got, ms.splits[sp].class_counts, sp);
    const total = await con.runAndReadAll(`select count(*) from read_parquet('${path.join(pp, sp)}/*.parquet')`);
    assert.equal(Number(total.getRows()[0][0]), ms.splits[sp].rows, `partitioned ${sp}`);
  }
  const kv = await con.runAndReadAll(`select decode(key), decode(value) from parquet_kv_metadata('${path.join(pq, mp.splits.train.shards[0].file)}')`);
  const meta = Object.fromEntries(kv.getRows().map(([k, v]) => [String(k), String(v)]));
  assert.deepEqual(JSON.parse(meta['flowtensor.labels']), ms.labels);
  assert.deepEqual(JSON.parse(meta['flowtensor.features']), ms.features);
  assert.deepEqual(JSON.parse(meta['flowtensor.scaler']), ms.scaler);
  const cols = await con.runAndReadAll(`select column_name, column_type from (describe select * from read_parquet('${path.join(pq, mp.splits.train.shards[0].file)}'))`);
  const types = Object.fromEntries(cols.getRows().map(([k, v]) => [String(k), String(v)]));
  assert.equal(types[ms.features[0]], 'FLOAT');
  assert.equal(types.label, 'INTEGER');
  assert.equal(types.prev, 'INTEGER');
  assert.equal(Object.keys(types).length, ms.num_features + 2);
});
