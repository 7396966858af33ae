/** `npx tsx examples/browser/serve.ts [port]`: builds the browser bundle and serves the demo page. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBrowserBundle, serveBrowserDemo } from './server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { code, stubbed } = await buildBrowserBundle(root);
const { url } = await serveBrowserDemo(root, code, Number(process.argv[2] ?? 8080));
console.log(`shardc browser demo: ${url}  (bundle ${(code.length / 1024).toFixed(0)} KiB; stubbed: ${stubbed.join(', ') || 'none'})`);
console.log('open it in Chromium with WebGPU (see DEVELOPERS.md); Ctrl-C stops the server');
