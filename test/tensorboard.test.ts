// TensorBoard event files read back by an independent reader (test/tfevents.py, Python's standard
// library: its own CRC32C and protobuf decoding).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { train } from '../src/train.js';
import { tagOf, FILE_VERSION } from '../src/tensorboard.js';
import { BIN, ROOT, tmpdir, smallShards as shards } from './helpers.js';

const READER = path.join(ROOT, 'test', 'tfevents.py');
const NO_PYTHON = 'python3 not found: the event files are read back by test/tfevents.py (Python standard library); skipped';
const hasPython = spawnSync('python3', ['--version']).status === 0;

interface TbEvent {
  wall_time?: number;
  step?: number;
  file_version?: string;
  summary?: { tag?: string; simple_value?: number }[];
  session_log?: { status: number };
}
type TbFiles = Record<string, { events: TbEvent[]; truncated_tail: number; bytes: number }>;

function readEvents(dir: string): TbFiles {
  const r = spawnSync('python3', [READER, dir], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `tfevents.py: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** run/tag/step -> the values found (a list, so that a duplicate shows). */
function scalars(files: TbFiles): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const [file, f] of Object.entries(files)) {
    const run = file.split(path.sep)[0];
    for (const e of f.events) for (const v of e.summary ?? []) {
      const k = `${run}/${v.tag}/${e.step}`;
      m.set(k, [...(m.get(k) ?? []), v.simple_value!]);
    }
  }
  return m;
}

const metricsOf = (run: string) => fs.readFileSync(path.join(run, 'metrics.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

/** Every finite numeric field but epoch of each metrics line, as TensorBoard should hold it (float32). */
function expected(lines: Record<string, unknown>[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of lines) for (const [k, v] of Object.entries(l)) {
    if (k === 'epoch' || typeof v !== 'number' || !Number.isFinite(v)) continue;
    const { run, tag } = tagOf(k);
    m.set(`${run}/${tag}/${l.epoch}`, Math.fround(v));
  }
  return m;
}

test('event files: TFRecord framing and CRCs check out in an independent reader; every epoch scalar equals metrics.ndjson; --resume adds a file per run and steps go on', { skip: hasPython ? false : NO_PYTHON }, async () => {
  const dir = await shards(3000, 21);
  const run = path.join(tmpdir(), 'run');
  await train({ shards: dir, out: run, model: 'window', window: 2, epochs: 2, patience: 9, batchSize: 64, maxBatchesPerEpoch: 10, progress: false });
  await train({ shards: dir, out: run, resume: true, epochs: 3, progress: false });
  const files = readEvents(path.join(run, 'tb'));
  const names = Object.keys(files).sort();
  assert.equal(names.filter((f) => f.startsWith(`train${path.sep}`)).length, 2, names.join(' '));
  assert.equal(names.filter((f) => f.startsWith(`validation${path.sep}`)).length, 2, names.join(' '));
  for (const [name, f] of Object.entries(files)) {
    assert.equal(f.truncated_tail, 0, name);
    assert.equal(f.events[0].file_version, FILE_VERSION, `${name}: first record`);
    assert.ok(f.events.every((e) => typeof e.wall_time === 'number' && e.wall_time > 1.6e9), `${name}: wall times`);
  }
  // the resumed process's files begin with a SessionLog START at the first new step (TensorBoard then
  // drops steps >= 3 that a killed process might have written after its last checkpoint)
  for (const run of ['train', 'validation']) {
    const second = files[names.filter((f) => f.startsWith(run + path.sep))[1]].events;
    assert.deepEqual([second[1].step, second[1].session_log], [3, { status: 1 }]);
    assert.deepEqual(second.filter((e) => e.summary).map((e) => e.step), [3]);
  }
  const lines = metricsOf(run);
  assert.deepEqual(lines.map((l) => l.epoch), [1, 2, 3]);
  const want = expected(lines);
  const got = scalars(files);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, v] of want) assert.deepEqual(got.get(k), [v], k);
  // Keras' names and runs, so TensorBoard overlays train and validation curves
  for (const k of ['train/epoch_loss/1', 'train/epoch_accuracy/3', 'train/epoch_samples_per_s/2', 'validation/epoch_loss/1', 'validation/epoch_accuracy/3']) assert.ok(got.has(k), k);
  // the reader is strict: a flipped byte in a record is an error, a cut record at the end is not
  const f = path.join(run, 'tb', names[0]);
  const buf = fs.readFileSync(f);
  fs.writeFileSync(f, buf.subarray(0, buf.length - 5));
  const cut = readEvents(path.join(run, 'tb'))[names[0]];
  assert.equal(cut.events.length, files[names[0]].events.length - 1);
  assert.ok(cut.truncated_tail > 0);
  buf[buf.length - 9] ^= 0x40;
  fs.writeFileSync(f, buf);
  assert.match(spawnSync('python3', [READER, path.join(run, 'tb')], { encoding: 'utf8' }).stderr, /CRC does not match/);
});

test('SIGKILL during training: every complete record of the event files reads back and matches metrics.ndjson', { skip: hasPython ? false : NO_PYTHON }, async () => {
  const dir = await shards(4000, 22);
  const run = path.join(tmpdir(), 'run');
  const child = spawn(process.execPath, [BIN, 'train', '-q', '--shards', dir, '--out', run, '--model', 'window', '--window', '2', '--epochs', '500', '--patience', '500', '--batch-size', '32', '--max-batches', '4'], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  const metrics = path.join(run, 'metrics.ndjson');
  const t0 = Date.now();
  const epochsDone = () => (fs.existsSync(metrics) ? fs.readFileSync(metrics, 'utf8').split('\n').length - 1 : 0);
  while (epochsDone() < 3 && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 37 + Math.random() * 150)); // anywhere in a later epoch, its writes included
  child.kill('SIGKILL');
  await exited;
  const lines = metricsOf(run);
  assert.ok(lines.length >= 3, `${lines.length} epochs before the kill`);
  const files = readEvents(path.join(run, 'tb')); // exits 1 on any record whose CRC does not match
  assert.equal(Object.keys(files).length, 2);
  const got = scalars(files);
  const want = expected(lines);
  // metrics.ndjson is appended before the event files: they may lack the last epoch, never hold more
  for (const [name, f] of Object.entries(files)) {
    const steps = f.events.filter((e) => e.summary).map((e) => e.step);
    assert.ok(steps.length >= lines.length - 1, `${name}: ${steps.length} epochs, metrics.ndjson ${lines.length}`);
    assert.deepEqual(steps, lines.slice(0, steps.length).map((l) => l.epoch), name);
  }
  for (const [k, v] of got) assert.deepEqual(v, [want.get(k)], k);
});
