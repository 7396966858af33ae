/**
 * Derived device programs (src/passes/sharding/lower.ts DeviceLowering.derive): a device whose
 * every value has device 0's local shape gets its program copied from device 0's, with its own
 * weight blocks, collective groups and re-localized per-device nodes (the vocabulary-parallel
 * Gather's offsets). The reference is the same plan lowered with every device in full
 * (derive: false): the printed programs (constants' data, attributes, meta), which constants are
 * weight blocks and the device twins must be the same, and derivation must have happened where
 * the splits are even (fewer rule look-ups) and not changed anything where they are not.
 */
import { join } from 'node:path';
import { shardModelFile } from '../../src/bundle/partition.js';
import { resolveStrategy } from '../../src/bundle/strategy.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { printGraph } from '../../src/ir/text-print.js';
import { type DeviceProgram, deviceTwin, isConstantBlock, lowerPlan, twinDifferences } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { ShardingRuleRegistry } from '../../src/passes/sharding/rule.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { PACKAGE_ROOT } from '../bundle/cli-helper.js';

const registry = createCoreRegistry();

/** The core rules, counting look-ups (one per node the lowering localizes on a device). */
class CountingRules extends ShardingRuleRegistry {
  lookups = 0;
  constructor() {
    super();
    this.register(...createCoreShardingRules().list());
  }
  override get(op: string, domain?: string) {
    this.lookups++;
    return super.get(op, domain);
  }
}

/** What a device program is, as text: the printed graph, which initializers are weight blocks, its twin and differing constants. */
function programsText(programs: DeviceProgram[]): string[] {
  return programs.map((p) => {
    const twin = deviceTwin(p.graph);
    const twinIndex = twin ? programs.findIndex((q) => q.graph === twin) : -1;
    const blocks = p.graph.initializers.filter((v) => v.constant && isConstantBlock(v.constant)).map((v) => v.name);
    return [printGraph(p.graph), `blocks ${blocks.join(',')}`, `twin ${twinIndex} ${[...twinDifferences(p.graph)].join(',')}`].join('\n');
  });
}

const cases: [string, string, string, boolean][] = [
  ['gpt-tiny.onnx', 'tp=2', 'megatron', true],
  ['gpt-tiny.onnx', 'dp=2,tp=2', 'data+megatron', true],
  ['gpt-tiny.onnx', 'tp=3', 'megatron', false],
  ['llama-tiny.onnx', 'tp=4', 'megatron', true],
  ['llama-tiny.onnx', 'tp=2', 'sequence', true],
  ['bert-tiny.onnx', 'tp=2', 'megatron', true],
  ['llama-tiny.onnx', 'tp=2,pp=2', 'megatron+pipeline', false],
];

test.each(cases)('%s %s %s: derived programs equal the programs lowered in full', (file, meshSpec, strategy, derives) => {
  const mesh = DeviceMesh.parse(meshSpec);
  const { plan } = shardModelFile(join(PACKAGE_ROOT, 'examples', file), {
    mesh,
    strategy: resolveStrategy(strategy),
    bindings: { batch: 2, sequence: 16 },
    registry,
    rules: createCoreShardingRules(),
  });
  const fullRules = new CountingRules();
  const full = lowerPlan(plan, { registry, rules: fullRules, derive: false });
  const derivedRules = new CountingRules();
  const derived = lowerPlan(plan, { registry, rules: derivedRules });
  expect(derived.map((p) => [p.device, p.coords])).toEqual(full.map((p) => [p.device, p.coords]));
  expect(programsText(derived)).toEqual(programsText(full));
  if (derives) expect(derivedRules.lookups).toBeLessThan(fullRules.lookups);
});
