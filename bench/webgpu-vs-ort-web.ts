/**
 * shardc on WebGPU vs onnxruntime-web in the same headless Chromium page (SwiftShader without a
 * GPU): gpt-tiny and a larger GPT-like model (4 layers, hidden 256, 4 heads, FFN 1024, vocabulary
 * 512, sequence 64), CPU inputs in to CPU outputs back, after warm-up, against both ORT-web builds
 * (default: wasm execution provider; onnxruntime-web/webgpu: webgpu execution provider). Prints one
 * JSON line per model (`shardc bench --browser --compare onnxruntime-web --json`) and the ratio
 * shardcMs / the faster ORT-web build. Figures only, never a pass/fail timing.
 *   npx tsx bench/webgpu-vs-ort-web.ts [--runs 5] [--warmup 2] [--sequence 64] [--no-fuse] [--engine interpretive]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CHROMIUM } from '../src/bench/browser.js';
import { GPT_BENCH_LABEL } from '../src/bench/models.js';
import { benchModel } from '../src/bench/run.js';
import { PACKAGE_ROOT, webgpuBenchFlags, withGptBenchModel } from './lib/webgpu-bench.js';

async function main(): Promise<void> {
  const flags = webgpuBenchFlags();
  const chromium = process.env.SHARDC_CHROMIUM ?? DEFAULT_CHROMIUM;
  if (!existsSync(chromium)) {
    console.log(`skipped: no Chromium at ${chromium} (apt-get install chromium libvulkan1)`);
    return;
  }
  await withGptBenchModel(async (big) => {
    const models = [
      { label: 'gpt-tiny (2 layers, hidden 32), batch 1, sequence 32', file: join(PACKAGE_ROOT, 'examples', 'gpt-tiny.onnx'), dims: { batch: 1, sequence: 32 } },
      { label: `${GPT_BENCH_LABEL}, batch 1, sequence ${flags.sequence}`, file: big, dims: { batch: 1, sequence: flags.sequence } },
    ];
    for (const m of models) {
      const { report } = await benchModel({
        packageRoot: PACKAGE_ROOT,
        model: m.file,
        browser: true,
        compare: 'onnxruntime-web',
        dims: m.dims,
        warmup: flags.warmup,
        runs: flags.runs,
        engine: flags.engine,
        fuse: flags.fuse,
      });
      const { shardcTimes: _s, agreement: _a, browser: _b, ...line } = report;
      console.log(`\n${m.label}`);
      console.log(JSON.stringify({ ...line, model: m.file.startsWith(PACKAGE_ROOT) ? m.file.slice(PACKAGE_ROOT.length + 1) : 'gpt-l4-h256 (generated)' }));
      const w = report.onnxruntimeWeb!;
      console.log(
        `shardc ${report.shardcMs.toFixed(2)} ms | onnxruntime-web wasm (${w.numThreads} threads) ${w.wasmMs?.toFixed(2) ?? w.wasmError} ms | ` +
          `onnxruntime-web webgpu ${w.webgpuMs?.toFixed(2) ?? w.webgpuError} ms | ratio shardc/${w.faster ?? '-'} ${report.ratio?.toFixed(2) ?? '-'} | agree ${report.agree} (max |diff| ${report.maxAbsDiff.toPrecision(2)})`,
      );
    }
  });
}

await main();
