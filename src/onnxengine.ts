// `predict --engine onnx`: the run's model (exported in memory by src/onnx.ts) scored by onnxruntime-node,
// an optional dependency (install it with ONNXRUNTIME_NODE_INSTALL=skip: its CPU runtime is in the npm
// package; the variable skips a GPU download). One intra-op thread per session: predict runs a session
// per scoring thread, as it runs a tfjs model per thread with the WebAssembly kernel (the default).
// The module is loaded by name at run time, so flowtensor builds and runs without it.
import { UserError } from './errors.js';
import { runOnnxBytes, ONNX_INPUT, ONNX_OUTPUT } from './onnx.js';
import type { ModelSpec } from './models.js';

// the few onnxruntime-common types used here (its own typings are absent when it is not installed)
interface OrtTensor {
  data: unknown;
  dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface Ort {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
}

let loading: Promise<{ ort: Ort | null; reason: string }> | null = null;

/** onnxruntime-node, or null and why (FLOWTENSOR_ONNXRUNTIME_MODULE names another module: for tests). */
export function loadOnnxRuntime(): Promise<{ ort: Ort | null; reason: string }> {
  loading ??= (async () => {
    const name = process.env.FLOWTENSOR_ONNXRUNTIME_MODULE || 'onnxruntime-node';
    try {
      const m = (await import(name)) as { default?: Ort } & Ort;
      const ort = m.InferenceSession ? m : m.default!;
      if (!ort?.InferenceSession) throw new Error(`${name} has no InferenceSession`);
      return { ort, reason: `${name} loaded` };
    } catch (e) {
      return { ort: null, reason: String((e as Error).message ?? e).split('\n')[0] };
    }
  })();
  return loading;
}

export class OnnxScorer {
  private constructor(
    private ort: Ort,
    private session: OrtSession,
    private spec: Pick<ModelSpec, 'kind' | 'features' | 'window'>,
  ) {}

  /** A session for the run's model; a UserError when onnxruntime-node cannot load. */
  static async create(run: string, spec: Pick<ModelSpec, 'kind' | 'features' | 'window'>): Promise<OnnxScorer> {
    return OnnxScorer.fromBytes(runOnnxBytes(run), spec);
  }

  /** A session for an ONNX model in memory (as onnxModelBytes writes it). */
  static async fromBytes(bytes: Uint8Array, spec: Pick<ModelSpec, 'kind' | 'features' | 'window'>): Promise<OnnxScorer> {
    const { ort, reason } = await loadOnnxRuntime();
    if (!ort) throw new UserError(`--engine onnx: onnxruntime-node cannot load (${reason}); install it with ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node, or leave out --engine for the WebAssembly kernel`);
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
    return new OnnxScorer(ort, session, spec);
  }

  /** Class probabilities [n][C] of n rows (x as predictProbs takes it). */
  async probs(x: Float32Array, n: number): Promise<Float32Array> {
    const s = this.spec;
    const dims = s.kind === 'seed' ? [n, s.features] : [n, s.window, s.features];
    const out = await this.session.run({ [ONNX_INPUT]: new this.ort.Tensor('float32', x, dims) });
    // a copy: the result's memory belongs to onnxruntime, and predict transfers it between threads
    return (out[ONNX_OUTPUT].data as Float32Array).slice();
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
