#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli (built from src/cli by `npm run build`).
import { fileURLToPath } from 'node:url';
import { main } from '../dist/cli/main.js';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
main(process.argv.slice(2), { packageRoot }).then((code) => {
  process.exitCode = code;
});
