/**
 * Compile time vs onnxruntime-node (issue 7): `shardc partition` of the GPT-like example at tp=2 with
 * --target wgsl and its weights (every device's kernels, host program, constants, host.ts/host.js,
 * models and weights, reports) against onnxruntime-node creating an InferenceSession on the same
 * model file, both as whole Node processes (start-up and module loading included), alternating,
 * in one run. Prints the median of each and the ratio shardc / ORT. Goal: ratio ≤ 1.0. Figures only.
 *   npm run build && npx tsx bench/compile-vs-ort.ts [--model examples/gpt-tiny.onnx] [--runs 3] [--cli bin/shardc.js]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Wall seconds of one process (spawn to exit); throws with its output when it fails. */
function timed(args: string[], what: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return s;
}

const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;

function main(): void {
  const { values } = parseArgs({
    strict: false,
    options: {
      model: { type: 'string', default: join(root, 'examples/gpt-tiny.onnx') },
      runs: { type: 'string', default: '3' },
      cli: { type: 'string', default: join(root, 'bin/shardc.js') },
      dim: { type: 'string', default: 'batch=1,sequence=8' },
    },
  });
  const model = resolve(String(values.model));
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'shardc-compile-vs-ort-'));
  // The ORT process: load onnxruntime-node, create the session (graph optimisations on, as by default).
  const ort = ['--input-type=module', '-e', `const ort = (await import('onnxruntime-node')).default; const s = await ort.InferenceSession.create(${JSON.stringify(model)}); if (!s.inputNames.length) process.exit(3);`];
  const shardc = [String(values.cli), 'partition', model, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', 'wgsl', '--dim', String(values.dim), '--out', join(dir, 'bundle'), '--force', '--quiet'];
  try {
    const a: number[] = [];
    const b: number[] = [];
    timed(ort, 'onnxruntime-node'); // warm the file cache for both
    timed(shardc, 'shardc partition');
    for (let i = 0; i < runs; i++) {
      a.push(timed(shardc, 'shardc partition'));
      b.push(timed(ort, 'onnxruntime-node'));
    }
    const s = median(a);
    const o = median(b);
    console.log(`model ${model.replace(`${root}/`, '')}`);
    console.log(`shardc partition --mesh tp=2 --target wgsl (with weights), whole process: ${s.toFixed(3)} s (median of ${runs}; all ${a.map((x) => x.toFixed(3)).join(', ')})`);
    console.log(`onnxruntime-node InferenceSession.create, whole process:            ${o.toFixed(3)} s (median of ${runs}; all ${b.map((x) => x.toFixed(3)).join(', ')})`);
    console.log(`ratio shardc / ORT: ${(s / o).toFixed(2)} (goal ≤ 1.0: ${s <= o ? 'met' : 'NOT met'})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
