/**
 * Compile speed at 70B scale: `shardc partition` of the Llama-3-70B-shaped graph (80 layers, hidden
 * 8192, 64 heads, 8 kv heads, FFN 28672, vocabulary 128256; 282 GB of float32 weights as external
 * data in a SPARSE file that must not be read) at tp=8 with `--target wgsl --no-weights`, as a whole
 * process: wall time, user+sys CPU time and peak RSS (/usr/bin/time), and the same for the 8-layer
 * graph; the ratio 80-layer / 8-layer shows whether the passes are near-linear. Goals (issue 7):
 * < 2 s, < 1 GB, ratio ≤ 12. CPU time is printed too: on a machine shared with other jobs it is
 * much less noisy than wall time. Figures only.
 *   npm run build && npx tsx bench/plan-70b.ts [--runs 3] [--target wgsl|cpu] [--cli path/to/shardc.js]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LLAMA_70B, llamaModel } from '../examples/models/transformers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Run {
  wallS: number;
  /** User + system CPU seconds (all threads: the GC's helper threads count too). */
  cpuS: number;
  rssMB: number;
}

/** One `shardc partition` process under /usr/bin/time: wall seconds, CPU seconds and peak RSS. */
function partition(cli: string, model: string, out: string, target: string): Run {
  const args = [cli, 'partition', model, '--mesh', 'tp=8', '--strategy', 'megatron', '--target', target, '--no-weights', '--dim', 'batch=1,sequence=128', '--out', out, '--force'];
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M %U %S', process.execPath, ...args], { encoding: 'utf8' });
  const m = /TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`partition failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { wallS: Number(m[1]), cpuS: Number(m[3]) + Number(m[4]), rssMB: Number(m[2]) / 1024 };
}

function modelDir(dir: string, layers: number): string {
  const b = llamaModel({ ...LLAMA_70B, layers }, `weights-${layers}.bin`);
  const file = join(dir, `llama70b-${layers}l.onnx`);
  writeFileSync(file, b.encode());
  const fd = openSync(join(dir, `weights-${layers}.bin`), 'w');
  ftruncateSync(fd, b.externalBytes!); // sparse: never written, must never be read
  closeSync(fd);
  return file;
}

function main(): void {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, target: { type: 'string', default: 'wgsl' }, cli: { type: 'string', default: join(root, 'bin/shardc.js') } },
  });
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'shardc-plan70b-'));
  try {
    const best: Record<number, Run> = {};
    for (const layers of [8, 80]) {
      const model = modelDir(dir, layers);
      const all: Run[] = [];
      for (let i = 0; i < runs; i++) all.push(partition(values.cli!, model, join(dir, `out-${layers}`), values.target!));
      const min = all.reduce((a, b) => (b.wallS < a.wallS ? b : a));
      best[layers] = min;
      console.log(
        `${String(layers).padStart(2)} layers, tp=8, --target ${values.target} --no-weights: wall ${min.wallS.toFixed(2)} s (best of ${runs}; all ${all.map((r) => r.wallS.toFixed(2)).join(', ')}), ` +
          `user+sys ${Math.min(...all.map((r) => r.cpuS)).toFixed(2)} s (best), peak RSS ${min.rssMB.toFixed(0)} MB`,
      );
    }
    const ratio = best[80]!.wallS / best[8]!.wallS;
    console.log(`ratio 80-layer / 8-layer: ${ratio.toFixed(2)} (goal ≤ 12); 80-layer goals: < 2 s (${best[80]!.wallS < 2 ? 'met' : 'NOT met'}), < 1 GB (${best[80]!.rssMB < 1024 ? 'met' : 'NOT met'})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
