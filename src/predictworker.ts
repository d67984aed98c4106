// Worker thread of `predict`: holds its own copy of the run's model and scores the batches it is sent,
// so that two threads share the model's forward pass (the main thread parses, scales and writes too).
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendName } from './backend.js';
import { loadFused } from './train.js';
import { predictProbs, type ModelSpec } from './models.js';

const { model: dir, spec, backend } = workerData as { model: string; spec: ModelSpec; backend: BackendName | 'auto' };
const port = parentPort!;

async function main(): Promise<void> {
  const { tf } = await initBackend(backend);
  const model = await loadFused(tf, dir, spec);
  // the main thread terminates this thread when it is done
  port.on('message', async (m: { id: number; x: Float32Array; n: number }) => {
    try {
      const probs = await predictProbs(tf, model, spec, m.x, m.n);
      port.postMessage({ id: m.id, probs }, [probs.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: m.id, error: (e as Error).message });
    }
  });
  port.postMessage({ ready: true });
}

main().catch((e) => port.postMessage({ id: -1, error: (e as Error).message }));
