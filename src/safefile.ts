// Reading files flowtensor did not just write (shards, weights, run and manifest files, configs) and
// checking where output goes. Every such read goes through readRegularFile: a regular file only (never a
// FIFO, device or folder: /dev/zero or a pipe named as a shard would grow memory or hang), its size
// checked before a byte is read, and, for files a manifest or model names, no symlink out of its folder.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

export const MiB = 1 << 20;
/** Largest JSON file read (manifests, run files, configs): far above any real one. */
export const MAX_JSON_BYTES = 256 * MiB;
/** Largest binary file read whole (a shard, weights.bin). */
export const MAX_BINARY_BYTES = 2048 * MiB;

export function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** The reason an open or stat of a path the user gave failed, as one UserError. */
export function pathError(file: string, e: unknown, what = ''): Error {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof UserError) return err;
  const pre = what ? `${what} ${file}` : file;
  switch (err.code) {
    case 'ENOENT':
      return new UserError(`${pre}: no such file or folder`);
    case 'ENOTDIR':
      return new UserError(`${pre}: a part of the path is not a folder`);
    case 'ELOOP':
      return new UserError(`${pre}: a symbolic link loop`);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`${pre}: permission denied`);
    case 'EISDIR':
      return new UserError(`${pre}: is a folder`);
    case 'ENAMETOOLONG':
      return new UserError(`${pre}: name too long`);
  }
  return err;
}

/** A path a manifest or model file names must resolve (symlinks followed) inside its folder. */
export function confine(file: string, within: string, what: string): void {
  let real: string;
  let root: string;
  try {
    root = fs.realpathSync(within);
    real = fs.realpathSync(file);
  } catch (e) {
    throw pathError(file, e, what);
  }
  if (real !== root && !real.startsWith(root + path.sep)) throw new UserError(`${what} ${file}: a symbolic link out of ${within} (to ${real}); refused`);
}

export interface ReadOptions {
  maxBytes: number;
  /** The file must be exactly this long (known from a manifest before reading). */
  exactBytes?: number;
  /** Refuse a file whose real path (symlinks followed) leaves this folder. */
  within?: string;
  /** Words before the path in errors, e.g. 'shard'. */
  what?: string;
}

/** A whole regular file, its size checked first; never blocks on a FIFO, never reads a device. */
export function readRegularFile(file: string, o: ReadOptions): Buffer {
  const what = o.what ?? '';
  const name = what ? `${what} ${file}` : file;
  if (o.within) confine(file, o.within, what || 'file');
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw pathError(file, e, what);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UserError(`${name}: ${kindOf(st)}, not a regular file; refused`);
    if (st.size > o.maxBytes) throw new UserError(`${name}: ${st.size} bytes, more than the ${o.maxBytes} a file of this kind may have; refused`);
    if (o.exactBytes !== undefined && st.size !== o.exactBytes) throw new UserError(`${name}: ${st.size} bytes where ${o.exactBytes} are expected`, 'the folder is damaged');
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = fs.readSync(fd, buf, off, st.size - off, off);
      if (n === 0) throw new UserError(`${name}: shorter than its size while reading (changed meanwhile?)`);
      off += n;
    }
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** A JSON file holding an object: one clear error when it is missing, too large, not JSON or not an object. */
export function readJsonFile<T = Record<string, unknown>>(file: string, o: Partial<ReadOptions> & { hint?: string } = {}): T {
  const buf = readRegularFile(file, { maxBytes: MAX_JSON_BYTES, ...o });
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message.slice(0, 120)})`, o.hint ?? 'the file is damaged; write it again');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new UserError(`${file}: holds ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}, not a JSON object`, o.hint ?? 'the file is damaged; write it again');
  return v as T;
}

/** Device and inode: one id for every name of a file (symlinks, hard links, ./ spellings). */
export function fileIdOf(st: fs.Stats): string {
  return `${st.dev}:${st.ino}`;
}

function idOf(p: string | number): string | null {
  try {
    const st = typeof p === 'number' ? fs.fstatSync(p) : fs.statSync(p);
    // stdin/stdout that are pipes or terminals are not files a name could refer to
    if (typeof p === 'number' && !st.isFile()) return null;
    return fileIdOf(st);
  } catch {
    return null;
  }
}

/**
 * Refuse writing an output that is one of the inputs (the same file under any name, or the file that
 * standard input or output is): appending quarantined rows or scores to an input grows it while it is read.
 */
export function refuseInputsAsOutput(outputs: { path: string | number; what: string }[], inputs: (string | number)[]): void {
  const ins = new Map<string, string>();
  for (const i of inputs) {
    const id = idOf(i);
    if (id) ins.set(id, typeof i === 'number' ? (i === 0 ? 'standard input' : `file descriptor ${i}`) : i);
  }
  if (ins.size === 0) return;
  for (const o of outputs) {
    const id = idOf(o.path);
    if (id && ins.has(id)) {
      const name = typeof o.path === 'number' ? (o.path === 1 ? 'standard output' : `file descriptor ${o.path}`) : o.path;
      throw new UserError(`${o.what} ${name} is the input ${ins.get(id)}: refusing to write into a file being read`, 'name another file for the output');
    }
  }
}
