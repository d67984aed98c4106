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

const SPARE = /^\.flowtensor-spare-\d+-[01]\.tmp-(\d+)$/;

/**
 * Replace files atomically, as writeFileAtomic does (a temp file written whole and fsynced, then
 * renamed over the file), reusing the pages of the files it replaces. Pass 2 replaces every unscaled
 * shard by its scaled twin of about the same size; a new temp file takes fresh pages from the page cache
 * (~0.3 s per thread at 2.83M rows), and the rename over frees the old file's. Here the old file is
 * first hard-linked to a spare name, so that it outlives the rename, and the next replacement is written
 * over the spare's pages, truncated to its length. The replaced name holds the old bytes or the new
 * ones, whole, at every instant, as with writeFileAtomic; a spare is a temp name (removed with the
 * temp files of dead processes). One per thread: spares are named by the thread and the process.
 */
export class PageReuse {
  private spare: string | null = null;
  private flip = 0;
  constructor(private readonly tag: number) {}

  /**
   * Replace file by parts. `during` runs on this thread while the thread pool syncs the new bytes to the
   * disk (pass 2 hashes the shard then); its value is returned once the file is replaced. One call at
   * a time per instance.
   */
  async replace<T>(file: string, parts: Uint8Array[], during: () => T): Promise<T> {
    const fresh = tempName(file);
    let into = this.spare ?? fresh;
    this.spare = null;
    let fd = -1;
    let value: T;
    try {
      try {
        fd = fs.openSync(into, into === fresh ? 'w' : 'r+', 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || into === fresh) throw e;
        into = fresh; // the spare was removed meanwhile: a fresh temp file
        fd = fs.openSync(into, 'w', 0o644);
      }
      let at = 0;
      for (const p of parts) {
        writeAll(fd, p, at);
        at += p.byteLength;
      }
      fs.ftruncateSync(fd, at);
      const synced = new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
      try {
        value = during();
      } finally {
        await synced; // before the fd is closed, whatever during did
      }
      fs.closeSync(fd);
      fd = -1;
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      fs.rmSync(into, { force: true });
      throw e;
    }
    // the old file lives on as the next spare; where it cannot be linked, there is none
    this.flip ^= 1;
    let next: string | null = path.join(path.dirname(file), `.flowtensor-spare-${this.tag}-${this.flip}.tmp-${process.pid}`);
    try {
      fs.rmSync(next, { force: true });
      fs.linkSync(file, next);
    } catch {
      next = null;
    }
    try {
      fs.renameSync(into, file);
    } catch (e) {
      fs.rmSync(into, { force: true });
      if (next) fs.rmSync(next, { force: true });
      throw e;
    }
    this.spare = next;
    return value;
  }

  /** Remove this thread's spare (pass 2 over). */
  release(): void {
    if (this.spare) fs.rmSync(this.spare, { force: true });
    this.spare = null;
  }
}

/** Remove the spares of this process (any thread's) in the given folders. */
export function removeSpares(dirs: Iterable<string>): void {
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(d);
    } catch {
      continue;
    }
    for (const f of names) if (SPARE.exec(f)?.[1] === String(process.pid)) fs.rmSync(path.join(d, f), { force: true });
  }
}
