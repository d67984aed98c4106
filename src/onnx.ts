// `flowtensor export --onnx RUN`: a trained run as one ONNX file (opset 17, IR version 8) that
// onnxruntime (Python, C++, Node, ...) scores with the same results as flowtensor's own model.
//
// Graph (N = the batch, symbolic):
//   seed:   features [N, F] -Transpose-> [F, N] -Unsqueeze-> [F, N, 1] -LSTM(H)-> Y_h [1, N, H]
//   window: features [N, W, F] -Transpose-> [W, N, F] -LSTM(H)-> Y_h [1, N, H]
//   then -Squeeze-> [N, H] -MatMul, Add-> logits [N, C] -Softmax-> probabilities [N, C]
// ONNX's LSTM takes time-major input (layout 0; onnxruntime's CPU LSTM does not support layout 1),
// gate order i, o, f, c with W [1, 4H, in], R [1, 4H, H], B [1, 8H] = (Wb, Rb); Keras/tfjs store
// kernel [in, 4H], recurrent kernel [H, 4H], bias [4H] in gate order i, f, c, o. The seed model's
// per-step Dense(1 -> P) and the LSTM kernel are one linear map of a scalar, so they are exported as
// the single input column x·(Wp·W) + (bp·W + b), as flowtensor computes them (src/fusedlstm.ts).
// Inputs are the *scaled* features; the run's scaler travels in the file's metadata (flowtensor.scaler,
// as flat per-feature arrays; see flatScaler) with the feature and label names.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { writeFileAtomic } from './atomic.js';
import { packageVersion } from './config.js';
import { readModelArtifacts } from './runio.js';
import { scalerParams } from '../stages/scale.js';
import type { ModelSpec } from './models.js';
import type { ScalerStats } from './manifest.js';
import { encodeModel, floatInfo, floatTensor, int64Tensor, intAttr, intsAttr, stringsAttr, type Model, type Node, type Tensor } from './onnxproto.js';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
export const ONNX_INPUT = 'features';
export const ONNX_OUTPUT = 'probabilities';

/** Where each ONNX gate (i, o, f, c) sits in Keras' order (i, f, c, o). */
const KERAS_GATE_OF_ONNX = [0, 3, 1, 2];

export type OnnxSpec = Pick<ModelSpec, 'kind' | 'features' | 'classes' | 'units' | 'project' | 'window'>;

export interface RunInfo {
  config: { model: 'seed' | 'window'; units: number; project: number; window: number; seed: number };
  features: string[];
  labels: string[];
  scaler: ScalerStats;
  flowtensor_version?: string;
}

export function readRunInfo(run: string): RunInfo {
  const f = path.join(run, 'run.json');
  if (!fs.existsSync(f)) throw new UserError(`${run}: no run.json`, 'give a run folder written by flowtensor train');
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8')) as RunInfo;
  } catch (e) {
    throw new UserError(`${f}: not valid JSON (${(e as Error).message})`);
  }
}

export function specOf(r: RunInfo): ModelSpec {
  return { kind: r.config.model, features: r.features.length, classes: r.labels.length, units: r.config.units, project: r.config.project, window: r.config.window, seed: r.config.seed };
}

/** Keras [in, 4H] (gates i, f, c, o) -> ONNX [4H, in] (gates i, o, f, c). */
export function onnxGateMatrix(kernel: ArrayLike<number>, inDim: number, H: number): Float32Array {
  const G = 4 * H;
  if (kernel.length !== inDim * G) throw new Error(`LSTM kernel: ${kernel.length} values, expected ${inDim} x ${G}`);
  const out = new Float32Array(G * inDim);
  for (let go = 0; go < 4; go++) {
    const gk = KERAS_GATE_OF_ONNX[go];
    for (let j = 0; j < H; j++) {
      const row = (go * H + j) * inDim;
      const col = gk * H + j;
      for (let k = 0; k < inDim; k++) out[row + k] = kernel[k * G + col];
    }
  }
  return out;
}

/** Keras bias [4H] -> ONNX B [8H]: the input bias in ONNX gate order, then a zero recurrent bias. */
export function onnxGateBias(bias: ArrayLike<number>, H: number): Float32Array {
  const out = new Float32Array(8 * H);
  for (let go = 0; go < 4; go++) for (let j = 0; j < H; j++) out[go * H + j] = bias[KERAS_GATE_OF_ONNX[go] * H + j];
  return out;
}

/** The weights of a run by name, float32, with their shapes checked against the spec. */
export type Weights = Map<string, Float32Array>;

export function expectedShapes(s: OnnxSpec): Record<string, number[]> {
  const G = 4 * s.units;
  const lstmIn = s.kind === 'seed' ? s.project : s.features;
  return {
    ...(s.kind === 'seed' ? { 'project/kernel': [1, s.project], 'project/bias': [s.project] } : {}),
    'LSTMnet/kernel': [lstmIn, G],
    'LSTMnet/recurrent_kernel': [s.units, G],
    'LSTMnet/bias': [G],
    'classes/kernel': [s.units, s.classes],
    'classes/bias': [s.classes],
  };
}

/** A run's weights as stored in weights.bin (no TensorFlow.js needed), checked against run.json. */
export function readRunWeights(run: string, s: OnnxSpec): Weights {
  const a = readModelArtifacts(run);
  const want = expectedShapes(s);
  const w: Weights = new Map();
  let off = 0;
  for (const sp of a.specs) {
    const n = sp.shape.reduce((x, y) => x * y, 1);
    if (sp.dtype !== 'float32') throw new UserError(`${run}/model.json: weight ${sp.name} is ${sp.dtype}, only float32 models export`);
    w.set(sp.name, new Float32Array(a.weightData.slice(off, off + n * 4)));
    off += n * 4;
    const e = want[sp.name];
    if (!e) throw new UserError(`${run}/model.json: unexpected weight ${sp.name} for a ${s.kind} model`, 'export reads runs written by flowtensor train');
    if (JSON.stringify(e) !== JSON.stringify(sp.shape)) throw new UserError(`${run}/model.json: weight ${sp.name} has shape [${sp.shape}], run.json implies [${e}]`, 'the run folder is damaged');
  }
  for (const k of Object.keys(want)) if (!w.has(k)) throw new UserError(`${run}/model.json: weight ${k} is missing`, 'the run folder is damaged');
  return w;
}

/**
 * The run's scaler as flat per-feature arrays, exactly what applyScaler does (a test checks it):
 * x = raw value (NaN -> 0, +Infinity -> posinf[f], -Infinity -> neginf[f]);
 * t = log1p[f] ? sign(x)·log1p(|x|) : x;  y = (t - center[f]) · inv_scale[f];
 * if clip: y = min(max(y, y_min[f]), y_max[f]).
 */
export interface FlatScaler {
  log1p: boolean[];
  posinf: number[];
  neginf: number[];
  center: number[];
  inv_scale: number[];
  clip: boolean;
  y_min: number[];
  y_max: number[];
}

export function flatScaler(sc: ScalerStats, features: string[]): FlatScaler {
  const F = features.length;
  const { center, inv, yMin, yMax } = scalerParams(sc, F);
  const logSet = new Set(sc.log1p);
  // as applyScaler: +Infinity -> train max unless 'zero'/'train_min'; -Infinity -> train min unless 'zero'/'train_max'
  const rep = (p: string, f: number, dflt: 'min' | 'max') => (p === 'zero' ? 0 : p === 'train_min' ? sc.min[f] : p === 'train_max' ? sc.max[f] : sc[dflt][f]);
  return {
    log1p: features.map((f) => logSet.has(f)),
    posinf: features.map((_, f) => rep(sc.posinf[f], f, 'max')),
    neginf: features.map((_, f) => rep(sc.neginf[f], f, 'min')),
    center: Array.from(center),
    inv_scale: Array.from(inv),
    clip: sc.clip,
    y_min: Array.from(yMin),
    y_max: Array.from(yMax),
  };
}

/** The ONNX model of a spec and its weights; meta becomes the file's metadata_props. */
export function onnxModelBytes(s: OnnxSpec, w: Weights, meta: Record<string, string> = {}): Uint8Array {
  const H = s.units;
  const G = 4 * H;
  const get = (k: string) => w.get(k)!;
  let lstmW: Float32Array;
  let lstmB: Float32Array;
  let lstmIn: number;
  if (s.kind === 'seed') {
    // Dense(1 -> P) then the LSTM kernel: x·(Wp·W) + (bp·W + b), summed in float64
    const wp = get('project/kernel');
    const bp = get('project/bias');
    const k = get('LSTMnet/kernel');
    const b = get('LSTMnet/bias');
    const a = new Float32Array(G);
    const c0 = new Float32Array(G);
    for (let g = 0; g < G; g++) {
      let sa = 0;
      let sc = b[g];
      for (let p = 0; p < s.project; p++) {
        sa += wp[p] * k[p * G + g];
        sc += bp[p] * k[p * G + g];
      }
      a[g] = sa;
      c0[g] = sc;
    }
    lstmIn = 1;
    lstmW = onnxGateMatrix(a, 1, H);
    lstmB = onnxGateBias(c0, H);
  } else {
    lstmIn = s.features;
    lstmW = onnxGateMatrix(get('LSTMnet/kernel'), s.features, H);
    lstmB = onnxGateBias(get('LSTMnet/bias'), H);
  }
  const init: Tensor[] = [
    floatTensor('lstm_W', [1, G, lstmIn], lstmW),
    floatTensor('lstm_R', [1, G, H], onnxGateMatrix(get('LSTMnet/recurrent_kernel'), H, H)),
    floatTensor('lstm_B', [1, 2 * G], lstmB),
    floatTensor('classes_kernel', [H, s.classes], get('classes/kernel')),
    floatTensor('classes_bias', [s.classes], get('classes/bias')),
    int64Tensor('axes_0', [1], [0]),
  ];
  const nodes: Node[] = [];
  if (s.kind === 'seed') {
    init.push(int64Tensor('axes_2', [1], [2]));
    nodes.push({ name: 'steps', op_type: 'Transpose', input: [ONNX_INPUT], output: ['steps'], attribute: [intsAttr('perm', [1, 0])] });
    nodes.push({ name: 'steps_1', op_type: 'Unsqueeze', input: ['steps', 'axes_2'], output: ['lstm_x'] });
  } else {
    nodes.push({ name: 'steps', op_type: 'Transpose', input: [ONNX_INPUT], output: ['lstm_x'], attribute: [intsAttr('perm', [1, 0, 2])] });
  }
  nodes.push({
    name: 'LSTMnet',
    op_type: 'LSTM',
    input: ['lstm_x', 'lstm_W', 'lstm_R', 'lstm_B'],
    output: ['', 'lstm_h'],
    attribute: [intAttr('hidden_size', H), intAttr('layout', 0), stringsAttr('activations', ['Sigmoid', 'Tanh', 'Tanh'])],
  });
  nodes.push({ name: 'last', op_type: 'Squeeze', input: ['lstm_h', 'axes_0'], output: ['last_h'] });
  nodes.push({ name: 'classes_matmul', op_type: 'MatMul', input: ['last_h', 'classes_kernel'], output: ['logits_0'] });
  nodes.push({ name: 'classes_add', op_type: 'Add', input: ['logits_0', 'classes_bias'], output: ['logits'] });
  nodes.push({ name: 'softmax', op_type: 'Softmax', input: ['logits'], output: [ONNX_OUTPUT], attribute: [intAttr('axis', -1)] });
  const inDims = s.kind === 'seed' ? ['N', s.features] : ['N', s.window, s.features];
  const model: Model = {
    ir_version: ONNX_IR_VERSION,
    producer_name: 'flowtensor',
    producer_version: packageVersion(),
    model_version: 1,
    doc_string: `flowtensor ${s.kind} model: LSTM(${H}) -> Dense(${s.classes}, softmax). Input: scaled features (see metadata flowtensor.scaler).`,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: `flowtensor_${s.kind}`,
      node: nodes,
      initializer: init,
      input: [floatInfo(ONNX_INPUT, inDims, s.kind === 'seed' ? 'N flows x F scaled features (run.json order)' : 'N windows of W consecutive flows (the scored flow last) x F scaled features')],
      output: [floatInfo(ONNX_OUTPUT, ['N', s.classes], 'class probabilities, labels in metadata flowtensor.labels')],
    },
    metadata_props: Object.entries(meta).map(([key, value]) => ({ key, value })),
  };
  return encodeModel(model);
}

/** The ONNX model of a saved run, with its features, labels and scaler in the metadata. */
export function runOnnxBytes(run: string): Uint8Array {
  const info = readRunInfo(run);
  const s = specOf(info);
  if (s.kind !== 'seed' && s.kind !== 'window') throw new UserError(`${run}/run.json: model kind ${JSON.stringify(s.kind)} cannot be exported`, 'seed and window models export');
  const w = readRunWeights(run, s);
  return onnxModelBytes(s, w, {
    'flowtensor.version': packageVersion(),
    'flowtensor.model': s.kind,
    'flowtensor.window': String(s.kind === 'window' ? s.window : 1),
    'flowtensor.features': JSON.stringify(info.features),
    'flowtensor.labels': JSON.stringify(info.labels),
    'flowtensor.scaler': JSON.stringify(flatScaler(info.scaler, info.features)),
  });
}

/** `flowtensor export --onnx RUN [--out FILE]`: writes RUN/model.onnx (or FILE) atomically. */
export function exportOnnx(o: { run: string; out?: string }): { file: string; bytes: number } {
  if (!fs.existsSync(o.run) || !fs.statSync(o.run).isDirectory()) throw new UserError(`${o.run}: no such run folder`, 'give a run folder written by flowtensor train');
  const bytes = runOnnxBytes(o.run);
  const file = o.out ?? path.join(o.run, 'model.onnx');
  writeFileAtomic(file, [bytes]);
  return { file, bytes: bytes.byteLength };
}
