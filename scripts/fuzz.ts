/**
 * The model-reader fuzz job (issue 8 §2), run like a benchmark:
 *
 *   npx tsx scripts/fuzz.ts --iterations 100000 --seed 1 [--start 0] [--out fuzz-out] [--timeout 10000]
 *                           [--models a.onnx,dir/,...]
 *
 * Mutates the example models (examples/*.onnx) and a few ../shared/onnx-simple-tests models
 * (when present), checks every mutant in a worker thread (src/verify/fuzz.ts) and prints counts
 * per outcome and the rate. Exits 1 when any mutant raised an internal error, hung or crashed
 * the worker; those mutants are saved under --out (default fuzz-out/) with failures.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFuzzSummary, loadSeedModels, runFuzz } from '../src/verify/fuzz.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The seed models: every example, and the simple ONNX tests whose ops shardc supports. */
export function defaultSeedPaths(root = ROOT): string[] {
  const examples = fs
    .readdirSync(path.join(root, 'examples'))
    .filter((f) => f.endsWith('.onnx'))
    .sort()
    .map((f) => path.join(root, 'examples', f));
  const simple = path.join(root, '..', 'shared', 'onnx-simple-tests');
  const extra = ['test_single_relu_model', 'test_sign_model', 'test_expand_shape_model1', 'test_expand_shape_model3', 'test_gradient_of_add_and_mul', 'test_shrink']
    .map((d) => path.join(simple, d))
    .filter((d) => fs.existsSync(path.join(d, 'model.onnx')));
  return [...examples, ...extra];
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intArg(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`fuzz: --${name} must be a non-negative integer, got ${JSON.stringify(v)}\n`);
    process.exit(1);
  }
  return n;
}

async function main(): Promise<number> {
  const iterations = intArg('iterations', 1000);
  const seed = intArg('seed', 1);
  const start = intArg('start', 0);
  const timeoutMs = intArg('timeout', 10_000);
  const out = path.resolve(arg('out') ?? 'fuzz-out');
  const models = loadSeedModels(arg('models')?.split(',') ?? defaultSeedPaths());
  const every = Math.max(1, Math.floor(iterations / 20));
  const summary = await runFuzz({
    models,
    iterations,
    seed,
    start,
    timeoutMs,
    outDir: out,
    workerModule: path.join(ROOT, 'src', 'verify', 'fuzz.ts'),
    onProgress: (done, counts) => {
      if (done % every === 0 || done === iterations)
        process.stderr.write(`  ${done}/${iterations}: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    },
  });
  process.stdout.write(`${formatFuzzSummary(summary).join('\n')}\n`);
  process.stdout.write(`models: ${models.map((m) => m.name).join(', ')}\n`);
  return summary.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
