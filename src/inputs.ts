// Input files: expand folders, sort by name (so the order on the command line never matters),
// drop a file given twice, open .gz transparently.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Readable } from 'node:stream';
import { UserError } from './errors.js';

export interface InputList {
  files: string[];
  duplicates: string[];
  totalBytes: number;
}

const CSV_RE = /\.csv(\.gz)?$/i;

export function expandInputs(inputs: string[]): InputList {
  const found: string[] = [];
  for (const inp of inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(inp);
    } catch {
      throw new UserError(`${inp}: no such file or folder`);
    }
    if (st.isDirectory()) {
      const inside = fs.readdirSync(inp).filter((f) => CSV_RE.test(f)).map((f) => path.join(inp, f));
      if (inside.length === 0) throw new UserError(`${inp}: folder holds no .csv or .csv.gz files`);
      found.push(...inside);
    } else found.push(inp);
  }
  const seen = new Map<string, string>();
  const duplicates: string[] = [];
  for (const f of found) {
    const real = fs.realpathSync(f);
    if (seen.has(real)) duplicates.push(f);
    else seen.set(real, f);
  }
  const files = [...seen.values()].sort((a, b) => {
    const ka = path.basename(a);
    const kb = path.basename(b);
    return ka < kb ? -1 : ka > kb ? 1 : a < b ? -1 : a > b ? 1 : 0;
  });
  const totalBytes = files.reduce((s, f) => s + fs.statSync(f).size, 0);
  return { files, duplicates, totalBytes };
}

/** A byte stream of the file's CSV text: gunzipped when the file starts with the gzip magic. */
export function openInput(file: string): Readable {
  const fd = fs.openSync(file, 'r');
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

export function describeReadError(file: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof UserError) return err;
  if (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR' || err.errno === -3 || /incorrect header check|unexpected end of file|invalid/.test(err.message ?? ''))
    return new UserError(`${file}: corrupt gzip data (${err.message})`, 'check the download; gunzip -t FILE tells whether it is intact');
  if (err.code === 'EISDIR') return new UserError(`${file}: is a folder`);
  if (err.code === 'EACCES') return new UserError(`${file}: permission denied`);
  return err;
}
