// A run folder holds one run, whole: train refuses a folder that holds anything but its lock (unless
// --resume goes on with the run there, or --force replaces it), and clears what crashes leave behind.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { LOCK_NAME, processAlive, staleTemps } from './lock.js';
import { readMetrics } from './runfiles.js';
import { writeFileAtomic } from './atomic.js';

/** What train writes into a run folder (and --force removes). */
export const RUN_ENTRIES = ['run.json', 'model.json', 'weights.bin', 'metrics.ndjson', 'eval.json', 'report.html', 'best', 'last', 'tb', 'tensorboard', 'model.onnx'];

/**
 * Make `run` ready for training (its lock held): remove the temp files and folders of processes that
 * are gone, put back a `last/` left half-swapped by a crash, drop old copies the swap left; then refuse
 * a used folder unless resuming, or empty it with force.
 */
export function prepareRunFolder(run: string, o: { resume?: boolean; force?: boolean }): void {
  for (const t of staleTemps(run)) fs.rmSync(t, { recursive: true, force: true });
  for (const name of ['last', 'best']) {
    const live = path.join(run, name);
    const olds = fs.readdirSync(run).filter((f) => new RegExp(`^${name}\\.old-(\\d+)$`).test(f) && !processAlive(Number(f.split('-').pop())));
    for (const old of olds) {
      const full = path.join(run, old);
      // swapDir renames live -> old, then tmp -> live: a crash between them leaves only the old one
      if (!fs.existsSync(live) && fs.existsSync(path.join(full, 'state.json'))) fs.renameSync(full, live);
      else fs.rmSync(full, { recursive: true, force: true });
    }
  }
  if (o.resume) return;
  const used = fs.readdirSync(run).filter((f) => f !== LOCK_NAME);
  if (used.length === 0) return;
  if (!o.force)
    throw new UserError(`${run}: holds a run already (${used.slice(0, 4).join(', ')}${used.length > 4 ? ', …' : ''})`, 'go on with it: --resume; replace it: --force; or give a new --out');
  const unknown = used.filter((f) => !RUN_ENTRIES.includes(f));
  if (unknown.length) throw new UserError(`${run}: --force replaces a run, but the folder also holds ${unknown.slice(0, 4).join(', ')}${unknown.length > 4 ? ', …' : ''}`, 'give a run folder, or a new --out');
  // run.json first: a folder without it never looks like a finished run while it is cleared
  for (const f of RUN_ENTRIES) fs.rmSync(path.join(run, f), { recursive: true, force: true });
}

/** On resume: keep metrics.ndjson's lines up to the checkpoint's epoch (a kill after a line but before its checkpoint). */
export function trimMetrics(run: string, epoch: number): void {
  const file = path.join(run, 'metrics.ndjson');
  if (!fs.existsSync(file)) return;
  const lines = readMetrics<{ epoch: number }>(run);
  const keep = lines.filter((l) => l.epoch <= epoch);
  if (keep.length !== lines.length) writeFileAtomic(file, keep.map((l) => JSON.stringify(l) + '\n'));
}
