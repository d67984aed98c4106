// The Keras-style epoch line on a terminal, and the full record kept in the JSON log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { epochLine } from '../src/epochline.js';
import { BIN, cli, tmpdir, smallShards as shards } from './helpers.js';

const metricsOf = (run: string) => fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

test('the epoch line: Keras-style, 4 significant digits, new fields shown as they come; printed with --progress while the log keeps the full record', async () => {
  assert.equal(
    epochLine({ epoch: 3, loss: 0.41234567, acc: 0.9012345, val_loss: 0.455, val_acc: 0.8889999, val_macro_f1: 0.81234, lr: 0.001, samples_per_s: 8210, seconds: 41.2, samples: 33000 } as { epoch: number }, 40),
    'epoch 3/40  loss 0.4123  acc 0.9012  val_loss 0.455  val_acc 0.8890  val_macro_f1 0.8123  lr 0.001  8,210 samples/s  41 s',
  );
  const dir = await shards(2000, 23);
  const d = tmpdir();
  const log = path.join(d, 'log.ndjson');
  const r = cli(['train', '--shards', dir, '--out', path.join(d, 'run'), '--model', 'window', '--window', '2', '--epochs', '2', '--max-batches', '3', '--progress', '--log-file', log], { env: { FLOWTENSOR_LOG_LEVEL: 'info' } });
  assert.equal(r.status, 0, r.stderr);
  const shown = r.stderr.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split(/[\r\n]/).filter((l) => l.startsWith('epoch ') && !l.includes('ETA'));
  assert.equal(shown.length, 2, r.stderr);
  assert.match(shown[1], /^epoch 2\/2  loss \d\.\d{3}\S*  acc [\d.]+  val_loss [\d.]+  val_acc [\d.]+  val_macro_f1 [\d.]+  lr [\d.]+  [\d,]+ samples\/s  [\d.]+ s$/);
  const records = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.msg === 'epoch');
  const lines = metricsOf(path.join(d, 'run'));
  assert.equal(records.length, 2);
  records.forEach((rec, i) => assert.deepEqual(Object.fromEntries(Object.keys(lines[i]).map((k) => [k, rec[k]])), lines[i])); // full precision
});

test('on a terminal the epoch line replaces the pretty multi-line epoch record', async (t) => {
  if (spawnSync('script', ['--version']).status !== 0) return t.skip('script (util-linux) not found: no pseudo-terminal to test on; skipped');
  const dir = await shards(2000, 24);
  const d = tmpdir();
  const cmd = [process.execPath, BIN, 'train', '--shards', dir, '--out', path.join(d, 'run'), '--model', 'window', '--window', '2', '--epochs', '2', '--max-batches', '3'].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'info', TERM: 'dumb' } });
  assert.equal(r.status, 0, r.stdout);
  const text = r.stdout.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
  assert.equal(text.split(/[\r\n]/).filter((l) => /^epoch \d\/2  loss /.test(l)).length, 2, text);
  assert.doesNotMatch(text, /val_loss: /); // pino-pretty's form of the record's fields
  assert.match(text, /training/); // the other pretty log lines are still there
});
