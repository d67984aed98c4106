#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const entry = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('flowtensor: not built yet: run `npm run build` (or `npm install`) first\n');
  process.exit(1);
}
// in a source checkout, say when a source file is newer than the build (npm start does not rebuild)
const built = statSync(entry).mtimeMs;
for (const dir of ['src', 'stages']) {
  const d = new URL(`../${dir}/`, import.meta.url);
  if (!existsSync(d)) continue;
  const newer = readdirSync(d).find((f) => f.endsWith('.ts') && statSync(new URL(f, d)).mtimeMs > built);
  if (newer) {
    process.stderr.write(`flowtensor: ${dir}/${newer} is newer than the build: run \`npm run build\`\n`);
    break;
  }
}
const { main } = await import(entry.href);
await main();
