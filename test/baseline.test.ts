import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { prep } from '../src/prep.js';
import { baseline } from '../src/baseline.js';
import { train } from '../src/train.js';
import { renderReport } from '../src/report.js';
import { cli, synthFile, tmpdir } from './helpers.js';

test('baseline: a YDF RandomForest on the same shards beats the majority class; eval and report put it beside the LSTM; other shards are refused', async () => {
  const d = tmpdir();
  const csv = synthFile(d, 'a.csv', { rows: 4000, seed: 61 });
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [csv], dedupe: true, workers: 0 });
  const out = path.join(d, 'rf');
  const r = await baseline({ shards, out, maxRows: 1000 });
  assert.ok(r.test, 'test report');
  assert.ok(r.test!.macro_f1 > r.test!.majority_macro_f1 + 0.3, `macro-F1 ${r.test!.macro_f1} vs majority ${r.test!.majority_macro_f1}`);
  assert.ok(r.train_rows_used < r.train_rows, 'train was sampled down to --max-rows');
  assert.ok(r.train_rows_used <= 1000 + 200);
  const info = JSON.parse(fs.readFileSync(path.join(out, 'baseline.json'), 'utf8'));
  assert.equal(info.train_rows_used, r.train_rows_used);
  assert.ok(info.trees > 0);
  // the LSTM run, then eval with the baseline beside it
  const run = path.join(d, 'run');
  await train({ shards, out: run, epochs: 1, maxBatchesPerEpoch: 5 });
  const e = cli(['eval', '--model', run, '--shards', shards, '--baseline', out]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, /class\s+support\s+LSTM F1\s+baseline F1/);
  assert.match(e.stdout, new RegExp(`macro-F1\\s+\\d+\\s+\\d\\.\\d{4}\\s+${r.test!.macro_f1.toFixed(4)}`));
  const html = renderReport(run, out);
  assert.match(html, /LSTM beside the tree baseline/);
  // a baseline of other shards is not compared
  const other = path.join(d, 'other');
  await prep({ out: other, inputs: [synthFile(d, 'b.csv', { rows: 1500, seed: 62 })], workers: 0 });
  const bad = cli(['eval', '--model', run, '--shards', other, '--baseline', out]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /trained on other shards/);
});
