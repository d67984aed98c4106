// Atomic file writes: temp file in the same folder, fsync, rename.
import fs from 'node:fs';
import path from 'node:path';

// Fault injection for the reliability tests: FLOWTENSOR_FAULT_ENOSPC_AFTER=N makes every write after
// N bytes (per process) fail as a full disk would. Unset, it costs one comparison per write.
const faultAfter = Number(process.env.FLOWTENSOR_FAULT_ENOSPC_AFTER ?? NaN);
let written = 0;

/** fs.writeSync, all bytes, at an optional position; the one place output bytes are written. */
export function writeAll(fd: number, bytes: Uint8Array, position?: number): void {
  if (faultAfter === faultAfter && (written += bytes.byteLength) > faultAfter)
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  let off = 0;
  while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off, position === undefined ? null : position + off);
}

export function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
}

export function isTempName(name: string): boolean {
  return /^\..*\.tmp-\d+$/.test(name);
}

/** Write all parts to file atomically. On any error the temp file is removed and the error rethrown. */
export function writeFileAtomic(file: string, parts: (Uint8Array | string)[], durable = true): void {
  const tmp = tempName(file);
  let fd = -1;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
    for (const p of parts) writeAll(fd, typeof p === 'string' ? Buffer.from(p) : p);
    if (durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd >= 0) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* may not exist */
    }
    throw e;
  }
}

/**
 * mkdir -p without Node's recursive mkdir, which spins forever on some special file systems
 * (e.g. a path under /proc). Errors are the plain ENOENT/EACCES/EROFS of the missing step.
 */
export function ensureDir(dir: string, depth = 0): void {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (st) {
    if (!st.isDirectory()) throw Object.assign(new Error(`${dir} exists and is not a folder`), { code: 'ENOTDIR' });
    return;
  }
  const parent = path.dirname(dir);
  if (parent !== dir && depth < 64) ensureDir(parent, depth + 1);
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}
