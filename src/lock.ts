// One writer per output folder: prep, shard and scale into a shard folder, train into a run folder.
// The lock is a file created exclusively (O_EXCL) holding the owner's process id; a lock whose process
// is gone (killed) is taken over, so a crash never blocks the folder for good.
import fs from 'node:fs';
import path from 'node:path';
import { ensureDir } from './atomic.js';
import { UserError } from './errors.js';

export const LOCK_NAME = '.flowtensor.lock';

/**
 * Whether a process with this id runs (EPERM: it runs as another user). A killed process its parent has
 * not reaped yet (a zombie: signal 0 still reaches it) does not; Linux says so in /proc.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.charAt(stat.lastIndexOf(')') + 2); // after "pid (name) "
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc here: signal 0 is the answer
  }
}

/** An empty lock younger than this may be mid-write by the fallback path; older, it is stale. */
const EMPTY_STALE_MS = 5000;

function emptyAndOld(file: string): boolean {
  try {
    return Date.now() - fs.statSync(file).mtimeMs > EMPTY_STALE_MS;
  } catch {
    return true; // removed meanwhile: try again
  }
}

/** The temp name of a lock being written, less the writer's process id. */
function lockTempBase(file: string): string {
  return `${path.join(path.dirname(file), `.${path.basename(file).replace(/^\./, '')}`)}.tmp-`;
}

/** Remove the temp files of this lock left by writers killed between the link and the unlink. */
function removeDeadLockTemps(file: string): void {
  const base = path.basename(lockTempBase(file));
  for (const n of staleTemps(path.dirname(file))) if (path.basename(n).startsWith(base)) fs.rmSync(n, { force: true });
}

/**
 * Create file holding text, or return false if it exists. The file appears with its content at
 * once: written under a temp name, then hard-linked to its name (link fails if the name exists), so
 * a process killed at any point never leaves an empty lock that reads as held. Where the file system
 * has no hard links, an exclusive create and a write.
 */
function createWithContent(file: string, text: string): boolean {
  const tmp = `${lockTempBase(file)}${process.pid}`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  try {
    const fd = fs.openSync(file, 'wx', 0o644);
    try {
      fs.writeSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Take dir's lock for `what` (e.g. 'prep'); returns the function that releases it. */
export function lockDir(dir: string, what: string, name = LOCK_NAME): () => void {
  const existed = fs.existsSync(dir);
  ensureDir(dir);
  const file = path.join(dir, name);
  const mine = `${process.pid} ${what}\n`;
  for (let attempt = 0; ; attempt++) {
    if (createWithContent(file, mine)) {
      removeDeadLockTemps(file);
      break;
    }
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      /* removed meanwhile: try again */
    }
    const [pidText, other] = text.trim().split(/\s+/);
    const pid = Number(pidText);
    // a dead owner's lock is stale; so is an empty one old enough not to be a writer's (only a
    // version that wrote the lock in two steps, killed between them, could leave one)
    if (attempt < 3 && (text === '' ? emptyAndOld(file) : !processAlive(pid))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    throw new UserError(`${dir}: in use by another flowtensor ${other ?? 'command'}${pid ? ` (process ${pid})` : ''}`, `wait for it to finish, or write elsewhere; a lock left by a killed process is taken over (${file})`);
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      if (fs.readFileSync(file, 'utf8') === mine) fs.rmSync(file, { force: true });
      // a folder made only to hold the lock (the command failed before writing) does not stay behind
      if (!existed) fs.rmdirSync(dir);
    } catch {
      /* gone already, or not empty */
    }
  };
}

/** Run f while holding dir's lock. */
export async function withDirLock<T>(dir: string, what: string, f: () => Promise<T> | T, name?: string): Promise<T> {
  const release = lockDir(dir, what, name);
  try {
    return await f();
  } finally {
    release();
  }
}

/** Temp files (`.NAME.tmp-PID`) and folders in dir left by processes that are gone. */
export function staleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => {
    const m = /^\..*\.tmp-(\d+)$/.exec(n);
    return m !== null && (Number(m[1]) === process.pid ? false : !processAlive(Number(m[1])));
  }).map((n) => path.join(dir, n));
}

/** Remove the stale temp files of a shard folder and its split folders (a pass killed midway leaves them). */
export function removeStaleTemps(dir: string): void {
  for (const d of [dir, ...['train', 'val', 'test'].map((s) => path.join(dir, s))]) for (const t of staleTemps(d)) fs.rmSync(t, { recursive: true, force: true });
}
