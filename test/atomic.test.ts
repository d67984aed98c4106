// Atomic replacement over reused pages (src/atomic.ts PageReuse), as pass 2 uses it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PageReuse, removeSpares } from '../src/atomic.js';
import { prep } from '../src/prep.js';
import { readManifest } from '../src/manifest.js';
import { SPLITS } from '../src/batch.js';
import { synthFile, tmpdir } from './helpers.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
const spares = (d: string) => fs.readdirSync(d).filter((f) => f.startsWith('.flowtensor-spare-'));

test('PageReuse: each file holds exactly its new bytes (longer, shorter, two folders); the old bytes live on only as its folder\'s spare', async () => {
  const d = tmpdir();
  const a = path.join(d, 'a');
  const b = path.join(d, 'b');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  const files = [path.join(a, 'x'), path.join(a, 'y'), path.join(b, 'z'), path.join(a, 'w'), path.join(b, 'v')];
  const old = [50_000, 10, 70_000, 3_000, 4_000].map((n, k) => bytes(n, k));
  files.forEach((f, k) => fs.writeFileSync(f, old[k]));
  const fresh = [20_000, 90_000, 5, 3_000, 80_000].map((n, k) => bytes(n, 100 + k));
  const r = new PageReuse(7);
  const oldIno = files.map((f) => fs.statSync(f).ino);
  for (let k = 0; k < files.length; k++) {
    const f = files[k];
    // in parts, as encodeSafetensors gives them; during runs before the file is replaced, its value returned
    const seen = await r.replace(f, [fresh[k].subarray(0, 3), fresh[k].subarray(3)], () => fs.readFileSync(f));
    assert.ok(seen.equals(Buffer.from(old[k])), 'during runs before the rename');
    assert.ok(fs.readFileSync(f).equals(Buffer.from(fresh[k])), `file ${k} holds its new bytes`);
    // the replaced file's old bytes are the spare of its folder now; no other temp file is left
    const dir = path.dirname(f);
    assert.equal(spares(dir).length, 1, `one spare in its folder after file ${k}`);
    assert.ok(fs.readFileSync(path.join(dir, spares(dir)[0])).equals(Buffer.from(old[k])));
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.tmp-') && !n.startsWith('.flowtensor-spare-')), []);
  }
  // a folder's second and later files went over the inode replaced before in it (its pages reused)
  assert.equal(fs.statSync(files[1]).ino, oldIno[0]);
  assert.equal(fs.statSync(files[3]).ino, oldIno[1]);
  assert.equal(fs.statSync(files[4]).ino, oldIno[2]);
  removeSpares([a, b]);
  assert.deepEqual([...spares(a), ...spares(b)], []);
  // a spare removed behind its back is not missed; a file that did not exist is written too
  const n = path.join(b, 'new');
  await r.replace(n, [bytes(1234, 9)], () => 0);
  assert.ok(fs.readFileSync(n).equals(Buffer.from(bytes(1234, 9))));
  removeSpares([a, b]);
  assert.deepEqual([...spares(a), ...spares(b)], []);
  assert.deepEqual(fs.readdirSync(a).sort(), ['w', 'x', 'y']);
});

test('PageReuse never writes into what another name reaches: a file hard-linked elsewhere, a symlink\'s target', async () => {
  const d = tmpdir();
  const dir = path.join(d, 'work');
  const keep = path.join(d, 'keep');
  const elsewhere = path.join(d, 'elsewhere');
  for (const x of [dir, keep, elsewhere]) fs.mkdirSync(x);
  const names = ['s0', 's1', 's2', 's3', 's4'];
  names.forEach((n, k) => fs.writeFileSync(path.join(dir, n), bytes(5000, k)));
  // s1 and s3 also have a name outside (cp -al), s2 is a symlink to a file outside
  fs.linkSync(path.join(dir, 's1'), path.join(keep, 's1'));
  fs.linkSync(path.join(dir, 's3'), path.join(keep, 's3'));
  fs.renameSync(path.join(dir, 's2'), path.join(elsewhere, 's2'));
  fs.symlinkSync(path.join(elsewhere, 's2'), path.join(dir, 's2'));
  const r = new PageReuse(9);
  for (let k = 0; k < names.length; k++) await r.replace(path.join(dir, names[k]), [bytes(5000, 50 + k)], () => 0);
  names.forEach((n, k) => assert.ok(fs.readFileSync(path.join(dir, n)).equals(Buffer.from(bytes(5000, 50 + k))), n));
  assert.ok(fs.readFileSync(path.join(keep, 's1')).equals(Buffer.from(bytes(5000, 1))), 'the hard link outside keeps its bytes');
  assert.ok(fs.readFileSync(path.join(keep, 's3')).equals(Buffer.from(bytes(5000, 3))));
  assert.ok(fs.readFileSync(path.join(elsewhere, 's2')).equals(Buffer.from(bytes(5000, 2))), 'the symlink\'s target keeps its bytes');
  removeSpares([dir]);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), []);
});

test('PageReuse: a failed write, or a failure while syncing, leaves the file as it was and no temp file', async () => {
  const d = tmpdir();
  const f = path.join(d, 'f');
  const g = path.join(d, 'g');
  fs.writeFileSync(f, 'old f');
  fs.writeFileSync(g, 'old g');
  const r = new PageReuse(8);
  await r.replace(f, [Buffer.from('new f')], () => 0); // g's replacement then goes over the spare (old f)
  const bad = { byteLength: 3 } as unknown as Uint8Array; // not a buffer: the write throws
  await assert.rejects(r.replace(g, [Buffer.from('new g'), bad], () => 0));
  assert.equal(fs.readFileSync(g, 'utf8'), 'old g');
  assert.equal(fs.readFileSync(f, 'utf8'), 'new f');
  assert.deepEqual(fs.readdirSync(d).sort(), ['f', 'g']);
  await assert.rejects(
    r.replace(g, [Buffer.from('new g')], () => {
      throw new Error('hashing failed');
    }),
    /hashing failed/,
  );
  assert.equal(fs.readFileSync(g, 'utf8'), 'old g');
  assert.deepEqual(fs.readdirSync(d).sort(), ['f', 'g']);
  await r.replace(g, [Buffer.from('newer g')], () => 0);
  assert.equal(fs.readFileSync(g, 'utf8'), 'newer g');
  removeSpares([d]);
  assert.deepEqual(fs.readdirSync(d).sort(), ['f', 'g']);
});

test('prep leaves no spare behind, with worker threads or without', async () => {
  const d = tmpdir();
  const files = [0, 1].map((k) => synthFile(d, `f${k}.csv`, { rows: 20000, seed: 70 + k }));
  for (const workers of [0, 1, 2]) {
    const out = path.join(d, `o${workers}`);
    await prep({ out, inputs: files, shardRows: 4096, workers });
    readManifest(out, { verify: 'sha256' });
    for (const s of SPLITS) assert.deepEqual(fs.readdirSync(path.join(out, s)).filter((f) => f.startsWith('.')), [], `${s} with ${workers} workers`);
  }
});

test('readInput reads ahead into two buffers: the chunks are the range\'s bytes in order; stopping early closes the file', async () => {
  const { readInput } = await import('../src/inputs.js');
  const d = tmpdir();
  const f = path.join(d, 'big.bin');
  const data = bytes(3 * (1 << 20) + 12345, 3);
  fs.writeFileSync(f, data);
  for (const [start, end] of [[0, -1], [5, 2 * (1 << 20) + 7], [1 << 20, -1], [100, 100]]) {
    const parts: Buffer[] = [];
    for await (const c of readInput(f, start, end)) parts.push(Buffer.from(c)); // copied: the buffer is reused
    const want = Buffer.from(data.subarray(start, end < 0 ? data.length : end));
    assert.ok(Buffer.concat(parts).equals(want), `range ${start}-${end}`);
  }
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  for await (const c of readInput(f)) {
    assert.equal(c.length, 1 << 20);
    break; // a read of the next chunk is running now
  }
  assert.equal(fds(), before);
});
