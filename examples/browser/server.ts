/**
 * Builds the browser bundle (src/browser/index.ts → one ESM file, with esbuild) and serves the demo
 * page from 127.0.0.1 with the COOP/COEP headers (cross-origin isolation). Used by
 * `npx tsx examples/browser/serve.ts` and by test/browser/chromium.test.ts.
 *
 * Node built-ins (node:fs, node:path, node:module, ...) reached from the importer's file paths are
 * replaced in the bundle by stubs whose functions throw: the browser entry imports from bytes only.
 */
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join, normalize, resolve, sep } from 'node:path';
import { build } from 'esbuild';
import { nodeStubPlugin } from '../../src/bench/browser.js';

/**
 * Bundles the browser entry (`root`: the package root); returns the JavaScript and the Node
 * built-ins that were stubbed.
 */
export async function buildBrowserBundle(root: string): Promise<{ code: string; stubbed: string[] }> {
  const stubbed = new Set<string>();
  const req = createRequire(join(root, 'package.json'));
  const result = await build({
    entryPoints: [join(root, 'src', 'browser', 'index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    plugins: [nodeStubPlugin(req, stubbed)],
  });
  return { code: result.outputFiles[0].text, stubbed: [...stubbed].sort() };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.onnx': 'application/octet-stream',
  '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
};

/**
 * Serves `/shardc.js` (the bundle), `/` (examples/browser/index.html) and files under the package's
 * examples/ folder (under `packageRoot`), on 127.0.0.1 at an ephemeral port (or `port`). `mounts`
 * serves more folders: URL prefix (e.g. '/bundle/') → directory (e.g. a partitioned bundle).
 */
export async function serveBrowserDemo(
  packageRoot: string,
  bundle: string,
  port = 0,
  mounts: Readonly<Record<string, string>> = {},
): Promise<{ server: Server; url: string }> {
  const examples = resolve(packageRoot, 'examples');
  const server = createServer((req, res) => {
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
    if (path === '/shardc.js') {
      res.setHeader('Content-Type', TYPES['.js']);
      res.end(bundle);
      return;
    }
    const mount = Object.keys(mounts).find((prefix) => path.startsWith(prefix));
    const root = mount ? resolve(mounts[mount]) : examples;
    const file = normalize(join(root, mount ? path.slice(mount.length) : path === '/' ? 'browser/index.html' : path));
    if (!file.startsWith(root + sep)) {
      res.statusCode = 403;
      res.end();
      return;
    }
    try {
      const body = readFileSync(file);
      res.setHeader('Content-Type', TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream');
      res.end(body);
    } catch {
      res.statusCode = 404;
      res.end('not found');
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  const addr = server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}/` };
}
