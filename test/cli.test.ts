// The CLI as users (and mistakes) meet it: every failure one clear line with the right exit status,
// results on stdout, logs on stderr, outputs never written into inputs, standard output failures seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { prep } from '../src/prep.js';
import { train } from '../src/train.js';
import { synthToFile } from '../src/synth.js';
import { BIN, cli, tmpdir, synthFile } from './helpers.js';

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
