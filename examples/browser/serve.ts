/**
 * `npx tsx examples/browser/serve.ts [port] [bundle-dir]`: builds the browser bundle and serves the
 * demo page; with a wgsl bundle directory (shardc partition --target wgsl), serves it at /bundle/
 * and prints the page address that runs it.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowserBundle, serveBrowserDemo } from './server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bundleDir = process.argv[3];
const { code, stubbed } = await buildBrowserBundle(root);
const { url } = await serveBrowserDemo(root, code, Number(process.argv[2] ?? 8080), bundleDir ? { '/bundle/': resolve(bundleDir) } : {});
console.log(`shardc browser demo: ${url}  (bundle ${(code.length / 1024).toFixed(0)} KiB; stubbed: ${stubbed.join(', ') || 'none'})`);
if (bundleDir) console.log(`wgsl bundle ${bundleDir}: ${url}?bundle=/bundle/`);
console.log('open it in Chromium with WebGPU (see DEVELOPERS.md); Ctrl-C stops the server');
