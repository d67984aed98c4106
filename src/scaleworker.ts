// Worker thread of the scale stage: rewrites its share of the shards scaled.
import { parentPort, workerData } from 'node:worker_threads';
import { scaleShard, type ShardJob } from '../stages/scale.js';
import type { ScalerStats } from './manifest.js';
import { UserError } from './errors.js';

const { jobs, scaler, features } = workerData as { jobs: ShardJob[]; scaler: ScalerStats; features: string[] };
for (const j of jobs) {
  try {
    parentPort!.postMessage({ ok: true, r: scaleShard(j, scaler, features) });
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({ ok: false, message: err.message, user: err instanceof UserError, hint: (err as UserError).hint });
    break;
  }
}
