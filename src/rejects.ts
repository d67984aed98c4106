// Where quarantined rows go: a file of NDJSON records (file, line, reason, detail, raw) and the log.
import fs from 'node:fs';
import { tempName } from './atomic.js';
import type { RejectRecord } from '../stages/parse.js';
import type { Logger } from './log.js';

export interface RejectSink {
  onReject(r: RejectRecord): void;
  readonly count: number;
  /** Finish the file: an atomic sink renames its temp file into place (an empty file when nothing was quarantined). */
  commit(): void;
  /** Close, and remove an atomic sink's temp file. */
  abort(): void;
}

export interface RejectSinkOptions {
  /** NDJSON file for the records; none: the log only. */
  file?: string;
  /** Write to a temp file renamed into place by commit() (prep's rejects.ndjson); else append. */
  atomic?: boolean;
  /** Records also logged one by one (default 20, then one line saying where the rest are). */
  logLimit?: number;
}

export function rejectSink(log: Logger, o: RejectSinkOptions = {}): RejectSink {
  const limit = o.logLimit ?? 20;
  const target = o.file && o.atomic ? tempName(o.file) : o.file;
  let fd = -1;
  let count = 0;
  // opened at the first record: prep clears its output folder (temp files included) before any arrive
  const open = () => {
    if (fd < 0 && target) fd = fs.openSync(target, o.atomic ? 'w' : 'a');
  };
  const close = () => {
    if (fd >= 0) fs.closeSync(fd);
    fd = -1;
  };
  return {
    onReject(r) {
      count++;
      if (target) {
        open();
        fs.writeSync(fd, JSON.stringify(r) + '\n');
      }
      if (count <= limit) log.warn({ file: r.file, line: r.line, reason: r.reason, detail: r.detail }, 'row quarantined');
      else if (count === limit + 1) log.warn({ rejects: o.file }, o.file ? 'more rows quarantined: see the rejects file' : 'more rows quarantined');
    },
    get count() {
      return count;
    },
    commit() {
      if (o.atomic && target) open();
      close();
      if (o.atomic && target) fs.renameSync(target, o.file!);
    },
    abort() {
      close();
      if (o.atomic && target) fs.rmSync(target, { force: true });
    },
  };
}
