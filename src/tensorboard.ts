// TensorBoard event files without tfjs-node: per-epoch scalars under RUN/tb/train and RUN/tb/validation
// (two runs, as Keras writes them, so TensorBoard draws loss and val_loss on one chart).
// An event file is a TFRecord stream: uint64 length, masked CRC32C of those 8 bytes, an `Event`
// protobuf, masked CRC32C of the protobuf. The protobuf is encoded by protobufjs from the schema below
// (the few fields TensorBoard reads for scalars), the CRC by crc-32's CRC32C.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import CRC32C from 'crc-32/crc32c.js';
import { ensureDir, writeAll } from './atomic.js';

// Field numbers are those of TensorFlow's event.proto and summary.proto; only what scalars need.
const SCHEMA = `
syntax = "proto3";
message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 6;
  }
}
message Summary {
  message Value {
    string tag = 1;
    oneof value { float simple_value = 2; }
  }
  repeated Value value = 1;
}
message SessionLog {
  enum Status { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  Status status = 1;
}
`;
// keepCase: the field names as written (protobufjs would otherwise expect camelCase and drop snake_case keys)
const Event = protobuf.parse(SCHEMA, { keepCase: true }).root.lookupType('Event');

/** The first record of every event file; "brain.Event:2" tells TensorBoard to purge only on a SessionLog START. */
export const FILE_VERSION = 'brain.Event:2';

/** Keras' tag names where flowtensor's field names differ (the rest are `epoch_` + field). */
const KERAS_NAMES: Record<string, string> = { acc: 'accuracy', lr: 'learning_rate' };

/** Where an epoch field goes: `val_*` to the validation run without the prefix, the rest to train. */
export function tagOf(field: string): { run: 'train' | 'validation'; tag: string } {
  const val = field.startsWith('val_');
  const name = val ? field.slice(4) : field;
  return { run: val ? 'validation' : 'train', tag: `epoch_${KERAS_NAMES[name] ?? name}` };
}

function masked(bytes: Uint8Array): number {
  const c = CRC32C.buf(bytes) >>> 0;
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: the whole record is built first, so it reaches the file in one write. */
export function tfRecord(data: Uint8Array): Buffer {
  const rec = Buffer.alloc(16 + data.byteLength);
  rec.writeBigUInt64LE(BigInt(data.byteLength), 0);
  rec.writeUInt32LE(masked(rec.subarray(0, 8)), 8);
  rec.set(data, 12);
  rec.writeUInt32LE(masked(data), 12 + data.byteLength);
  return rec;
}

let fileCounter = 0;

/** One event file, append-only: each record one write, fsync'd before `append` returns. */
class EventFile {
  readonly file: string;
  constructor(dir: string, wallTime: number) {
    ensureDir(dir);
    // TensorFlow's naming (TensorBoard lists files containing "tfevents", in name order); a new file per
    // writer, never reopened, so a resumed run or a second train() in one process starts its own
    for (;;) {
      this.file = path.join(dir, `events.out.tfevents.${String(Math.floor(wallTime)).padStart(10, '0')}.${os.hostname()}.${process.pid}.${fileCounter++}`);
      try {
        fs.closeSync(fs.openSync(this.file, 'wx', 0o644));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    this.append([{ wall_time: wallTime, file_version: FILE_VERSION }]);
  }
  /** Opened per call: a killed process leaves no buffered bytes behind, and no descriptor to close. */
  append(events: object[]): void {
    const fd = fs.openSync(this.file, 'a');
    try {
      for (const e of events) writeAll(fd, tfRecord(Event.encode(Event.fromObject(e)).finish()));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * The per-epoch scalars of a training run as TensorBoard event files. Generic: every finite numeric
 * field of the epoch record but `epoch` (the step) is written, so new metrics need no change here.
 */
export class TensorBoardWriter {
  private runs: Record<'train' | 'validation', EventFile>;
  /**
   * `fresh`: a new run, so an earlier run's curves in `dir` are removed (as metrics.ndjson is).
   * Otherwise (resume) each run gets a SessionLog START at `firstStep`, which tells TensorBoard to
   * drop the steps ≥ firstStep that a killed process wrote after its last checkpoint.
   */
  constructor(readonly dir: string, o: { fresh: boolean; firstStep: number }) {
    if (o.fresh) fs.rmSync(dir, { recursive: true, force: true });
    const now = Date.now() / 1000;
    this.runs = { train: new EventFile(path.join(dir, 'train'), now), validation: new EventFile(path.join(dir, 'validation'), now) };
    if (!o.fresh) for (const f of Object.values(this.runs)) f.append([{ wall_time: now, step: o.firstStep, session_log: { status: 'START' } }]);
  }

  /** One Event per run holding all of the epoch's scalars: an epoch is in a file whole or not at all. */
  epoch(em: { epoch: number }): void {
    const values: Record<'train' | 'validation', { tag: string; simple_value: number }[]> = { train: [], validation: [] };
    for (const [k, v] of Object.entries(em)) {
      if (k === 'epoch' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      const { run, tag } = tagOf(k);
      values[run].push({ tag, simple_value: v });
    }
    const wall_time = Date.now() / 1000;
    for (const run of ['train', 'validation'] as const) {
      if (values[run].length) this.runs[run].append([{ wall_time, step: em.epoch, summary: { value: values[run] } }]);
    }
  }

  files(): string[] {
    return [this.runs.train.file, this.runs.validation.file];
  }
}
