/**
 * The browser page example lives in examples/browser/ (index.html + main.js): it loads shardc's
 * browser entry (src/browser/index.ts) and runs gpt-tiny on navigator.gpu, checking it against the
 * CPU runtime. Serve it with `npx tsx examples/browser/serve.ts [port]` and open the printed URL
 * in Chromium with WebGPU (DEVELOPERS.md lists the flags; test/browser runs it headless).
 *
 * `npx tsx examples/api/browser.ts` checks that the page's script bundles (esbuild, as serve.ts
 * does) and prints where to go next; it starts no server and no browser.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildBrowserBundle } from '../browser/server.js';

const root = process.cwd();
for (const f of ['index.html', 'main.js']) if (!existsSync(join(root, 'examples', 'browser', f))) throw new Error(`examples/browser/${f} is missing`);
const { code, stubbed } = await buildBrowserBundle(root);
console.log(`browser entry bundles: ${(code.length / 1024).toFixed(0)} KiB (Node built-ins stubbed: ${stubbed.join(', ') || 'none'})`);
console.log('serve the page: npx tsx examples/browser/serve.ts 8080, then open http://127.0.0.1:8080/ in Chromium with WebGPU');
