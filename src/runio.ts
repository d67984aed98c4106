// Saving and loading models in the tfjs layers format (model.json + weights.bin), which
// tf.loadLayersModel of tfjs-node and tfjs-converter read. Pure tfjs has no file:// handler,
// so this one writes atomically and confines every path to the run folder.
import fs from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { ensureDir, writeFileAtomic } from './atomic.js';
import { safeJoin, writeJsonAtomic } from './manifest.js';
import { UserError } from './errors.js';
import { MAX_BINARY_BYTES, confine, kindOf, readJsonFile, readRegularFile } from './safefile.js';
import { packageVersion } from './config.js';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

export async function saveModel(tf: Tf, model: TF.LayersModel, dir: string): Promise<void> {
  ensureDir(dir);
  await model.save(
    tf.io.withSaveHandler(async (art) => {
      const data = art.weightData as ArrayBuffer;
      writeFileAtomic(path.join(dir, 'weights.bin'), [new Uint8Array(data)]);
      writeJsonAtomic(path.join(dir, 'model.json'), {
        format: 'layers-model',
        generatedBy: `flowtensor ${packageVersion()}`,
        convertedBy: null,
        modelTopology: art.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: art.weightSpecs }],
      });
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: data.byteLength } };
    }),
  );
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

/** model.json's topology and the weights as stored (specs in order, one buffer): data, not code. */
export interface ModelArtifacts {
  modelTopology: object;
  specs: WeightSpec[];
  weightData: ArrayBuffer;
}

/** Read model.json + weight files from dir; paths and sizes are checked first. */
export function readModelArtifacts(dir: string): ModelArtifacts {
  const mj = path.join(dir, 'model.json');
  if (!fs.existsSync(mj)) throw new UserError(`${dir}: no model.json`, 'give a run folder written by flowtensor train');
  const json = readJsonFile<{ modelTopology: unknown; weightsManifest: { paths: string[]; weights: WeightSpec[] }[] }>(mj, { within: dir, hint: 'the run folder is damaged' });
  if (!json.modelTopology || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) throw new UserError(`${mj}: not a tfjs layers model`, 'the run folder is damaged');
  const specs: WeightSpec[] = [];
  const files: { full: string; p: string; size: number }[] = [];
  let expected = 0;
  // every entry checked and every size summed before a byte of weights is read
  for (const g of json.weightsManifest) {
    if (!g || typeof g !== 'object' || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw new UserError(`${mj}: a weightsManifest entry lacks paths or weights`, 'the run folder is damaged');
    for (const w of g.weights) {
      if (!w || typeof w !== 'object' || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !(w.dtype in BYTES)) throw new UserError(`${mj}: weight ${JSON.stringify(String(w?.name)).slice(0, 60)} has a bad name, shape or dtype`, 'the run folder is damaged');
      expected += w.shape.reduce((a, b) => a * b, 1) * BYTES[w.dtype];
      specs.push(w);
    }
    for (const p of g.paths) {
      const full = safeJoin(dir, p, mj);
      confine(full, dir, 'weight file');
      const st = fs.statSync(full, { throwIfNoEntry: false });
      if (!st) throw new UserError(`${mj}: weight file ${p} is missing`);
      if (!st.isFile()) throw new UserError(`${mj}: weight file ${p} is ${kindOf(st)}, not a regular file; refused`);
      files.push({ full, p, size: st.size });
    }
  }
  const have = files.reduce((s, f) => s + f.size, 0);
  if (have > expected) throw new UserError(`${mj}: weight files hold more bytes than the manifest's ${expected}`);
  if (have !== expected) throw new UserError(`${mj}: weight files hold ${have} bytes, the manifest needs ${expected}`, 'the run folder is damaged');
  const parts = files.map((f) => readRegularFile(f.full, { maxBytes: MAX_BINARY_BYTES, exactBytes: f.size, within: dir, what: 'weight file' }));
  const buf = Buffer.concat(parts);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  return { modelTopology: json.modelTopology as object, specs, weightData };
}

/** Load model.json + weight files from dir as a tfjs layers model. */
export async function loadModel(tf: Tf, dir: string): Promise<TF.LayersModel> {
  const a = readModelArtifacts(dir);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: a.modelTopology, weightSpecs: a.specs as TF.io.WeightsManifestEntry[], weightData: a.weightData }));
}

/** Replace folder `dst` by `src` (a finished temp folder) with a window of at most one rename. */
export function swapDir(src: string, dst: string): void {
  const old = `${dst}.old-${process.pid}`;
  if (fs.existsSync(dst)) fs.renameSync(dst, old);
  fs.renameSync(src, dst);
  fs.rmSync(old, { recursive: true, force: true });
}

/** The checkpoint folder to resume from: `last`, or one left half-swapped by a crash. */
export function findCheckpoint(run: string): string | null {
  const last = path.join(run, 'last');
  if (fs.existsSync(path.join(last, 'state.json'))) return last;
  const olds = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => /^last\.old-\d+$/.test(f)) : [];
  for (const o of olds) if (fs.existsSync(path.join(run, o, 'state.json'))) return path.join(run, o);
  return null;
}
