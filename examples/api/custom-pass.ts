/**
 * A custom pass that changes the sharding plan: `npx tsx examples/api/custom-pass.ts [--json]`.
 *
 * Shards examples/gpt-tiny.onnx over tp=2 with megatron twice: with the default pass pipeline, and
 * with the pin-lm-head pass (lib/pin-lm-head.ts) inserted before `patterns`. Prints what changed
 * (collectives removed/added, layouts) and checks that both plans still compute what the unsharded
 * model computes (simulated devices on the CPU runtime). With --json: one JSON document
 * { before, after, diff, passes, maxError }. Exit 0 when the plan changed and both runs match.
 */
import { join } from 'node:path';
import {
  DeviceMesh,
  type PassManager,
  compareTensors,
  createCoreRegistry,
  createCoreShardingRules,
  defaultPipeline,
  diffPlans,
  loadModel,
  lowerPlan,
  randomInputs,
  runGraph,
  runSpmd,
  shardGraph,
  summarizePlan,
  type ShardPlan,
} from '../../src/index.js';
import { pinLmHeadPass } from './lib/pin-lm-head.js';

const MODEL = join(process.cwd(), 'examples', 'gpt-tiny.onnx');
const DIMS = { batch: 1, sequence: 8 };
const json = process.argv.includes('--json');

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const mesh = DeviceMesh.parse('tp=2');

// The user-controlled pipeline: the default passes plus ours, by name.
let pipeline: PassManager | undefined;
const withPin = (o: Parameters<typeof defaultPipeline>[0]): PassManager => (pipeline = defaultPipeline(o).insertBefore('patterns', pinLmHeadPass));

const plan = (custom: boolean): ShardPlan =>
  shardGraph(loadModel(MODEL).graph, mesh, { strategy: 'megatron', registry, rules, bindings: DIMS, ...(custom ? { pipeline: withPin } : {}) });

const before = plan(false);
const after = plan(true);
const diff = diffPlans(before, after);

// Both plans must still compute the model: run them on simulated devices against the unsharded run.
const reference = loadModel(MODEL).graph;
defaultPipeline({ registry, bindings: DIMS }).run(reference);
const feeds = randomInputs(reference, { seed: 1, dims: DIMS });
const want = runGraph(reference, feeds, { registry });
let maxError = 0;
for (const p of [before, after]) {
  const got = runSpmd(lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p }).outputs;
  for (const [name, t] of want) {
    const c = compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-5 });
    if (c.message) throw new Error(`plan ${p.strategy}: output ${name}: ${c.message}`);
    const g = got.get(name)!;
    for (let i = 0; i < t.size; i++) maxError = Math.max(maxError, Math.abs(Number(g.data[i]) - Number(t.data[i])));
  }
}

const passes = pipeline!.timings.map((t) => ({ name: t.name, changed: t.changed, stats: t.stats }));
if (json) {
  console.log(JSON.stringify({ before: summarizePlan(before), after: summarizePlan(after), diff, passes, maxError }, null, 2));
} else {
  console.log(`pipeline: ${pipeline!.names.join(' → ')}`);
  console.log(`pin-lm-head: ${JSON.stringify(passes.find((p) => p.name === 'pin-lm-head')?.stats)}`);
  console.log(`collectives before: ${summarizePlan(before).collectives.length}, after: ${summarizePlan(after).collectives.length}`);
  for (const c of diff.removed) console.log(`  - ${c}`);
  for (const c of diff.added) console.log(`  + ${c}`);
  console.log(`bytes sent per device: ${diff.bytes.before} → ${diff.bytes.after}`);
  console.log(`layouts changed: ${diff.layouts.length}`);
  for (const l of diff.layouts) console.log(`  ${l.value}: ${l.before} → ${l.after}`);
  console.log(`both plans match the unsharded model (max |error| ${maxError.toExponential(2)})`);
}
if (!diff.changed) {
  console.error('custom-pass: the pass did not change the plan');
  process.exitCode = 1;
}
