// Writing results to a stream (standard output or a caller's Writable) so that a failing stream
// fails the writer: a full disk or /dev/full must end the command, never leave it waiting for a
// 'drain' that does not come.
import type { Writable } from 'node:stream';

/** Write text; wait while the stream is full; reject when it fails or closes. */
export function writeText(out: Writable, text: string): Promise<void> | void {
  if (out.errored) throw out.errored;
  if (out.destroyed || out.writableEnded) throw Object.assign(new Error('output closed'), { code: 'ERR_STREAM_DESTROYED' });
  if (out.write(text)) return;
  return new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => {
      out.off('drain', onDrain);
      out.off('error', onError);
      out.off('close', onClose);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => done();
    const onError = (e: Error) => done(e);
    const onClose = () => done(out.errored ?? Object.assign(new Error('output closed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    out.on('drain', onDrain);
    out.on('error', onError);
    out.on('close', onClose);
  });
}
