// Worker thread of `predict`: holds its own copy of the run's model and scores the batches it is sent,
// so that two threads share the model's forward pass (the main thread parses, scales and writes too).
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendName } from './backend.js';
import { loadFused } from './train.js';
import { predictProbs, type ModelSpec } from './models.js';
import { OnnxScorer } from './onnxengine.js';

const { model: dir, spec, backend, engine } = workerData as { model: string; spec: ModelSpec; backend: BackendName | 'auto'; engine?: 'wasm' | 'onnx' };
const port = parentPort!;

async function score(): Promise<(x: Float32Array, n: number) => Promise<Float32Array>> {
  if (engine === 'onnx') {
    const onnx = await OnnxScorer.create(dir, spec);
    return (x, n) => onnx.probs(x, n);
  }
  const { tf } = await initBackend(backend);
  const model = await loadFused(tf, dir, spec);
  return (x, n) => predictProbs(tf, model, spec, x, n);
}

async function main(): Promise<void> {
  const probsOf = await score();
  // the main thread terminates this thread when it is done
  port.on('message', async (m: { id: number; x: Float32Array; n: number }) => {
    try {
      const probs = await probsOf(m.x, m.n);
      port.postMessage({ id: m.id, probs }, [probs.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: m.id, error: (e as Error).message });
    }
  });
  port.postMessage({ ready: true });
}

main().catch((e) => port.postMessage({ id: -1, error: (e as Error).message }));
