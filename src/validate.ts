// Command-line values checked at the edge, before any work: one line naming the option, the value given
// and what is allowed (exit 2), instead of a crash or a silent misbehaviour deep inside. One table for
// every command (an option name means the same everywhere); cli.ts calls checkArgs for each command.
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { lstmKernelMode } from './kernels/lstm.js';
import { csvScanMode } from './kernels/csvscan.js';
import { scaleKernelMode } from './kernels/scalekern.js';
import { expandInputs } from './inputs.js';
import { pathError, refuseInputsAsOutput } from './safefile.js';

interface NumRule {
  int: boolean;
  min: number;
  max: number;
  /** min itself not allowed (e.g. a learning rate > 0) */
  minOpen?: boolean;
}

const int = (min: number, max: number): NumRule => ({ int: true, min, max });
const real = (min: number, max: number, minOpen = false): NumRule => ({ int: false, min, max, minOpen });

/** Every numeric option of every command. */
export const NUMERIC_OPTIONS: Record<string, NumRule> = {
  'shard-rows': int(1, 1 << 22),
  workers: int(0, 16),
  'batch-size': int(1, 1 << 16),
  units: int(1, 1024),
  project: int(1, 1024),
  window: int(1, 1024),
  epochs: int(1, 100000),
  patience: int(1, 100000),
  lr: real(0, 10, true),
  'max-benign-ratio': real(0, 1e6, true),
  seed: int(0, 2 ** 32 - 1),
  'max-batches': int(1, 2 ** 31 - 1),
  rows: int(0, 1e9),
  ipv6: real(0, 1),
  threads: int(1, 2),
  'flush-ms': int(0, 3_600_000),
};

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : String(n));

/** The value as typed on the command line (yargs has already turned `abc` into NaN). */
function typed(name: string, value: unknown, argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i];
    if (t === `--${name}` && i + 1 < argv.length) return argv[i + 1];
    if (t.startsWith(`--${name}=`)) return t.slice(name.length + 3);
  }
  return String(value);
}

export function checkNumber(name: string, value: unknown, argv: string[] = []): void {
  const r = NUMERIC_OPTIONS[name];
  if (!r || value === undefined) return;
  const v = value;
  const ok = typeof v === 'number' && Number.isFinite(v) && (!r.int || Number.isInteger(v)) && (r.minOpen ? v > r.min : v >= r.min) && v <= r.max;
  if (ok) return;
  const what = r.int ? `a whole number from ${fmt(r.min)} to ${fmt(r.max)}` : r.minOpen ? `a number above ${fmt(r.min)}, at most ${fmt(r.max)}` : `a number from ${fmt(r.min)} to ${fmt(r.max)}`;
  throw new UserError(`--${name} ${typed(name, v, argv)}: give ${what}`);
}

/** Options that name output folders / files, per command. */
const OUT_FOLDER_COMMANDS = new Set(['prep', 'shard', 'train', 'demo']);

/**
 * Check a command's parsed arguments before it runs: numbers in range, a one-byte delimiter, a log file
 * whose folder exists, output folders that are folders, and no output that is one of the inputs.
 */
export function checkArgs(cmd: string, a: Record<string, unknown>, argv: string[] = []): void {
  for (const [k, v] of Object.entries(a)) {
    // a repeated option (`--out a --out b`) arrives as an array: say so instead of failing later
    if (k === '_' || k === '$0' || k === 'files' || k.length === 1 || /[A-Z]/.test(k) || !Array.isArray(v)) continue;
    throw new UserError(`--${k} is given ${v.length} times (${v.map(String).join(', ')}): give it once`);
  }
  for (const name of Object.keys(NUMERIC_OPTIONS)) if (name in a) checkNumber(name, a[name], argv);
  csvScanMode(); // the environment's settings too, before any work
  lstmKernelMode();
  scaleKernelMode();
  const delim = a.delimiter;
  if (delim !== undefined && (typeof delim !== 'string' || Buffer.byteLength(delim) !== 1 || delim === '"' || delim === '\n' || delim === '\r'))
    throw new UserError(`--delimiter ${JSON.stringify(delim)}: give one ASCII character other than a quote or a line break, e.g. ',' or ';'`);
  const logFile = a['log-file'];
  if (typeof logFile === 'string') {
    const dir = path.dirname(path.resolve(logFile));
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) throw new UserError(`--log-file ${logFile}: folder ${path.dirname(logFile)} does not exist`, 'create the folder first, or name a file in an existing one');
    const f = fs.statSync(logFile, { throwIfNoEntry: false });
    if (f?.isDirectory()) throw new UserError(`--log-file ${logFile}: is a folder; name a file`);
  }
  const out = a.out;
  if (typeof out === 'string' && OUT_FOLDER_COMMANDS.has(cmd)) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(out, { throwIfNoEntry: false });
    } catch (e) {
      throw pathError(out, e, '--out');
    }
    if (st && !st.isDirectory()) throw new UserError(`--out ${out}: exists and is not a folder`, 'name a folder (it is created when missing)');
  }
  checkNotInputs(cmd, a);
  // a command reading standard input from a terminal would wait for typing: say what it reads instead
  const files = Array.isArray(a.files) ? a.files : [];
  if (STDIN_COMMANDS[cmd] && files.length === 0 && process.stdin.isTTY)
    throw new UserError(`${cmd} reads ${STDIN_COMMANDS[cmd]} on standard input, which is a terminal here`, cmd === 'parse' || cmd === 'predict' ? `give files, or pipe CSV into it: flowtensor ${cmd} FILE.csv` : `pipe the stages: ${PIPE}`);
}

const PIPE = 'flowtensor parse FILE.csv | flowtensor filter | … | flowtensor shard --out DIR';
const STDIN_COMMANDS: Record<string, string> = { parse: 'CSV', predict: 'CSV', filter: 'NDJSON records', ipsplit: 'NDJSON records', labels: 'NDJSON records', sanitize: 'NDJSON records', split: 'NDJSON records', shard: 'NDJSON records' };

/** No output (a rejects file, the log, standard output, prep's own files) may be one of the inputs. */
function checkNotInputs(cmd: string, a: Record<string, unknown>): void {
  const files = Array.isArray(a.files) ? (a.files as unknown[]).map(String) : [];
  const inputs: (string | number)[] = files.length ? expandInputs(files).files : [0];
  const outputs: { path: string | number; what: string }[] = [{ path: 1, what: 'standard output' }];
  if (typeof a.rejects === 'string') outputs.push({ path: a.rejects, what: '--rejects' });
  if (typeof a['log-file'] === 'string') outputs.push({ path: a['log-file'] as string, what: '--log-file' });
  if (cmd === 'prep' && typeof a.out === 'string')
    for (const f of ['rejects.ndjson', 'manifest.json', 'pass1.json']) outputs.push({ path: path.join(a.out, f), what: `--out ${a.out} holds` });
  if ((cmd === 'synth' || cmd === 'report') && typeof a.out === 'string') outputs.push({ path: a.out, what: '--out' });
  refuseInputsAsOutput(outputs, inputs);
}
