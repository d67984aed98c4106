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
 * first hard-linked to a spare name in its folder, so that it outlives the rename, and the next
 * replacement in that folder is written over the spare's pages, truncated to its length. The replaced
 * name holds the old bytes or the new ones, whole, at every instant, as with writeFileAtomic; a spare is
 * a temp name (removed with the temp files of dead processes). One instance per thread: spares are
 * named by the thread and the process.
 *
 * A spare is only what no other name reaches: a replaced file that is a regular file with one link (not
 * a symlink, not a file the user hard-linked elsewhere), still with one link, the mode and owner of a
 * fresh temp file, in the same folder, when it is reused; its folder is fsynced (the rename that made it
 * a spare is on disk) before its pages are written. Anything else is removed and a fresh temp file
 * written instead.
 */
export class PageReuse {
  private slots = new Map<string, { spare: string | null; flip: number; durable: Promise<boolean> | null }>();
  /** Mode and owner of a fresh temp file here (the first replacement makes one). */
  private fresh: { mode: number; uid: number } | null = null;
  constructor(private readonly tag: number) {}

  /**
   * Replace file by parts. `during` runs on this thread while the thread pool syncs the new bytes to the
   * disk (pass 2 hashes the shard then); its value is returned once the file is replaced. One call at
   * a time per instance.
   */
  async replace<T>(file: string, parts: Uint8Array[], during: () => T): Promise<T> {
    const dir = path.dirname(file);
    let slot = this.slots.get(dir);
    if (!slot) this.slots.set(dir, (slot = { spare: null, flip: 0, durable: null }));
    let into = tempName(file);
    let fd = -1;
    const spare = slot.spare;
    slot.spare = null;
    if (spare) {
      const durable = slot.durable ? await slot.durable : false;
      slot.durable = null;
      if (durable) fd = this.openSpare(spare);
      if (fd >= 0) into = spare;
      else fs.rmSync(spare, { force: true });
    }
    let value: T;
    try {
      if (fd < 0) {
        fd = fs.openSync(into, 'w', 0o644);
        if (!this.fresh) {
          const st = fs.fstatSync(fd);
          this.fresh = { mode: st.mode & 0o7777, uid: st.uid };
        }
      }
      let at = 0;
      for (const p of parts) {
        writeAll(fd, p, at);
        at += p.byteLength;
      }
      fs.ftruncateSync(fd, at);
      const f = fd;
      const synced = new Promise<void>((resolve, reject) => fs.fsync(f, (e) => (e ? reject(e) : resolve())));
      try {
        value = during();
      } finally {
        await synced; // before the fd is closed, whatever during did
      }
      fd = -1;
      fs.closeSync(f);
    } catch (e) {
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch {
          /* already failing */
        }
      }
      fs.rmSync(into, { force: true });
      throw e;
    }
    // the old file lives on as the next spare, where nothing else names it
    slot.flip ^= 1;
    let next: string | null = path.join(dir, `.flowtensor-spare-${this.tag}-${slot.flip}.tmp-${process.pid}`);
    try {
      fs.rmSync(next, { force: true });
      const st = fs.lstatSync(file);
      if (st.isFile() && st.nlink === 1) fs.linkSync(file, next);
      else next = null;
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
    if (next) {
      slot.spare = next;
      slot.durable = syncDir(dir);
    }
    return value;
  }

  /** An open descriptor of the spare when it may be written over, else -1. */
  private openSpare(spare: string): number {
    let fd = -1;
    try {
      fd = fs.openSync(spare, fs.constants.O_RDWR | (fs.constants.O_NOFOLLOW ?? 0));
      const st = fs.fstatSync(fd);
      const fresh = this.fresh;
      if (st.isFile() && st.nlink === 1 && fresh && (st.mode & 0o7777) === fresh.mode && st.uid === fresh.uid) return fd;
    } catch {
      /* not usable: a fresh temp file instead */
    }
    if (fd >= 0) fs.closeSync(fd);
    return -1;
  }

}

/** fsync a folder (its renames on disk): false where that fails (a file system that cannot). */
function syncDir(dir: string): Promise<boolean> {
  return new Promise((resolve) =>
    fs.open(dir, 'r', (e, fd) => {
      if (e) return resolve(false);
      fs.fsync(fd, (e2) => fs.close(fd, () => resolve(!e2)));
    }),
  );
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
