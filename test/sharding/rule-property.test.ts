/**
 * Property test of the sharding rules (DTensor's strategy validation): for every ONNX backend
 * node test whose ops are all core ops (CORE_OPS.txt) and whose graph is one node (plus Constant
 * nodes feeding it), every candidate of the op's rule, plus the implicit all-R one, is run on
 * simulated devices at axis sizes 2 and 3 (uneven) by check-rule.ts against the unsharded
 * reference evaluation, with the inputs of test_data_set_0. It fails listing
 *   (a) wrong candidates (test, axis size, candidate, why), and
 *   (b) core ops without a rule row (an explicit replicate-only row `candidates: () => []` counts).
 *
 * Inputs that count as compile-time constants for the rules: initializers, Constant outputs, and
 * non-float inputs of rank ≤ 1 (shapes, axes, pads, training flags: graph inputs in the node
 * tests, folded constants in real models).
 *
 * SHARDC_RULE_FILTER=<regex on op name> restricts both checks (e.g. while a family is written).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isFloat } from '../../src/ir/dtype.js';
import type { Node } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/import.js';
import { readTensorFile } from '../../src/onnx/tensor-file.js';
import { checkCandidate, expandCandidates, formatCandidate, ruleContextFor } from '../../src/passes/sharding/check-rule.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { listNodeTests } from '../../src/verify/conformance.js';
import { feedsFromFiles, numberedTensorFiles, testDataSets } from '../../src/verify/feeds.js';
import { coreOpsOf, readCoreOps } from '../../src/verify/model-ops.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');
const FILTER = process.env.SHARDC_RULE_FILTER ? new RegExp(process.env.SHARDC_RULE_FILTER) : undefined;
const AXIS_SIZES = [2, 3];

const registry = createCoreRegistry();
const rules = createCoreShardingRules();

interface Case {
  test: string;
  node: Node;
  inputs: (Tensor | undefined)[];
  constants: boolean[];
}

/** The single non-Constant node of a core test with its global inputs, or why it is skipped. */
function loadCase(test: string): Case | string {
  const model = loadModel(join(ROOT, test, 'model.onnx'));
  const g = model.graph;
  // The node under test, and Constant nodes feeding it (a lone Constant is itself under test).
  const main = g.nodes.length === 1 ? g.nodes : g.nodes.filter((n) => n.op !== 'Constant');
  const consts = g.nodes.filter((n) => !main.includes(n));
  if (consts.some((n) => n.op !== 'Constant')) return `${g.nodes.length} nodes`;
  if (main.length !== 1) return `${g.nodes.length} nodes`;
  const node = main[0]!;
  const set = testDataSets(join(ROOT, test))[0];
  if (!set) return 'no data set';
  const feeds = feedsFromFiles(g, numberedTensorFiles(set, 'input').map((f) => readTensorFile(f)), set);
  const known = new Map<string, Tensor>(feeds);
  for (const c of consts) {
    const out = registry.forNode(c).evaluate({ node: c, attrs: c.attrs, inputs: [] });
    c.outputs.forEach((v, i) => known.set(v.name, out[i]!));
  }
  const inputs = node.inputs.map((v) => (v ? (known.get(v.name) ?? v.constant?.load()) : undefined));
  if (node.inputs.some((v, i) => v && !inputs[i])) return 'an input is not fed';
  const constants = node.inputs.map((v, i) => {
    const t = inputs[i];
    if (!v || !t) return false;
    if (v.constant || !feeds.has(v.name)) return true;
    return t.dtype !== 'string' && !isFloat(t.dtype) && t.rank <= 1;
  });
  return { test, node, inputs, constants };
}

const wrong: string[] = [];
const skipped: string[] = [];
const opsSeen = new Set<string>();
let checked = 0;
let cases = 0;

beforeAll(() => {
  if (!existsSync(ROOT)) throw new Error(`ONNX node tests not found at ${ROOT}`);
  const coreOps = readCoreOps(join(ROOT, 'CORE_OPS.txt'));
  for (const test of listNodeTests(ROOT)) {
    const cls = coreOpsOf(join(ROOT, test, 'model.onnx'), coreOps);
    if (!cls.core) continue;
    if (FILTER && !cls.ops.some((o) => FILTER.test(o))) continue;
    let c: Case | string;
    try {
      c = loadCase(test);
    } catch (e) {
      skipped.push(`${test}: ${(e as Error).message}`);
      continue;
    }
    if (typeof c === 'string') {
      skipped.push(`${test}: ${c}`);
      continue;
    }
    const { node, inputs, constants } = c;
    if (FILTER && !FILTER.test(node.op)) continue;
    let outs: Tensor[];
    try {
      outs = registry.forNode(node).evaluate({ node, attrs: node.attrs, inputs });
    } catch (e) {
      skipped.push(`${test}: reference evaluation fails: ${(e as Error).message}`);
      continue;
    }
    const rule = rules.get(node.op, node.domain);
    if (!rule) continue; // reported as missing below
    cases++;
    opsSeen.add(node.op);
    for (const k of AXIS_SIZES) {
      let cands;
      try {
        cands = expandCandidates(rule, ruleContextFor(node, inputs, outs, k, constants));
      } catch (e) {
        wrong.push(`${test} k=${k}: candidates() throws: ${(e as Error).message}`);
        continue;
      }
      for (const cand of cands) {
        checked++;
        let r;
        try {
          r = checkCandidate({ node, inputs, registry, constants }, rule, cand, k);
        } catch (e) {
          r = { ok: false, message: `${formatCandidate(cand)}: check throws ${(e as Error).message}` };
        }
        if (!r.ok) wrong.push(`${test} (${node.op}) k=${k}: ${r.message}`);
      }
    }
  }
  console.log(
    `rule property: ${cases} single-node core tests, ${opsSeen.size} ops, ${checked} candidate checks, ${wrong.length} wrong, ${skipped.length} skipped` +
      (skipped.length ? `\n  skipped:\n    ${skipped.join('\n    ')}` : ''),
  );
});

test('every candidate of every rule matches the unsharded reference on 2 and 3 devices', () => {
  expect(cases).toBeGreaterThan(FILTER ? 0 : 500);
  expect(wrong).toEqual([]);
});

test('every core op has a sharding rule row', () => {
  const coreOps = [...readCoreOps(join(ROOT, 'CORE_OPS.txt'))].sort();
  const missing = coreOps.filter((op) => (!FILTER || FILTER.test(op)) && !rules.get(op));
  expect(missing).toEqual([]);
});
