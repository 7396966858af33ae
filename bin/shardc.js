#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/cli (built from src/cli by `npm run build`), run from its
// bundle in dist/cli-bundle (scripts/bundle-cli.mjs: one load instead of ~230 module files).
import { fileURLToPath } from 'node:url';
import { main } from '../dist/cli-bundle/main.js';

// `shardc explain bundle | head`: a closed pipe ends the program quietly, as other tools do.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
main(process.argv.slice(2), { packageRoot }).then((code) => {
  process.exitCode = code;
});
