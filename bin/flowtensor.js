#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const entry = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('flowtensor: not built yet: run `npm run build` (or `npm install`) first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main();
