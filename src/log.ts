// Logging: pino JSON on stderr (pretty on a TTY) or to --log-file; stdout stays for data.
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level?: string;
  file?: string;
  pretty?: boolean;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.FLOWTENSOR_LOG_LEVEL ?? 'info';
  const base = { name: 'flowtensor' };
  if (opts.file) {
    return pino({ level, base }, pino.destination({ dest: opts.file, sync: true, append: true }));
  }
  const usePretty = opts.pretty ?? (process.stderr.isTTY === true);
  if (usePretty) {
    // on a terminal, a log line first clears the progress line, which is then drawn again below it
    const dest = new Writable({
      write(chunk: Buffer, _e, cb) {
        activeProgress?.clearLine();
        fs.writeSync(2, chunk);
        activeProgress?.redraw();
        cb();
      },
    });
    const log = pino({ level, base }, pretty({ destination: dest, colorize: true, ignore: 'pid,hostname,name' }));
    prettyLoggers.add(log);
    return log;
  }
  return pino({ level, base }, pino.destination({ dest: 2, sync: true }));
}

const prettyLoggers = new WeakSet<Logger>();

/** Whether the logger prints pretty lines on the terminal (train then prints its own epoch line instead). */
export function isPretty(log: Logger): boolean {
  return prettyLoggers.has(log);
}

/** A logger that drops everything (library use without logging). */
export const silentLogger: Logger = pino({ level: 'silent' });

let activeProgress: Progress | null = null;

/** Progress line on a TTY: rows, rows/s, bytes and ETA. Silent elsewhere (the logs carry counters). */
export class Progress {
  private last = 0;
  private text = '';
  private start = Date.now();
  private active: boolean;
  constructor(private label: string, private totalBytes = 0, enabled = process.stderr.isTTY === true, private unit = 'rows') {
    this.active = enabled;
  }
  update(rows: number, bytes = 0, force = false): void {
    if (!this.active) return;
    const now = Date.now();
    if (!force && now - this.last < 200) return;
    this.last = now;
    const sec = Math.max((now - this.start) / 1000, 1e-3);
    const rate = rows / sec;
    let eta = '';
    if (this.totalBytes > 0 && bytes > 0) {
      const left = ((this.totalBytes - bytes) / bytes) * sec;
      eta = `  ${fmtBytes(bytes)}/${fmtBytes(this.totalBytes)}  ETA ${fmtDuration(left)}`;
    }
    this.text = `${this.label}  ${fmtCount(rows)} ${this.unit}  ${fmtCount(rate)} ${this.unit}/s${eta}`;
    activeProgress = this;
    fs.writeSync(2, `\r\x1b[K${this.text}`);
  }
  clearLine(): void {
    if (this.active && this.text) fs.writeSync(2, '\r\x1b[K');
  }
  redraw(): void {
    if (this.active && this.text) fs.writeSync(2, this.text);
  }
  done(): void {
    if (this.active) fs.writeSync(2, '\r\x1b[K');
    this.text = '';
    if (activeProgress === this) activeProgress = null;
  }
}

/**
 * Time left in an epoch from the batches done so far: its clock starts at the epoch's first update, so
 * (total - done) batches at the measured seconds per batch. NaN (shown as '?') until two updates.
 */
export class BatchEta {
  private epoch = -1;
  private t0 = 0;
  private d0 = 0;
  update(epoch: number, done: number, total: number, now = Date.now()): number {
    if (epoch !== this.epoch || done < this.d0) {
      this.epoch = epoch;
      this.t0 = now;
      this.d0 = done;
    }
    if (done <= this.d0 || now <= this.t0) return NaN;
    return ((total - done) * (now - this.t0)) / (done - this.d0) / 1000;
  }
}

export function fmtCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}
export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const m = Math.floor(s / 60);
  const r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, '0')}`;
}
