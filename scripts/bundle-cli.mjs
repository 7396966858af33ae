/**
 * Bundles the command line (dist/cli/main.js and what it imports, after `tsc`) into a few ES
 * module files under dist/cli-bundle/, which bin/shardc.js runs. Why: Node loads ES modules one
 * file at a time; `shardc partition` pulls in ~230 of them (the compiler, protobufjs, commander,
 * dagre), and resolving, reading, compiling and linking them took ~0.1-0.2 s of every run — as
 * long as partitioning a small model. One bundle per command (code splitting keeps commands
 * loading on demand, src/cli/main.ts) loads in a fraction of that. The library (dist/index.js)
 * stays unbundled.
 *
 * Packages with native code or files located at run time stay external and load from
 * node_modules as before: Dawn (webgpu), onnxruntime-node/-web, HiGHS (its .wasm), esbuild
 * itself, playwright-core. The banner gives the bundle CommonJS's `require`, `__filename` and
 * `__dirname` (for the bundled CommonJS packages, and so the modules that locate files from their
 * own path — runtime/cuda, HiGHS — resolve from dist/cli-bundle, inside the package as before).
 * esbuild's output is deterministic (same input, same bytes).
 *   node scripts/bundle-cli.mjs   (npm run build runs it after tsc)
 */
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'cli-bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['webgpu', 'onnxruntime-node', 'onnxruntime-web', 'onnxruntime-web/*', 'highs', 'esbuild', 'playwright-core', 'ts-morph', 'typescript'],
  banner: {
    js: [
      "import { createRequire as __shardcCreateRequire } from 'node:module';",
      "import { dirname as __shardcDirname } from 'node:path';",
      "import { fileURLToPath as __shardcFileURLToPath } from 'node:url';",
      'const require = __shardcCreateRequire(import.meta.url);',
      'const __filename = __shardcFileURLToPath(import.meta.url);',
      'const __dirname = __shardcDirname(__filename);',
    ].join('\n'),
  },
  legalComments: 'inline',
  logLevel: 'warning',
});
