/**
 * The browser entry in a real page: headless Debian Chromium (playwright-core, /usr/bin/chromium)
 * on WebGPU through SwiftShader. The page is served from 127.0.0.1 with COOP/COEP; it imports
 * gpt-tiny from the fetched bytes and runs it on navigator.gpu on seeded random inputs passed in
 * from here; the outputs must match the Node CPU runtime at rtol 1e-4, atol 1e-5. Without
 * /usr/bin/chromium it fails naming the install command (.ci/run installs it as root).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { buildBrowserBundle, serveBrowserDemo } from '../../examples/browser/server.js';
import { CHROMIUM_WEBGPU_FLAGS, DEFAULT_CHROMIUM } from '../../src/bench/browser.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const ROOT = resolve(__dirname, '..', '..');

describe('browser entry on WebGPU in headless Chromium', () => {
  it('has Debian chromium to drive', () => {
    if (!existsSync(DEFAULT_CHROMIUM)) throw new Error(`${DEFAULT_CHROMIUM} is missing: apt-get install chromium libvulkan1 (as root)`);
  });

  let server: Server | undefined;
  let context: BrowserContext | undefined;
  let launching: Promise<BrowserContext> | undefined;
  let userDir: string | undefined;
  let url = '';
  let stubbed: string[] = [];

  beforeAll(async () => {
    const bundle = await buildBrowserBundle(ROOT);
    stubbed = bundle.stubbed;
    ({ server, url } = await serveBrowserDemo(ROOT, bundle.code));
    userDir = mkdtempSync(join(tmpdir(), 'shardc-chromium-'));
    launching = chromium.launchPersistentContext(userDir, { executablePath: DEFAULT_CHROMIUM, headless: true, args: CHROMIUM_WEBGPU_FLAGS });
    context = await launching;
  }, 120_000);

  afterAll(async () => {
    // Also a context that came up after beforeAll timed out: a stray Chromium keeps jest alive.
    await (await launching?.catch(() => undefined))?.close();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it('the bundle stubs out the Node built-ins (the importer runs from bytes)', () => {
    expect(stubbed).toEqual(expect.arrayContaining(['node:fs', 'node:path']));
  });

  it('runs gpt-tiny (batch=2, sequence=6) on navigator.gpu and matches the CPU runtime at rtol 1e-4, atol 1e-5', async () => {
    const registry = createCoreRegistry();
    const model = loadModel(join(ROOT, 'examples', 'gpt-tiny.onnx'));
    const feeds = randomInputs(model.graph, { seed: 11, dims: { batch: 2, sequence: 6 } });
    defaultPipeline({ registry }).run(model.graph);
    const want = runGraph(model.graph, feeds, { registry });

    const page = await context!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}?manual`);
    expect(await page.evaluate('({ isolated: crossOriginIsolated, gpu: "gpu" in navigator })')).toEqual({ isolated: true, gpu: true });
    const input = Object.fromEntries([...feeds].map(([k, t]) => [k, { dtype: t.dtype, shape: [...t.shape], data: Array.from(t.data as ArrayLike<number>) }]));
    // A string, not a function: the test transform would rewrite a dynamic import() for CommonJS.
    const RUN_IN_PAGE = `async (feeds) => {
      const m = await import('/shardc.js');
      const session = await m.BrowserSession.create(await m.fetchModel('/gpt-tiny.onnx'));
      try {
        const out = await session.run(feeds);
        return {
          adapter: session.gpu.description,
          outputs: Object.entries(out).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: Array.from(t.data) })),
        };
      } finally {
        session.destroy();
      }
    }`;
    const got = (await page.evaluate(`(${RUN_IN_PAGE})(${JSON.stringify(input)})`)) as {
      adapter: string;
      outputs: { name: string; dtype: Tensor['dtype']; shape: number[]; data: number[] }[];
    };
    await page.close();
    expect(errors).toEqual([]);
    expect(got.adapter).toMatch(/swiftshader/i);
    expect(got.outputs.map((o) => o.name)).toEqual([...want.keys()]);
    for (const o of got.outputs) {
      const ref = want.get(o.name)!;
      const r = compareTensors(Tensor.from(o.dtype, o.shape, o.data), ref, { rtol: 1e-4, atol: 1e-5 });
      if (process.env.SHARDC_BROWSER_VERBOSE) console.log(o.name, o.shape, 'max |diff|', r.maxAbsDiff);
      expect({ name: o.name, shape: o.shape, message: r.message }).toEqual({ name: o.name, shape: [...ref.shape], message: '' });
    }
  }, 30000);
});
