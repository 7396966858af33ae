/**
 * Developer loop for op work: runs the ONNX backend node tests on the CPU runtime straight from
 * the TypeScript sources (no build).
 *
 *   npx tsx scripts/conformance-dev.ts [--filter REGEX] [--failures] [--root DIR]
 *
 * Prints `pass|fail|unsupported <test>: <message>` per test (`--failures`: only fail lines), then
 * the totals, overall and over the core tests (every op in CORE_OPS.txt).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCoreRegistry } from '../src/ir/ops/index.js';
import { runConformance } from '../src/verify/conformance.js';
import { coreOpsOf, readCoreOps } from '../src/verify/model-ops.js';

function parseArgs(argv: string[]): { filter?: RegExp; failures: boolean; root: string } {
  const here = dirname(fileURLToPath(import.meta.url));
  let root = join(here, '..', '..', 'shared', 'onnx-node-tests');
  let filter: RegExp | undefined;
  let failures = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--filter') filter = new RegExp(argv[++i] ?? '');
    else if (a.startsWith('--filter=')) filter = new RegExp(a.slice(9));
    else if (a === '--failures') failures = true;
    else if (a === '--root') root = argv[++i] ?? root;
    else {
      console.error(`usage: npx tsx scripts/conformance-dev.ts [--filter REGEX] [--failures] [--root DIR]`);
      process.exit(1);
    }
  }
  return { filter, failures, root };
}

const { filter, failures, root } = parseArgs(process.argv.slice(2));
const started = Date.now();
const report = runConformance(root, {
  registry: createCoreRegistry(),
  filter,
  onResult: (r) => {
    if (failures && r.status !== 'fail') return;
    console.log(`${r.status} ${r.name}${r.message ? `: ${r.message}` : ''}`);
  },
});
console.log(`total ${report.tests.length}: ${report.passed} pass, ${report.failed} fail, ${report.unsupported} unsupported`);

const coreFile = join(root, 'CORE_OPS.txt');
if (existsSync(coreFile)) {
  const coreOps = readCoreOps(coreFile);
  const core = report.tests.filter((t) => coreOpsOf(join(root, t.name, 'model.onnx'), coreOps).core);
  const pass = core.filter((t) => t.status === 'pass').length;
  const fail = core.filter((t) => t.status === 'fail').length;
  const pct = core.length ? ((100 * pass) / core.length).toFixed(1) : '0.0';
  console.log(`core ${core.length}: ${pass} pass (${pct}%), ${fail} fail, ${core.length - pass - fail} unsupported`);
}
console.log(`time ${((Date.now() - started) / 1000).toFixed(1)}s`);
