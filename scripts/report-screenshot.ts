/**
 * Makes docs/report-screenshot.png: partitions examples/gpt-tiny.onnx for tp=2 with megatron into
 * a temporary bundle, opens its report.html in headless Debian Chromium (playwright-core,
 * /usr/bin/chromium; never `playwright install`) and saves the first screen.
 *   npx tsx scripts/report-screenshot.ts [out.png] [bundle-dir-to-keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { partitionModel } from '../src/bundle/partition.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(ROOT, 'docs', 'report-screenshot.png'));
const tmp = mkdtempSync(join(tmpdir(), 'shardc-report-'));
const bundle = process.argv[3] ? resolve(process.argv[3]) : join(tmp, 'bundle');
partitionModel(join(ROOT, 'examples', 'gpt-tiny.onnx'), {
  mesh: 'tp=2',
  strategy: 'megatron',
  target: 'cpu',
  bindings: { batch: 1, sequence: 8 },
  out: bundle,
  force: true,
  shardcVersion: '0.0.0',
});
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
  await page.goto(pathToFileURL(join(bundle, 'report.html')).href);
  // Scroll the graph to the first layer's attention block so the picture shows sharded values and an all-reduce.
  await page.evaluate(`(() => { const g = document.querySelector('.graph'); const n = document.getElementById(document.querySelector('tr[data-target]:nth-child(2)')?.getAttribute('data-target') ?? ''); if (g && n) { n.classList.add('hl'); g.scrollTop = Math.max(0, n.getBoundingClientRect().top - g.getBoundingClientRect().top - g.clientHeight * 0.6); } })()`);
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  rmSync(tmp, { recursive: true, force: true });
}
