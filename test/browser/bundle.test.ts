/**
 * Multi-device wgsl bundles in a real page: gpt-tiny partitioned with `shardc partition --target
 * wgsl` at tp=2 (megatron) and dp=2,tp=2 (data+megatron) is served from 127.0.0.1 (COOP/COEP) and
 * run in headless Debian Chromium (WebGPU on SwiftShader) with the browser entry's fetchBundle —
 * every logical device on the page's one GPUDevice, from the bundle's host programs alone (no
 * device model.onnx is fetched). Outputs must match the CPU runtime (the unsharded model, and the
 * bundle on the simulated multi-device CPU runtime) at rtol 1e-4, atol 1e-5. A bundle file changed
 * after partition is refused with its SHA-256 mismatch (checked in the page with crypto.subtle).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
import { buildBrowserBundle, serveBrowserDemo } from '../../examples/browser/server.js';
import { loadBundleForRun } from '../../src/bundle/run.js';
import { CHROMIUM_WEBGPU_FLAGS } from '../../src/bench/browser.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/import.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { GPT_TINY, cli } from '../bundle/cli-helper.js';

const ROOT = resolve(__dirname, '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const TOL = { rtol: 1e-4, atol: 1e-5 };

jest.setTimeout(240_000);

interface Case {
  name: string;
  mesh: string;
  strategy: string;
  dims: Record<string, number>;
}
const CASES: Case[] = [
  { name: 'tp2', mesh: 'tp=2', strategy: 'megatron', dims: { batch: 1, sequence: 8 } },
  { name: 'dp2tp2', mesh: 'dp=2,tp=2', strategy: 'data+megatron', dims: { batch: 2, sequence: 8 } },
];

interface PageOutput {
  name: string;
  dtype: Tensor['dtype'];
  shape: number[];
  data: number[];
}

// A string, not a function: the test transform would rewrite a dynamic import() for CommonJS.
const RUN_IN_PAGE = `async ({ url, feeds }) => {
  const m = await import('/shardc.js');
  try {
    const b = await m.fetchBundle(url);
    try {
      const out = await b.run(feeds);
      return {
        mesh: b.mesh,
        adapter: b.adapter,
        outputs: Object.entries(out).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: Array.from(t.data) })),
      };
    } finally {
      b.dispose();
    }
  } catch (e) {
    return { error: e.message };
  }
}`;

describe('multi-device wgsl bundles on navigator.gpu in headless Chromium', () => {
  let server: Server | undefined;
  let context: BrowserContext | undefined;
  let launching: Promise<BrowserContext> | undefined;
  let tmp = '';
  let url = '';

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium libvulkan1 (as root)`);
    tmp = mkdtempSync(join(tmpdir(), 'shardc-browser-bundle-'));
    const mounts: Record<string, string> = {};
    for (const c of CASES) {
      const dims = Object.entries(c.dims).map(([k, v]) => `${k}=${v}`).join(',');
      const r = await cli('partition', GPT_TINY, '--mesh', c.mesh, '--strategy', c.strategy, '--target', 'wgsl', '--dim', dims, '--out', join(tmp, c.name));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      mounts[`/${c.name}/`] = join(tmp, c.name);
    }
    // A copy of the tp=2 bundle with one byte of device 1's weights changed after partition.
    const bad = join(tmp, 'corrupt');
    copyTree(join(tmp, 'tp2'), bad);
    const w = join(bad, 'device-1', 'weights.safetensors');
    const bytes = readFileSync(w);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(w, bytes);
    mounts['/corrupt/'] = bad;

    const bundle = await buildBrowserBundle(ROOT);
    ({ server, url } = await serveBrowserDemo(ROOT, bundle.code, 0, mounts));
    launching = chromium.launchPersistentContext(join(tmp, 'chromium'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_WEBGPU_FLAGS });
    context = await launching;
  }, 120_000);

  afterAll(async () => {
    // Also a context that came up after beforeAll timed out: a stray Chromium keeps jest alive.
    await (await launching?.catch(() => undefined))?.close();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test.each(CASES)('gpt-tiny at $mesh ($strategy) runs from its host programs and matches the CPU runtime', async (c) => {
    const registry = createCoreRegistry();
    const model = loadModel(GPT_TINY);
    const feeds = randomInputs(model.graph, { seed: 5, dims: c.dims });
    const want = runGraph(model.graph, feeds, { registry });
    const simulated = new Map(loadBundleForRun(join(tmp, c.name), registry).run(feeds).map((o) => [o.name, o.tensor]));

    const page = await context!.newPage();
    const errors: string[] = [];
    const fetched: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
    await page.goto(`${url}?manual`);
    const input = Object.fromEntries([...feeds].map(([k, t]) => [k, { dtype: t.dtype, shape: [...t.shape], data: Array.from(t.data as ArrayLike<number>) }]));
    const got = (await page.evaluate(`(${RUN_IN_PAGE})(${JSON.stringify({ url: `/${c.name}/`, feeds: input })})`)) as {
      error?: string;
      mesh: string;
      adapter: string;
      outputs: PageOutput[];
    };
    await page.close();
    expect(got.error).toBeUndefined();
    expect(errors).toEqual([]);
    expect(got.mesh).toBe(c.mesh);
    expect(got.adapter).toMatch(/swiftshader/i);
    // Only the ahead-of-time artefacts: no device model.onnx, no host.js.
    const bundleFiles = fetched.filter((p) => p.startsWith(`/${c.name}/`)).map((p) => p.slice(c.name.length + 2));
    expect(bundleFiles.filter((p) => /model\.onnx|host\.js|kernels\.wgsl/.test(p))).toEqual([]);
    expect(bundleFiles).toEqual(expect.arrayContaining(['manifest.json', 'plan.json', 'device-0/host-program.json', 'device-1/weights.safetensors']));

    expect(got.outputs.map((o) => o.name)).toEqual([...want.keys()]);
    for (const o of got.outputs) {
      const t = Tensor.from(o.dtype, o.shape, o.data);
      for (const [what, ref] of [['unsharded CPU', want.get(o.name)!], ['bundle on the CPU simulator', simulated.get(o.name)!]] as const) {
        const r = compareTensors(t, ref, TOL);
        expect({ what, name: o.name, shape: o.shape, message: r.message }).toEqual({ what, name: o.name, shape: [...ref.shape], message: '' });
      }
    }
  });

  it('the demo page runs a bundle given as ?bundle=', async () => {
    const page = await context!.newPage();
    await page.goto(`${url}?bundle=/dp2tp2/`);
    await page.waitForSelector('body[data-done]', { timeout: 120_000 });
    const log = await page.textContent('#log');
    await page.close();
    expect(log).toMatch(/^bundle: mesh dp=2,tp=2 on .*swiftshader.*\nlogits: float32 \[2, 8, 96\]\nfirst values: (-?\d+\.\d{5} ){4}-?\d+\.\d{5}\n/i);
  });

  it('refuses a bundle file that does not match its SHA-256 in manifest.json', async () => {
    const page = await context!.newPage();
    await page.goto(`${url}?manual`);
    const got = (await page.evaluate(`(${RUN_IN_PAGE})(${JSON.stringify({ url: '/corrupt/', feeds: {} })})`)) as { error?: string };
    await page.close();
    expect(got.error).toMatch(/bundle file device-1\/weights\.safetensors does not match its SHA-256 in manifest\.json/);
  });

  it('refuses inputs of other shapes than the bundle was compiled for, naming the --dim values', async () => {
    const page = await context!.newPage();
    await page.goto(`${url}?manual`);
    const feeds = { input_ids: { dtype: 'int64', shape: [1, 4], data: [1, 2, 3, 4] } };
    const got = (await page.evaluate(`(${RUN_IN_PAGE})(${JSON.stringify({ url: '/tp2/', feeds })})`)) as { error?: string };
    await page.close();
    expect(got.error).toMatch(/input has shape \[1,4\] but the bundle was compiled for \[1,8\] \(batch=1,sequence=8; partition again/);
  });
});

function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    if (e.isDirectory()) copyTree(join(from, e.name), join(to, e.name));
    else copyFileSync(join(from, e.name), join(to, e.name));
  }
}
