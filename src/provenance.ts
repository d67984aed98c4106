// What a run folder records about how it was made: when, by which command line, with which versions.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageVersion } from './config.js';

/** The command line as typed (the launcher's name instead of its path). */
export function commandLine(): string[] {
  const [, script, ...rest] = process.argv;
  const name = script ? path.basename(script).replace(/\.js$/, '') : 'node';
  return [name === 'flowtensor' ? 'flowtensor' : name, ...rest];
}

/**
 * Fields for run.json: created (kept from the run being resumed), the command line (each resume is added
 * to `resumed`), and the versions of flowtensor, Node, TensorFlow.js and the platform.
 */
export function provenance(tf: { version?: Record<string, string> }, resumedRun?: string): Record<string, unknown> {
  const now = new Date().toISOString();
  let prev: Record<string, unknown> = {};
  if (resumedRun) {
    try {
      prev = JSON.parse(fs.readFileSync(path.join(resumedRun, 'run.json'), 'utf8'));
    } catch {
      prev = {};
    }
  }
  const resumed = Array.isArray(prev.resumed) ? prev.resumed : [];
  return {
    created: typeof prev.created === 'string' ? prev.created : now,
    command: Array.isArray(prev.command) ? prev.command : commandLine(),
    ...(resumedRun ? { resumed: [...resumed, { at: now, command: commandLine() }] } : {}),
    runtime: {
      flowtensor: packageVersion(),
      node: process.version,
      tfjs: tf.version?.tfjs ?? tf.version?.['tfjs-core'] ?? 'unknown',
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      cpus: os.cpus().length,
    },
  };
}
