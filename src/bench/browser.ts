/**
 * `shardc bench --browser`: the Node side of the in-page benchmark. Bundles the page script
 * (page.ts with the browser entry, esbuild; Node built-ins stubbed), serves it with the model
 * bytes and onnxruntime-web's dist files from 127.0.0.1 with COOP/COEP (cross-origin isolation, so
 * ORT's wasm threads work; nothing is fetched from the network), launches the system Chromium
 * headless with WebGPU on SwiftShader through playwright-core (DEVELOPERS.md), and runs
 * runPageBench in one page.
 *
 * esbuild and playwright-core are development dependencies: loaded on demand, and a clear
 * UserError when missing.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, sep } from 'node:path';
import { UserError } from '../ir/errors.js';
import type { PageBenchArgs, PageBenchResult } from './page.js';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** The flags that give headless Chromium a WebGPU adapter without a GPU (DEVELOPERS.md). */
export const CHROMIUM_WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-gpu-sandbox',
];

async function loadDevDependency<T>(name: string, why: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    throw new UserError(`--browser needs the npm package ${name} (${why}), which cannot be loaded: ${(e as Error).message.split('\n')[0]}; run npm install in the shardc checkout`);
  }
}

/** The page script's entry: the TypeScript source in a checkout, else the built JavaScript. */
function pageEntry(packageRoot: string): string {
  for (const p of [join(packageRoot, 'src', 'bench', 'page.ts'), join(packageRoot, 'dist', 'bench', 'page.js')]) if (existsSync(p)) return p;
  throw new UserError(`cannot find the bench page script (src/bench/page.ts or dist/bench/page.js)`, { file: packageRoot });
}

/**
 * An esbuild plugin replacing Node built-ins (`node:*`) by stubs whose functions throw when called;
 * `stubbed` (when given) collects the modules it replaced.
 */
export function nodeStubPlugin(req: NodeRequire, stubbed?: Set<string>): import('esbuild').Plugin {
  return {
    name: 'stub-node-builtins',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
      b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => {
        stubbed?.add(args.path);
        const names = Object.keys(req(args.path) as object).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n) && n !== 'default');
        const fail = `() => { throw new Error(${JSON.stringify(`${args.path} is not available in the browser (shardc's browser entry works from bytes)`)}); }`;
        return { contents: `const fail = ${fail};\n${names.map((n) => `export const ${n} = fail;`).join('\n')}\nexport default {};\n`, loader: 'js' };
      });
    },
  };
}

/** Bundles `entry` for a page (ESM); Node built-ins become stubs that throw when called. */
export async function bundleForBrowser(packageRoot: string, entry: string): Promise<string> {
  const esbuild = await loadDevDependency<typeof import('esbuild')>('esbuild', 'it bundles the page script');
  const req = createRequire(join(packageRoot, 'package.json'));
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [nodeStubPlugin(req)],
  });
  return result.outputFiles[0]!.text;
}

/** onnxruntime-web's dist folder (ort*.mjs and the wasm files). */
export function ortWebDist(packageRoot: string): string {
  try {
    // The package's `node` export is dist/ort.node.min.js: its folder holds the browser builds too.
    const dist = dirname(createRequire(join(packageRoot, 'package.json')).resolve('onnxruntime-web'));
    if (existsSync(join(dist, 'ort.min.mjs')) && existsSync(join(dist, 'ort.webgpu.min.mjs'))) return dist;
  } catch {
    /* reported below */
  }
  throw new UserError('--compare onnxruntime-web needs the npm package onnxruntime-web (dist/ort.min.mjs, dist/ort.webgpu.min.mjs); run npm install');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

const PAGE_HTML = '<!doctype html><meta charset="utf-8"><title>shardc bench</title><p>shardc bench</p>\n';

/** Serves `/` (an empty page), `/bench.js`, `/model.onnx` and `/ort/<file>` on 127.0.0.1. */
export async function serveBench(files: { bundle: string; model: Uint8Array; ortDist?: string }): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    const send = (type: string, body: string | Uint8Array): void => {
      res.setHeader('Content-Type', type);
      res.end(body);
    };
    if (path === '/') return send(TYPES['.html']!, PAGE_HTML);
    if (path === '/bench.js') return send(TYPES['.js']!, files.bundle);
    if (path === '/model.onnx') return send(TYPES['.onnx']!, files.model);
    if (files.ortDist && path.startsWith('/ort/')) {
      const file = normalize(join(files.ortDist, path.slice('/ort/'.length)));
      if (file.startsWith(files.ortDist + sep) && existsSync(file)) return send(TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', readFileSync(file));
    }
    res.statusCode = 404;
    res.end('not found');
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ok);
  });
  const addr = server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/` };
}

export interface BrowserBenchOptions {
  packageRoot: string;
  /** A self-contained ONNX model (weights inline). */
  model: Uint8Array;
  args: Omit<PageBenchArgs, 'modelUrl' | 'ortBase'>;
  /** Chromium executable (default SHARDC_CHROMIUM or /usr/bin/chromium). */
  chromium?: string;
}

/** Runs the page benchmark in headless Chromium; the page's result. */
export async function runBrowserBench(opts: BrowserBenchOptions): Promise<PageBenchResult> {
  const chromiumPath = opts.chromium ?? process.env.SHARDC_CHROMIUM ?? DEFAULT_CHROMIUM;
  if (!existsSync(chromiumPath))
    throw new UserError(`--browser needs Chromium, which is not at ${chromiumPath}: install it with apt-get install chromium libvulkan1 (or set SHARDC_CHROMIUM)`);
  const usesOrt = opts.args.engines.some((e) => e !== 'shardc');
  const ortDist = usesOrt ? ortWebDist(opts.packageRoot) : undefined;
  const pw = await loadDevDependency<typeof import('playwright-core')>('playwright-core', 'it drives Chromium');
  const bundle = await bundleForBrowser(opts.packageRoot, pageEntry(opts.packageRoot));
  const { server, url } = await serveBench({ bundle, model: opts.model, ortDist });
  const userDir = mkdtempSync(join(tmpdir(), 'shardc-bench-chromium-'));
  let context: import('playwright-core').BrowserContext | undefined;
  try {
    try {
      context = await pw.chromium.launchPersistentContext(userDir, { executablePath: chromiumPath, headless: true, args: CHROMIUM_WEBGPU_FLAGS });
    } catch (e) {
      throw new UserError(`cannot start Chromium (${chromiumPath}): ${(e as Error).message.split('\n')[0]}`);
    }
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const env = (await page.evaluate('({ isolated: globalThis.crossOriginIsolated === true, gpu: "gpu" in navigator })')) as { isolated: boolean; gpu: boolean };
    if (!env.gpu) throw new UserError(`Chromium at ${chromiumPath} exposes no navigator.gpu (WebGPU) to the bench page; see DEVELOPERS.md for the flags`);
    const args: PageBenchArgs = { ...opts.args, modelUrl: '/model.onnx', ortBase: '/ort/' };
    // A string, not a function: a test transform would rewrite a dynamic import() for CommonJS.
    const result = (await page.evaluate(`import('/bench.js').then((m) => m.runPageBench(${JSON.stringify(args)}))`)) as PageBenchResult;
    if (errors.length) throw new Error(`the bench page failed: ${errors[0]}`);
    const shardc = result.engines.find((e) => e.engine === 'shardc');
    if (shardc?.error && /adapter|navigator\.gpu/.test(shardc.error)) throw new UserError(`no WebGPU adapter in Chromium: ${shardc.error}`);
    return result;
  } finally {
    await context?.close();
    await new Promise<void>((ok) => server.close(() => ok()));
    rmSync(userDir, { recursive: true, force: true });
  }
}
