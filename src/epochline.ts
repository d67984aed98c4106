// One line per epoch on a terminal, as Keras prints it:
//   epoch 3/40  loss 0.4120  acc 0.9010  val_loss 0.4550  val_acc 0.8890  8,210 samples/s  41 s
// The full-precision record stays in metrics.ndjson and in the JSON log.
import fs from 'node:fs';
import { isPretty, type Logger } from './log.js';

/** Printed at the end in their own form, or not at all (the sample count is in the JSON record). */
const TAIL = new Set(['epoch', 'samples', 'samples_per_s', 'seconds']);

/** 4 significant digits (aligned columns from epoch to epoch); a value that is already short stays so (lr 0.001). */
export function sig(v: number): string {
  const p = v.toPrecision(4);
  return Number(p) === v ? String(v) : p;
}

/** Every finite numeric field of the epoch record, in the record's order, so new metrics show up unasked. */
export function epochLine(em: { epoch: number; samples_per_s?: number; seconds?: number }, epochs: number): string {
  const parts = [`epoch ${em.epoch}/${epochs}`];
  for (const [k, v] of Object.entries(em)) if (!TAIL.has(k) && typeof v === 'number' && Number.isFinite(v)) parts.push(`${k} ${sig(v)}`);
  if (em.samples_per_s !== undefined) parts.push(`${Math.round(em.samples_per_s).toLocaleString('en-US')} samples/s`);
  if (em.seconds !== undefined) parts.push(em.seconds < 10 ? `${em.seconds.toFixed(1)} s` : `${Math.round(em.seconds)} s`);
  return parts.join('  ');
}

/**
 * A finished epoch: on a terminal the epoch line, which replaces the pretty log's multi-line record;
 * the JSON log (a file, or stderr when it is not a terminal) keeps the full record.
 */
export function reportEpoch(log: Logger, em: { epoch: number }, epochs: number, terminal: boolean): void {
  const line = terminal && log.isLevelEnabled('info');
  if (line) fs.writeSync(2, epochLine(em, epochs) + '\n');
  if (!(line && isPretty(log))) log.info(em, 'epoch');
}
