/**
 * Tensor parallelism on ONE WebGPU adapter (Node, Dawn; SwiftShader without a GPU): the larger
 * GPT-like model (src/bench/models.ts) at tp=1, tp=2 and tp=4 (megatron), every logical device of
 * the mesh on one GPUDevice (the compiled mesh session with shareDevice: collectives are copy
 * kernels in the same command encoder). One adapter does the work of every rank, so the ratio to
 * tp=1 is the overhead of sharding — collectives, smaller kernels, more dispatches — not a
 * speed-up. A profiled extra run per mesh gives the time in collectives. Figures only.
 *   npx tsx bench/webgpu-tp.ts [--runs 5] [--warmup 2] [--sequence 64] [--engine interpretive] [--no-fuse]
 */
import { GPT_BENCH_LABEL } from '../src/bench/models.js';
import { benchModel } from '../src/bench/run.js';
import { PACKAGE_ROOT, webgpuBenchFlags, withGptBenchModel } from './lib/webgpu-bench.js';

async function main(): Promise<void> {
  const flags = webgpuBenchFlags();
  await withGptBenchModel(async (file) => {
    console.log(`${GPT_BENCH_LABEL}, batch 1, sequence ${flags.sequence}; megatron on one adapter`);
    let base: number | undefined;
    for (const tp of [1, 2, 4]) {
      const { report, profile } = await benchModel({
        packageRoot: PACKAGE_ROOT,
        model: file,
        browser: false,
        mesh: `tp=${tp}`,
        strategy: tp > 1 ? 'megatron' : undefined,
        dims: { batch: 1, sequence: flags.sequence },
        warmup: flags.warmup,
        runs: flags.runs,
        profile: true,
        engine: flags.engine,
        fuse: flags.fuse,
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
  });
}

await main();
