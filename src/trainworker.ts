// Worker thread of data-parallel training (src/parallel.ts): takes parts of each batch as they come free
// (beside the main thread)
// and runs them through its own training engine (src/trainengine.ts: the WebAssembly kernel, no tfjs),
// writing each part's gradients, loss and correct count into shared memory.
import { parentPort, workerData } from 'node:worker_threads';
import { TrainEngine, PARTS } from './trainengine.js';
import { CTRL, SPIN_MS, takeParts, type WorkerData } from './parallel.js';

const d = workerData as WorkerData;
const port = parentPort!;
const { SEQ, BUF, ROWS, DONE, FAIL } = CTRL;
const ctrl = new Int32Array(d.ctrl);

function main(): void {
  const eng = new TrainEngine(d.spec, d.classWeights);
  const weights = new Float32Array(d.weights);
  const xs = d.xs.map((b) => new Float32Array(b));
  const ys = d.ys.map((b) => new Int32Array(b));
  const size = weights.length;
  const grads = Array.from({ length: PARTS }, (_, p) => new Float32Array(d.grads, 4 * size * p, size));
  const stats = new Float64Array(d.stats);
  port.postMessage({ ready: true });
  let seen = 0;
  for (;;) {
    // the next step comes within ~0.1 ms of the last part: spin briefly before sleeping
    const until = performance.now() + SPIN_MS;
    while (Atomics.load(ctrl, SEQ) === seen && performance.now() < until);
    Atomics.wait(ctrl, SEQ, seen);
    const seq = Atomics.load(ctrl, SEQ);
    if (seq < 0) return;
    if (seq === seen) continue;
    seen = seq;
    const buf = Atomics.load(ctrl, BUF);
    // parts of this step until none is left (the main thread takes the rest)
    takeParts(
      ctrl,
      seq,
      Atomics.load(ctrl, ROWS),
      eng,
      weights,
      xs[buf],
      ys[buf],
      grads,
      stats,
      // only the step's last part wakes the main thread (a wake per part took a core from the other worker)
      () => {
        if (Atomics.add(ctrl, DONE, 1) + 1 >= PARTS || Atomics.load(ctrl, FAIL) !== 0) Atomics.notify(ctrl, DONE);
      },
      (e) => {
        port.postMessage({ error: (e as Error).message });
        Atomics.store(ctrl, FAIL, 1);
      },
    );
  }
}

try {
  main();
} catch (e) {
  port.postMessage({ error: (e as Error).message });
  Atomics.store(ctrl, FAIL, 1);
  Atomics.notify(ctrl, DONE);
}
