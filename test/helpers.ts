// Shared test plumbing: temp folders, the CLI as a child process, synth files, real-sample lookup.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { synthToFile, type SynthOptions } from '../src/synth.js';
import { prep } from '../src/prep.js';
import { readManifest, type Manifest } from '../src/manifest.js';
import { loadShard } from '../src/shardset.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'flowtensor.js');
export const SHARED_DATA = path.resolve(ROOT, '..', 'shared', 'data', 'cicids2017');

const made: string[] = [];

/**
 * A fresh temp folder, removed with everything in it when the test process exits (each test file runs in
 * its own process). FLOWTENSOR_KEEP_TMP=1 keeps them for a look after a failure.
 */
export function tmpdir(prefix = 'ft-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (made.length === 0 && !process.env.FLOWTENSOR_KEEP_TMP)
    process.on('exit', () => {
      for (const x of made) fs.rmSync(x, { recursive: true, force: true });
    });
  made.push(d);
  return d;
}

/** The CLI as a child process; stdinFile makes a file its standard input (as `< FILE` does). */
export function cli(args: string[], opts: { input?: string | Buffer; stdinFile?: string; env?: Record<string, string> } = {}): SpawnSyncReturns<string> {
  const fd = opts.stdinFile ? fs.openSync(opts.stdinFile, 'r') : -1;
  try {
    return spawnSync(process.execPath, [BIN, ...args], {
      input: fd >= 0 ? undefined : opts.input,
      stdio: fd >= 0 ? [fd, 'pipe', 'pipe'] : undefined,
      encoding: 'utf8',
      env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn', ...opts.env },
      maxBuffer: 1 << 28,
    });
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Many CLI runs at once (a few at a time): results in the order of the list. */
export async function cliAll(runs: { args: string[]; input?: string }[], concurrency = 4): Promise<{ status: number | null; stdout: string; stderr: string }[]> {
  const out: { status: number | null; stdout: string; stderr: string }[] = new Array(runs.length);
  let next = 0;
  const one = (k: number) =>
    new Promise<void>((resolve) => {
      const c = spawn(process.execPath, [BIN, ...runs[k].args], { env: { ...process.env, FLOWTENSOR_LOG_LEVEL: 'warn' } });
      let stdout = '';
      let stderr = '';
      c.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      c.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      c.stdin.on('error', () => undefined);
      c.stdin.end(runs[k].input ?? '');
      c.on('close', (status) => {
        out[k] = { status, stdout, stderr };
        resolve();
      });
    });
  const worker = async () => {
    while (next < runs.length) await one(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return out;
}

export function synthFile(dir: string, name: string, o: SynthOptions): string {
  const f = path.join(dir, name);
  synthToFile(f, o);
  return f;
}

/** Real CICIDS2017 samples from ../shared, or null (tests then skip with a message). */
export function realSamples(): string[] | null {
  if (!fs.existsSync(SHARED_DATA)) return null;
  return fs.readdirSync(SHARED_DATA).filter((f) => f.endsWith('.csv')).sort().map((f) => path.join(SHARED_DATA, f));
}

export const NO_REAL_DATA = `real samples not found at ${SHARED_DATA} (../shared/data/cicids2017): skipped`;

/** Write a small CSV by hand. */
export function writeCsv(dir: string, name: string, text: string | Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

/** The raw TrafficLabelling header as in the original files. */
export function tlHeader(): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'cicids2017.json'), 'utf8')).layouts.trafficlabelling as string[]).join(',');
}

/** A TrafficLabelling data row with given overrides by raw column index. */
export function tlRow(over: Record<number, string | number> = {}): string {
  const n = 85;
  const cells: (string | number)[] = [];
  for (let i = 0; i < n; i++) cells.push(i + 1);
  cells[0] = '192.168.10.5-104.16.207.165-54865-443-6';
  cells[1] = '192.168.10.5';
  cells[3] = '104.16.207.165';
  cells[6] = '7/7/2017 3:30';
  cells[84] = 'BENIGN';
  for (const [k, v] of Object.entries(over)) cells[Number(k)] = v;
  return cells.join(',');
}

/** Shards of `rows` synthetic flows of three classes (2,000 rows per shard), in a fresh temp folder. */
export async function smallShards(rows: number, seed: number): Promise<string> {
  const d = tmpdir();
  const csv = path.join(d, 'a.csv');
  synthToFile(csv, { rows, seed, classes: ['BENIGN', 'DDoS', 'PortScan'] });
  const out = path.join(d, 'shards');
  await prep({ out, inputs: [csv], workers: 0, shardRows: 2000 });
  return out;
}

/** Every split's rows (features, labels) through flowtensor's shard reader, whatever the shard names or format. */
export function splitRows(dir: string, m: Manifest = readManifest(dir, { verify: 'sha256' })): Record<string, { x: Buffer; y: Buffer }> {
  const out: Record<string, { x: Buffer; y: Buffer }> = {};
  for (const sp of ['train', 'val', 'test'] as const) {
    const xs: Buffer[] = [];
    const ys: Buffer[] = [];
    for (const sh of m.splits[sp].shards) {
      const s = loadShard(dir, m, sh.file, sh.rows, sh.bytes);
      xs.push(Buffer.from(s.x.buffer, s.x.byteOffset, s.x.byteLength));
      ys.push(Buffer.from(s.y.buffer, s.y.byteOffset, s.y.byteLength));
    }
    out[sp] = { x: Buffer.concat(xs), y: Buffer.concat(ys) };
  }
  return out;
}
