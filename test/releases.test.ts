import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { prep } from '../src/prep.js';
import { detectLayout, readHeaderLine } from '../src/releases.js';
import { train } from '../src/train.js';
import { predict } from '../src/predict.js';
import { BIN, cli, synthFile, tmpdir } from './helpers.js';
import { spawn, spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';

const EXPECT: Record<string, { config: string; release: string; format: string }> = {
  trafficlabelling: { config: 'cicids2017', release: 'cicids2017', format: 'trafficlabelling' },
  machinelearningcve: { config: 'cicids2017', release: 'cicids2017', format: 'machinelearningcve' },
  improved: { config: 'cicids2017', release: 'cicids2017-improved', format: 'improved' },
  'cicflowmeter-v4': { config: 'cse-cic-ids2018', release: 'cse-cic-ids2018', format: 'cicflowmeter-v4' },
  'cicflowmeter-v4-ids': { config: 'cse-cic-ids2018', release: 'cse-cic-ids2018', format: 'cicflowmeter-v4-ids' },
};

test('release detection: every layout synth writes is recognised from its header (config, format, release)', () => {
  const d = tmpdir();
  for (const [layout, want] of Object.entries(EXPECT)) {
    const f = synthFile(d, `${layout}.csv`, { rows: 50, seed: 2, layout });
    const got = detectLayout(readHeaderLine(f));
    assert.ok(got, layout);
    assert.deepEqual({ config: got.config, release: got.release, format: got.format }, want, layout);
  }
});

test('prep detects the data set from the headers; a CSE-CIC-IDS2018 file read with the CICIDS2017 config is refused, not zero-filled', async () => {
  const d = tmpdir();
  const f18 = synthFile(d, 'wed.csv', { rows: 3000, seed: 4, layout: 'cicflowmeter-v4' });
  const f18ids = synthFile(d, 'tue.csv', { rows: 3000, seed: 5, layout: 'cicflowmeter-v4-ids' });
  // the 80-column layout has no IPs: refused unless identifiers are dropped
  await assert.rejects(prep({ out: path.join(d, 'x'), inputs: [f18] }), /lacks model columns source_ip, source_port, destination_ip/);
  const m = await prep({ out: path.join(d, 'o18'), inputs: [f18, f18ids], dropIdentifiers: true });
  assert.equal(m.dataset, 'cse-cic-ids2018');
  assert.deepEqual(m.options.releases, ['cse-cic-ids2018']);
  assert.ok(m.labels.includes('DoS attacks-Hulk') && m.labels.includes('Benign'));
  assert.equal(m.accounting.unaccounted, 0);
  assert.equal(m.accounting.rows_in_shards, 6000);
  assert.equal(m.accounting.header_rows, 2, 'repeated header rows inside the files are skipped and counted');
  // nothing zero-filled: every model column was mapped from the abbreviated names
  assert.deepEqual(m.quality.filled_missing_column, {});
  // with identifiers, the 84-column file alone prepares
  const mi = await prep({ out: path.join(d, 'o18i'), inputs: [f18ids] });
  assert.ok(mi.features.includes('source_ip.g0') || mi.features.some((x) => x.startsWith('source_ip')));
  // the CICIDS2017 config would misread it: one line naming the right config
  const r = cli(['prep', '--config', 'cicids2017', '--drop-identifiers', '--out', path.join(d, 'bad'), f18]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /cse-cic-ids2018 layout .* misreads/);
  assert.match(r.stderr, /--config cse-cic-ids2018/);
  assert.ok(!r.stderr.includes('internal error'));
});

test('missing model columns: prep refuses and names them; --allow-missing-features zero-fills, counts and records', async () => {
  const d = tmpdir();
  const f = synthFile(d, 'mlcve.csv', { rows: 2000, seed: 6, layout: 'machinelearningcve' });
  const r = cli(['prep', '--out', path.join(d, 'x'), f]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /mlcve\.csv \(machinelearningcve\) lacks model columns source_ip, source_port, destination_ip, protocol/);
  assert.match(r.stderr, /--allow-missing-features/);
  assert.equal(r.stderr.trim().split('\n').length, 2);
  const m = await prep({ out: path.join(d, 'o'), inputs: [f], allowMissingFeatures: true, dropIdentifiers: true });
  assert.equal(m.options.allow_missing_features, true);
  assert.deepEqual(m.quality.filled_missing_column, { protocol: 2000 });
});

test('predict: an input of another release is scored with a warning in the log and the summary; missing model columns are refused', async () => {
  const d = tmpdir();
  const imp = synthFile(d, 'imp.csv', { rows: 3000, seed: 7, layout: 'improved' });
  const orig = synthFile(d, 'orig.csv', { rows: 300, seed: 8 });
  const shards = path.join(d, 'shards');
  await prep({ out: shards, inputs: [imp], dropIdentifiers: true });
  const run = path.join(d, 'run');
  await train({ shards, out: run, epochs: 1, maxBatchesPerEpoch: 3 });
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  const same = await predict({ model: run, inputs: [imp], output: sink(), threads: 1 });
  assert.deepEqual(same.release_mismatch, []);
  const other = await predict({ model: run, inputs: [orig], output: sink(), threads: 1 });
  assert.deepEqual(other.release_mismatch, [{ file: orig, release: 'cicids2017', run_releases: ['cicids2017-improved'] }]);
  assert.equal(other.rows_scored, 300);
  const r = cli(['predict', '--model', run, orig]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: .*orig\.csv is cicids2017; the run was trained on cicids2017-improved/);
  // a MachineLearningCVE file lacks protocol, a model column of this run
  const mlc = synthFile(d, 'mlc.csv', { rows: 100, seed: 9, layout: 'machinelearningcve' });
  const r2 = cli(['predict', '--model', run, mlc]);
  assert.equal(r2.status, 2);
  assert.match(r2.stderr, /lacks model columns protocol/);
  assert.equal(fs.existsSync(mlc), true);
  const s = await predict({ model: run, inputs: [mlc], output: sink(), threads: 1, allowMissingFeatures: true });
  assert.deepEqual(s.missing_features, [{ file: mlc, missing: ['protocol'] }]);
});

test('a pipe\'s header is checked when it is read: mixing releases through a FIFO is refused too, and the pipe is read whole', async (t) => {
  if (spawnSync('mkfifo', ['--version']).status !== 0) return t.skip('mkfifo not available');
  const d = tmpdir();
  const imp = synthFile(d, 'imp.csv', { rows: 400, seed: 11, layout: 'improved' });
  const orig = synthFile(d, 'orig.csv', { rows: 400, seed: 12 });
  const fifo = path.join(d, 'pipe.csv');
  const feed = () => spawn('sh', ['-c', `cat "${imp}" > "${fifo}"`]);
  spawnSync('mkfifo', [fifo]);
  feed();
  const r = await cliAsync(['prep', '--out', path.join(d, 'mixed'), fifo, orig]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /mix releases .*cicids2017: 1 file \(orig\.csv\); cicids2017-improved: 1 file \(pipe\.csv\)/);
  assert.ok(!fs.existsSync(path.join(d, 'mixed', 'manifest.json')));
  feed();
  const ok = await cliAsync(['prep', '--out', path.join(d, 'alone'), '--drop-identifiers', fifo]);
  assert.equal(ok.status, 0, ok.stderr);
  const m = JSON.parse(fs.readFileSync(path.join(d, 'alone', 'manifest.json'), 'utf8'));
  assert.deepEqual(m.options.releases, ['cicids2017-improved']);
  assert.equal(m.accounting.data_rows, 400, 'the header was not consumed before the parser read the pipe');
});

/** The CLI without blocking this process (a FIFO writer runs beside it). */
function cliAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn' } });
    let stderr = '';
    p.stderr.on('data', (c) => (stderr += c));
    p.stdout.resume();
    p.on('close', (status) => res({ status, stderr }));
  });
}
