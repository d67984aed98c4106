/** An error caused by the user's input or options: printed as one line, no stack trace. */
export class UserError extends Error {
  /** The row it is about, when a reader of a chunk must shift the line by the lines before the chunk (message: `file:line: detail`). */
  at?: { file: string; line: number; detail: string };
  constructor(message: string, readonly hint?: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** The value of environment variable `name` (`fallback` when unset), one of `modes`, else one line naming it and the choices. */
export function envChoice(name: string, modes: string[], what: string, fallback: string): string {
  const v = process.env[name];
  if (v === undefined) return fallback;
  if (!modes.includes(v)) throw new UserError(`${name}=${JSON.stringify(v.slice(0, 40))}: not a ${what} mode; use one of ${modes.join(', ')} (or leave it unset)`);
  return v;
}

/** The same error about a row `by` lines further on (a chunk's local line made the file's). */
export function shiftedRowError(e: unknown, by: number): unknown {
  if (!(e instanceof UserError) || !e.at || by === 0) return e;
  const at = { ...e.at, line: e.at.line + by };
  return Object.assign(new UserError(`${at.file}:${at.line}: ${at.detail}`, e.hint, e.exitCode), { at });
}

/** A value from the data for a message: JSON-quoted, cut at max characters with its full length said. */
export function showValue(v: string, max = 80): string {
  return v.length <= max ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, max))}… (${v.length.toLocaleString('en-US')} characters)`;
}

export function formatUserError(e: UserError): string {
  return `flowtensor: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`;
}

const IO_REASONS: Record<string, string> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EIO: 'input/output error',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such folder',
  ENOTDIR: 'not a folder',
  EISDIR: 'is a folder',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'name too long',
  EEXIST: 'already exists',
};
const WRITE_CALLS = ['mkdir', 'open', 'write', 'rename', 'fsync', 'close', 'unlink', 'stat', 'rmdir', 'ftruncate', 'copyfile'];

/** The one line for an I/O error while writing output (exit 1), or null when it is not one. */
export function ioErrorLine(err: NodeJS.ErrnoException): string | null {
  if (!err.code || !IO_REASONS[err.code] || !err.syscall || !WRITE_CALLS.includes(err.syscall)) return null;
  // a temp file (.NAME.tmp-PID) stands for the file it was to become
  const where = (err.path ?? 'the output').replace(/(^|\/)\.([^/]+)\.tmp-\d+$/, '$1$2');
  const cleaned = ['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO'].includes(err.code) && where !== 'standard output' ? '; temporary files were removed and no manifest claims unfinished output' : '';
  return `flowtensor: cannot write ${where}: ${IO_REASONS[err.code]}${cleaned}`;
}

/** Node flags for worker threads: the parent's, less those that only make sense for a main script. */
export function workerExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--input-type') && a !== '-e' && a !== '--eval' && !/^--max-(semi|old)-space-size/.test(a));
}

/** An error as a worker thread posts it: what the main thread needs to rebuild it (user error or I/O error). */
export interface ErrorData {
  user: boolean;
  message: string;
  hint?: string;
  stack?: string;
  code?: string;
  syscall?: string;
  path?: string;
  at?: UserError['at'];
}

export function errorData(e: unknown): ErrorData {
  const err = e as NodeJS.ErrnoException & { hint?: string; at?: UserError['at'] };
  return { user: e instanceof UserError, message: err.message, hint: err.hint, stack: err.stack, code: err.code, syscall: err.syscall, path: err.path, at: err.at };
}

/** The error again, on the receiving thread: a UserError stays one; an I/O error keeps code, syscall and path. */
export function errorFrom(d: ErrorData): Error {
  return d.user ? Object.assign(new UserError(d.message, d.hint), d.at ? { at: d.at } : {}) : Object.assign(new Error(d.message), { code: d.code, syscall: d.syscall, path: d.path, stack: d.stack });
}
