/** An error caused by the user's input or options: printed as one line, no stack trace. */
export class UserError extends Error {
  constructor(message: string, readonly hint?: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

export function formatUserError(e: UserError): string {
  return `flowtensor: ${e.message}${e.hint ? `\n  hint: ${e.hint}` : ''}`;
}

/** Node flags for worker threads: the parent's, less those that only make sense for a main script. */
export function workerExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--input-type') && a !== '-e' && a !== '--eval' && !/^--max-(semi|old)-space-size/.test(a));
}
