// Input files: expand folders, sort by name (so the order on the command line never matters),
// drop a file given twice (under any name: symlinks and hard links too), open .gz transparently.
// Pipes and `<(…)` are read as streams, once, from their start.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { UserError } from './errors.js';
import { fileIdOf, kindOf, pathError } from './safefile.js';

export interface InputList {
  files: string[];
  duplicates: string[];
  totalBytes: number;
}

const CSV_RE = /\.csv(\.gz)?$/i;

/** A readable input: a regular file, a pipe (FIFO, `<(…)`) or a character device such as /dev/stdin. */
function inputStat(file: string, inFolder: string | null): fs.Stats {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw pathError(file, e);
  }
  if (inFolder !== null && st.isDirectory()) throw new UserError(`${file}: a folder inside ${inFolder} named like a CSV file`, 'flowtensor reads the CSV files of a folder, not its subfolders; give them directly');
  if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice() && !st.isSocket() && !st.isDirectory()) throw new UserError(`${file}: ${kindOf(st)}; give a CSV file, a folder of them or a pipe`);
  return st;
}

export function expandInputs(inputs: string[]): InputList {
  const found: { file: string; st: fs.Stats }[] = [];
  for (const inp of inputs) {
    const st = inputStat(inp, null);
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = fs.readdirSync(inp);
      } catch (e) {
        throw pathError(inp, e);
      }
      const inside = names.filter((f) => CSV_RE.test(f)).map((f) => path.join(inp, f));
      if (inside.length === 0) throw new UserError(`${inp}: folder holds no .csv or .csv.gz files`);
      for (const f of inside) found.push({ file: f, st: inputStat(f, inp) });
    } else found.push({ file: inp, st });
  }
  const seen = new Map<string, { file: string; st: fs.Stats }>();
  const duplicates: string[] = [];
  for (const f of found) {
    const id = fileIdOf(f.st);
    if (seen.has(id)) duplicates.push(f.file);
    else seen.set(id, f);
  }
  const kept = [...seen.values()].sort((x, y) => {
    const a = x.file;
    const b = y.file;
    const ka = path.basename(a);
    const kb = path.basename(b);
    return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  });
  const totalBytes = kept.reduce((s, f) => s + (f.st.isFile() ? f.st.size : 0), 0);
  return { files: kept.map((f) => f.file), duplicates, totalBytes };
}

/** The file opened for reading; a failure is the one-line path error (missing, a loop, no permission). */
function openRead(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (e) {
    throw pathError(file, e);
  }
}

/** A byte stream of the file's CSV text: gunzipped when the file starts with the gzip magic. */
export function openInput(file: string): Readable {
  const fd = openRead(file);
  const st = fs.fstatSync(fd);
  if (st.isDirectory()) {
    fs.closeSync(fd);
    throw new UserError(`${file}: is a folder`);
  }
  if (!st.isFile()) return sniffGzip(fs.createReadStream('', { fd, highWaterMark: 1 << 20 }));
  const head = Buffer.alloc(2);
  const n = fs.readSync(fd, head, 0, 2, 0);
  const raw = fs.createReadStream('', { fd, start: 0, highWaterMark: 1 << 20 });
  if (n === 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gz = zlib.createGunzip({ chunkSize: 1 << 20 });
    raw.on('error', (e) => gz.destroy(e));
    raw.pipe(gz);
    gz.on('error', () => raw.destroy());
    return gz;
  }
  return raw;
}

/**
 * The bytes [start, end) of a regular file that is not gzip (end -1: to its end), in chunks of two
 * reused 1 MiB buffers (the next is read while the consumer parses one): each chunk is valid until the consumer asks for the next (a `for await` body
 * that is done with it before the loop goes on). No buffer is allocated per read, so the reader leaves
 * no garbage and touches no fresh memory. Anything else (gzip, a pipe) is read as openInput reads it.
 * `prefix` (a chunk's header line) comes first; the file is closed when the consumer stops, early or not.
 */
export function readInput(file: string, start = 0, end = -1, prefix: Buffer | null = null): AsyncIterable<Buffer> {
  const fd = openRead(file);
  const st = fs.fstatSync(fd);
  const head = Buffer.alloc(2);
  const plain = st.isFile() && !(fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b);
  if (!plain) {
    fs.closeSync(fd);
    const src: AsyncIterable<Buffer> = start === 0 && end < 0 ? openInput(file) : fs.createReadStream(file, { start, end: end < 0 ? undefined : end - 1, highWaterMark: 1 << 20 });
    if (!prefix) return src;
    return (async function* withPrefix(): AsyncGenerator<Buffer> {
      yield prefix;
      yield* src;
    })();
  }
  return (async function* chunks(): AsyncGenerator<Buffer> {
    // two buffers: the next read runs in the thread pool while the consumer parses the chunk before
    // (it is done with a chunk when it asks for the next, so the buffer of the one before is free)
    const bufs = [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
    let pos = start;
    let reading: Promise<number> | null = null;
    const read = (buf: Buffer): Promise<number> | null => {
      const want = end < 0 ? buf.length : Math.min(buf.length, end - pos);
      if (want <= 0) return null;
      const at = pos;
      const p = new Promise<number>((res, rej) => fs.read(fd, buf, 0, want, at, (e, k) => (e ? rej(e) : res(k))));
      p.catch(() => undefined); // failing while the chunk before is parsed is not unhandled: it is awaited next
      return p;
    };
    try {
      if (prefix) yield prefix;
      reading = read(bufs[0]);
      for (let k = 0; reading; k ^= 1) {
        const n = await reading;
        reading = null;
        if (n === 0) return;
        pos += n;
        reading = read(bufs[k ^ 1]);
        yield bufs[k].subarray(0, n);
      }
    } finally {
      // a read still running writes into a buffer nobody reads; the descriptor waits for it
      if (reading) await reading.catch(() => 0);
      fs.closeSync(fd);
    }
  })();
}

/** A stream that cannot be read twice (a pipe): look at its first bytes as they pass, gunzip when they say gzip. */
function sniffGzip(raw: Readable): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    const it = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    while (head.length < 2) {
      const r = await it.next();
      if (r.done) break;
      head = Buffer.concat([head, r.value]);
    }
    async function* rest(): AsyncGenerator<Buffer> {
      if (head.length) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
      const gz = zlib.createGunzip({ chunkSize: 1 << 20 });
      const src = Readable.from(rest());
      src.on('error', (e) => gz.destroy(e));
      src.pipe(gz);
      for await (const c of gz) yield c as Buffer;
    } else yield* rest();
  }
  return Readable.from(bytes(), { objectMode: false });
}

export function describeReadError(file: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof UserError) return err;
  if (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR' || err.errno === -3 || /incorrect header check|unexpected end of file|invalid/.test(err.message ?? ''))
    return new UserError(`${file}: corrupt gzip data (${err.message})`, 'check the download; gunzip -t FILE tells whether it is intact');
  if (err.code === 'EISDIR') return new UserError(`${file}: is a folder`);
  if (err.code === 'EACCES') return new UserError(`${file}: permission denied`);
  return err;
}

/** Total size of the inputs when every one is a regular file that is not gzip (whose bytes read are its size), else 0. */
export function plainBytes(files: string[]): number {
  let total = 0;
  for (const f of files) {
    try {
      const st = fs.statSync(f);
      if (!st.isFile()) return 0;
      const fd = fs.openSync(f, 'r');
      const head = Buffer.alloc(2);
      const n = fs.readSync(fd, head, 0, 2, 0);
      fs.closeSync(fd);
      if (n === 2 && head[0] === 0x1f && head[1] === 0x8b) return 0;
      total += st.size;
    } catch {
      return 0;
    }
  }
  return total;
}
