// Model definitions. `seed`: the notebook's network, fixed (per-step projection instead of the
// broken Embedding(2, 32)); `window`: W consecutive flows x F features -> LSTM -> class of the last flow.
// Each exists twice with identical weights: the standard layers (Reshape, Dense, LSTM, Dense: what is
// saved, so any tfjs loader reads the model) and the fused twin used for computing (src/fusedlstm.ts).
import type { Tf } from './backend.js';
import type * as TF from '@tensorflow/tfjs';
import { fusedLstmClass } from './fusedlstm.js';

export type ModelKind = 'seed' | 'window';

export interface ModelSpec {
  kind: ModelKind;
  features: number;
  classes: number;
  units: number;
  /** Projection width per step (seed model). */
  project: number;
  window: number;
  seed: number;
}

/** The standard-layers model (saved format). */
export function buildModel(tf: Tf, s: ModelSpec): TF.LayersModel {
  const init = (k: number) => ({ kernelInitializer: tf.initializers.glorotUniform({ seed: s.seed + k }) });
  const m = tf.sequential({ name: `flowtensor_${s.kind}` });
  if (s.kind === 'seed') {
    // each flow's F features as F steps of one value, projected per step to `project` units
    m.add(tf.layers.reshape({ targetShape: [s.features, 1], inputShape: [s.features], name: 'steps' }));
    m.add(tf.layers.dense({ units: s.project, name: 'project', ...init(1) }));
  } else {
    m.add(tf.layers.inputLayer({ inputShape: [s.window, s.features], name: 'flows' }));
  }
  m.add(
    tf.layers.lstm({
      units: s.units,
      name: 'LSTMnet',
      recurrentActivation: 'sigmoid',
      unitForgetBias: true, // as Keras: forget-gate bias starts at 1, which long step sequences need
      kernelInitializer: tf.initializers.glorotUniform({ seed: s.seed + 2 }),
      recurrentInitializer: tf.initializers.glorotUniform({ seed: s.seed + 3 }),
    }),
  );
  m.add(tf.layers.dense({ units: s.classes, activation: 'softmax', name: 'classes', ...init(4) }));
  return m;
}

/** The fused twin: same weights in the same order, computed by the FusedLSTM layers. */
export function buildFused(tf: Tf, s: ModelSpec): TF.LayersModel {
  const { FusedLSTM, FusedSeed } = fusedLstmClass(tf);
  const m = tf.sequential({ name: `flowtensor_${s.kind}_fused` });
  if (s.kind === 'seed') m.add(new FusedSeed({ units: s.units, project: s.project, seed: s.seed + 1, name: 'LSTMnet', inputShape: [s.features] }));
  else m.add(new FusedLSTM({ units: s.units, seed: s.seed + 2, name: 'LSTMnet', inputShape: [s.window, s.features] }));
  m.add(tf.layers.dense({ units: s.classes, activation: 'softmax', name: 'classes', kernelInitializer: tf.initializers.glorotUniform({ seed: s.seed + 4 }) }));
  return m;
}

/** Copy weights between the standard and fused forms (same order, same shapes). */
export function copyWeights(from: TF.LayersModel, to: TF.LayersModel): void {
  to.setWeights(from.getWeights());
}

/**
 * Class probabilities [n][C] of n rows in one model call: tfjs's predict would split them in batches of
 * 32, and on the wasm backend each of those copied the whole input out again.
 */
export async function predictProbs(tf: Tf, model: TF.LayersModel, s: Pick<ModelSpec, 'kind' | 'features' | 'window'>, x: Float32Array, n: number): Promise<Float32Array> {
  const t = tf.tidy(() => model.predict(tf.tensor(x, batchShape(s, n)), { batchSize: n }) as TF.Tensor);
  const probs = (await t.data()) as Float32Array;
  t.dispose();
  return probs;
}

/** Input shape of one batch for a model kind. */
export function batchShape(s: Pick<ModelSpec, 'kind' | 'features' | 'window'>, n: number): number[] {
  return s.kind === 'seed' ? [n, s.features] : [n, s.window, s.features];
}
