/**
 * shardc on WebGPU vs onnxruntime-web in the same headless Chromium page (SwiftShader without a
 * GPU): gpt-tiny and a larger GPT-like model (4 layers, hidden 256, 4 heads, FFN 1024, vocabulary
 * 512, sequence 64), CPU inputs in to CPU outputs back, after warm-up, against both ORT-web builds
 * (default: wasm execution provider; onnxruntime-web/webgpu: webgpu execution provider). Prints one
 * JSON line per model (`shardc bench --browser --compare onnxruntime-web --json`) and the ratio
 * shardcMs / the faster ORT-web build. Figures only, never a pass/fail timing.
 *   npx tsx bench/webgpu-vs-ort-web.ts [--runs 5] [--warmup 2] [--sequence 64] [--no-fuse] [--engine interpretive]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gptModel } from '../examples/models/transformers.js';
import { DEFAULT_CHROMIUM } from '../src/bench/browser.js';
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
  const chromium = process.env.SHARDC_CHROMIUM ?? DEFAULT_CHROMIUM;
  if (!existsSync(chromium)) {
    console.log(`skipped: no Chromium at ${chromium} (apt-get install chromium libvulkan1)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'shardc-bench-webgpu-'));
  try {
    const big = join(dir, 'gpt-l4-h256.onnx');
    writeFileSync(big, gptModel({ ...GPT_BENCH }).encode());
    const models = [
      { label: 'gpt-tiny (2 layers, hidden 32), batch 1, sequence 32', file: join(root, 'examples', 'gpt-tiny.onnx'), dims: { batch: 1, sequence: 32 } },
      { label: `${GPT_BENCH_LABEL}, batch 1, sequence ${values.sequence}`, file: big, dims: { batch: 1, sequence: Number(values.sequence) } },
    ];
    for (const m of models) {
      const { report } = await benchModel({
        packageRoot: root,
        model: m.file,
        browser: true,
        compare: 'onnxruntime-web',
        dims: m.dims,
        warmup: Number(values.warmup),
        runs: Number(values.runs),
        engine: values.engine as 'compiled' | 'interpretive',
        fuse: !values['no-fuse'],
      });
      const { shardcTimes: _s, agreement: _a, browser: _b, ...line } = report;
      console.log(`\n${m.label}`);
      console.log(JSON.stringify({ ...line, model: m.file.startsWith(root) ? m.file.slice(root.length + 1) : 'gpt-l4-h256 (generated)' }));
      const w = report.onnxruntimeWeb!;
      console.log(
        `shardc ${report.shardcMs.toFixed(2)} ms | onnxruntime-web wasm (${w.numThreads} threads) ${w.wasmMs?.toFixed(2) ?? w.wasmError} ms | ` +
          `onnxruntime-web webgpu ${w.webgpuMs?.toFixed(2) ?? w.webgpuError} ms | ratio shardc/${w.faster ?? '-'} ${report.ratio?.toFixed(2) ?? '-'} | agree ${report.agree} (max |diff| ${report.maxAbsDiff.toPrecision(2)})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
