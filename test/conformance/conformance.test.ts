/**
 * The ONNX backend node tests on the CPU runtime, against a committed expected-results file
 * (test/conformance/expected-cpu.json: `{ "<test>": "pass" | "fail" | "unsupported" }`). Any change
 * of status fails, a regression or a new pass alike, so the file always says where we stand.
 * Accept the current results with:
 *
 *   SHARDC_ACCEPT=1 npx jest test/conformance
 *
 * (`npm run conformance:accept` writes the command line's `--json` report, which this test also reads.)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { type ConformanceReport, type TestStatus, runConformance } from '../../src/verify/conformance.js';
import { coreOpsOf, modelOps, readCoreOps } from '../../src/verify/model-ops.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');
const EXPECTED = join(__dirname, 'expected-cpu.json');
const CORE_TESTS = 704;
const CORE_TARGET = 0.98;

type Expected = Record<string, TestStatus>;

function readExpected(): Expected {
  if (!existsSync(EXPECTED)) return {};
  const doc = JSON.parse(readFileSync(EXPECTED, 'utf8')) as Expected | { tests: { name: string; status: TestStatus }[] };
  if (Array.isArray((doc as { tests?: unknown }).tests))
    return Object.fromEntries((doc as { tests: { name: string; status: TestStatus }[] }).tests.map((t) => [t.name, t.status]));
  return doc as Expected;
}

let report: ConformanceReport;
let core: Set<string>;

beforeAll(() => {
  report = runConformance(ROOT, { registry: createCoreRegistry() });
  const coreOps = readCoreOps(join(ROOT, 'CORE_OPS.txt'));
  core = new Set(report.tests.filter((t) => coreOpsOf(join(ROOT, t.name, 'model.onnx'), coreOps).core).map((t) => t.name));
});

describe('ONNX backend node tests (cpu)', () => {
  it('match the expected results (SHARDC_ACCEPT=1 to accept changes)', () => {
    const now: Expected = Object.fromEntries(report.tests.map((t) => [t.name, t.status]));
    if (process.env.SHARDC_ACCEPT === '1') {
      writeFileSync(EXPECTED, JSON.stringify(now, null, 2) + '\n');
      return;
    }
    const expected = readExpected();
    const messages = new Map(report.tests.map((t) => [t.name, t.message]));
    const changes: string[] = [];
    for (const name of [...new Set([...Object.keys(expected), ...Object.keys(now)])].sort()) {
      const was = expected[name] ?? '(absent)';
      const is = now[name] ?? '(absent)';
      if (was !== is) changes.push(`${name}: expected ${was}, now ${is}${messages.get(name) ? ` (${messages.get(name)})` : ''}`);
    }
    if (changes.length) throw new Error(`${changes.length} conformance change(s); accept with SHARDC_ACCEPT=1 npx jest test/conformance\n${changes.join('\n')}`);
  });

  it('never reports an unsupported test as a pass (every passing test ran all its ops)', () => {
    const registry = createCoreRegistry();
    const wrong = report.tests
      .filter((t) => t.status === 'pass')
      .filter((t) => modelOps(join(ROOT, t.name, 'model.onnx')).some((o) => !registry.has(o.op, o.domain)))
      .map((t) => t.name);
    expect(wrong).toEqual([]);
  });

  it(`passes at least ${CORE_TARGET * 100}% of the ${CORE_TESTS} core tests`, () => {
    expect(core.size).toBe(CORE_TESTS);
    const coreResults = report.tests.filter((t) => core.has(t.name));
    const passed = coreResults.filter((t) => t.status === 'pass').length;
    const failed = coreResults.filter((t) => t.status === 'fail').length;
    const summary = `core ${CORE_TESTS}: ${passed} pass (${((100 * passed) / CORE_TESTS).toFixed(1)}%), ${failed} fail, ${CORE_TESTS - passed - failed} unsupported; all ${report.tests.length}: ${report.passed} pass, ${report.failed} fail, ${report.unsupported} unsupported`;
    if (passed < CORE_TARGET * CORE_TESTS) {
      const missing = coreResults.filter((t) => t.status !== 'pass').map((t) => `${t.status} ${t.name}: ${t.message}`);
      throw new Error(`${summary}\nnot passing:\n${missing.join('\n')}`);
    }
    expect(passed).toBeGreaterThanOrEqual(CORE_TARGET * CORE_TESTS);
  });
});
