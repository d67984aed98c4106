// Worker thread of `prep`: parses its share of the tasks (files or line-aligned byte ranges of them)
// through the front stages (sanitize and the rows' split fingerprints included) and streams packed
// batches to the main thread, which assigns splits and writes shards in task order.
// Flow control: a worker holds at most `credits` unacknowledged batches.
// Afterwards it stays up for pass 2 and rewrites the shards it is sent ('scale' messages).
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from './config.js';
import { createFront, type FrontOptions } from './front.js';
import { processTask, type PackPool, type ParseSettings } from './prepfile.js';
import type { Task } from './chunks.js';
import { errorData } from './errors.js';
import { scaleShard, type ShardJob } from '../stages/scale.js';
import type { ScalerStats } from './manifest.js';

export interface WorkerInput {
  tasks: Task[];
  config: string;
  front: Omit<FrontOptions, 'cfg' | 'onReject' | 'onNewLabel' | 'onReplace'>;
  parse: ParseSettings;
  features: string[];
  credits: number;
  /** Claimed tasks (src/prep.ts runWorkers): [0] the next unclaimed position in `tasks`, [1 + q] who took task q; without it, every task of the list. */
  claims?: SharedArrayBuffer;
  /** This worker's number (its claims read id + 1). */
  id?: number;
  /** Tests only: wait this long before each task. */
  delayMs?: number;
  /** Send every replaced value to the main thread (it logs them at debug level). */
  logReplaced?: boolean;
}

const input = (workerData ?? { tasks: [] }) as WorkerInput;
const port = parentPort!;
let credits = input.credits;
let wake: (() => void) | null = null;
/** Packed arrays the main thread gave back with its credits (at most a few: it returns what it got). */
const pool: PackPool = { x: [], hash: [] };
let scaling: Promise<void> = Promise.resolve();
port.on('message', (m: { type: string; id?: number; job?: ShardJob; scaler?: ScalerStats; features?: string[]; x?: Float32Array; hash?: Uint32Array }) => {
  if (m.type === 'scale') {
    // pass 2: the same threads rewrite shards scaled, so no new isolates are started; one job at a
    // time (the main thread hands out two: the next waits here for the one running)
    scaling = scaling.then(async () => {
      try {
        port.postMessage({ type: 'scaled', id: m.id, r: await scaleShard(m.job!, m.scaler!, m.features!) });
      } catch (e) {
        port.postMessage({ type: 'error', index: -1, ...errorData(e) });
      }
    });
    return;
  }
  if (m.type === 'credit') {
    credits++;
    if (m.x) pool.x.push(m.x);
    if (m.hash) pool.hash.push(m.hash);
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  }
});

async function main(): Promise<void> {
  if (input.tasks.length === 0) return; // a scale-only worker
  const cfg = loadConfig(input.config);
  let current = -1;
  const front = createFront({
    ...input.front,
    cfg,
    onReject: (r) => port.postMessage({ type: 'reject', index: current, r }),
    onNewLabel: (label, file, line) => port.postMessage({ type: 'newlabel', index: current, label, file, line }),
    // every replaced value, for the main thread's debug log (only when it logs at debug level)
    onReplace: input.logReplaced ? (file, line, col, kind, raw) => port.postMessage({ type: 'replace', index: current, file, line, col, kind, raw }) : undefined,
  });
  try {
    const claims = input.claims ? new Int32Array(input.claims) : null;
    for (let q = 0; ; q++) {
      if (claims) {
        q = Atomics.add(claims, 0, 1);
        if (q >= input.tasks.length) break;
        Atomics.store(claims, 1 + q, (input.id ?? 0) + 1);
      } else if (q >= input.tasks.length) break;
      const t = input.tasks[q];
      current = t.index;
      if (input.delayMs) await new Promise((r) => setTimeout(r, input.delayMs));
      if (t.header) t.header = Buffer.from(t.header); // structured clone gives a Uint8Array
      const res = await processTask(t, front, input.features, input.parse, cfg, {
        header: (h) => port.postMessage({ type: 'header', index: t.index, h }), // the main thread keeps each file's first
        reject: (r) => port.postMessage({ type: 'reject', index: t.index, r }),
        batch: async (p, bytesIn) => {
          if (credits <= 0) await new Promise<void>((r) => (wake = r));
          credits--;
          port.postMessage({ type: 'batch', index: t.index, p, bytesIn }, [p.x.buffer, p.label.buffer, p.hash.buffer] as ArrayBuffer[]);
        },
      }, pool);
      port.postMessage({ type: 'task', index: t.index, ...res });
    }
    port.postMessage({ type: 'done', counts: front.counts(), vocab: front.labels.vocab, examples: front.examples() });
  } catch (e) {
    port.postMessage({ type: 'error', index: current, ...errorData(e) });
  }
}

void main();
