/**
 * Tensor parallelism on ONE WebGPU adapter (Node, Dawn; SwiftShader without a GPU): the larger
 * GPT-like model (src/bench/models.ts) at tp=1, tp=2 and tp=4 (megatron), every logical device of
 * the mesh on one GPUDevice (the compiled mesh session with shareDevice: collectives are copy
 * kernels in the same command encoder). One adapter does the work of every rank, so the ratio to
 * tp=1 is the overhead of sharding — collectives, smaller kernels, more dispatches — not a
 * speed-up. A profiled extra run per mesh gives the time in collectives. Figures only.
 *   npx tsx bench/webgpu-tp.ts [--runs 5] [--warmup 2] [--sequence 64] [--engine interpretive] [--no-fuse]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gptModel } from '../examples/models/transformers.js';
import { GPT_BENCH, GPT_BENCH_LABEL } from '../src/bench/models.js';
import { benchModel } from '../src/bench/run.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '2' },
      sequence: { type: 'string', default: '64' },
      engine: { type: 'string', default: 'compiled' },
      'no-fuse': { type: 'boolean', default: false },
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'shardc-bench-tp-'));
  try {
    const file = join(dir, 'gpt-l4-h256.onnx');
    writeFileSync(file, gptModel({ ...GPT_BENCH }).encode());
    console.log(`${GPT_BENCH_LABEL}, batch 1, sequence ${values.sequence}; megatron on one adapter`);
    let base: number | undefined;
    for (const tp of [1, 2, 4]) {
      const { report, profile } = await benchModel({
        packageRoot: root,
        model: file,
        browser: false,
        mesh: `tp=${tp}`,
        strategy: tp > 1 ? 'megatron' : undefined,
        dims: { batch: 1, sequence: Number(values.sequence) },
        warmup: Number(values.warmup),
        runs: Number(values.runs),
        profile: true,
        engine: values.engine as 'compiled' | 'interpretive',
        fuse: !values['no-fuse'],
      });
      base ??= report.shardcMs;
      const entries = profile?.entries ?? [];
      const collectiveMs = entries.filter((e) => e.kind === 'collective').reduce((a, e) => a + e.ms, 0);
      const totalMs = entries.reduce((a, e) => a + e.ms, 0);
      const line = {
        mesh: report.mesh,
        engine: report.shardcEngine,
        fuse: report.fuse,
        adapter: report.adapter,
        shardcMs: report.shardcMs,
        ratioToTp1: report.shardcMs / base,
        steps: entries.length,
        collectives: entries.filter((e) => e.kind === 'collective').length,
        profiledCollectiveShare: totalMs > 0 ? collectiveMs / totalMs : 0,
        agree: report.agree,
        maxAbsDiff: report.maxAbsDiff,
      };
      console.log(JSON.stringify(line));
      console.log(
        `tp=${tp}: ${report.shardcMs.toFixed(1)} ms per run (ratio to tp=1 ${line.ratioToTp1.toFixed(2)}), ${line.collectives} collective steps, ` +
          `${(line.profiledCollectiveShare * 100).toFixed(1)}% of the profiled step time in collectives; agrees with the CPU runtime: ${report.agree}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
