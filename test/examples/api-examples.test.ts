/**
 * The library examples (examples/api) through the public API only: the custom pass changes the
 * megatron plan of gpt-tiny (the logits AllGather disappears, the LM head weight becomes R) and
 * both plans still compute the unsharded model; the example scripts themselves run and report it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as shardc from '../../src/index.js';
import { pinLmHeadPass } from '../../examples/api/lib/pin-lm-head.js';

const ROOT = join(__dirname, '..', '..');
const GPT = join(ROOT, 'examples', 'gpt-tiny.onnx');
const DIMS = { batch: 1, sequence: 6 };

function runExample(file: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', 'api', file), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('custom pass (examples/api/lib/pin-lm-head.ts)', () => {
  const registry = shardc.createCoreRegistry();
  const rules = shardc.createCoreShardingRules();
  const mesh = shardc.DeviceMesh.parse('tp=2');
  let pm: shardc.PassManager | undefined;
  const plan = (custom: boolean): shardc.ShardPlan =>
    shardc.shardGraph(shardc.loadModel(GPT).graph, mesh, {
      strategy: 'megatron',
      registry,
      rules,
      bindings: DIMS,
      pipeline: custom ? (o) => (pm = shardc.defaultPipeline(o).insertBefore('patterns', pinLmHeadPass)) : undefined,
    });

  test('changes the plan: no logits AllGather, the LM head weight replicated; both plans compute the model', () => {
    const before = plan(false);
    const after = plan(true);
    expect(pm!.names).toEqual(['canonicalize', 'shape-inference', 'constant-folding', 'dead-code', 'pin-lm-head', 'patterns']);
    expect(pm!.timings.find((t) => t.name === 'pin-lm-head')).toMatchObject({ changed: true, stats: { pinned: 1 } });
    const diff = shardc.diffPlans(before, after);
    expect(diff.removed).toEqual(['AllGather tp: logits']);
    expect(diff.added).toEqual([]);
    expect(diff.layouts).toEqual([{ value: 'transpose_158', before: '{tp: S(1)}', after: '{tp: R}' }]);
    // 1 AllGather of [1,6,96] float32 logits gone: the estimate drops by what it cost.
    expect(diff.bytes.after).toBeLessThan(diff.bytes.before);
    expect(after.seeds.get('transpose_158')).toMatch(/pinned: pass pin-lm-head/);
    expect(before.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(5);
    expect(after.collectives.filter((c) => c.kind === 'AllReduce')).toHaveLength(5);

    const reference = shardc.loadModel(GPT).graph;
    shardc.defaultPipeline({ registry, bindings: DIMS }).run(reference);
    const feeds = shardc.randomInputs(reference, { seed: 2, dims: DIMS });
    const want = shardc.runGraph(reference, feeds, { registry });
    for (const p of [before, after]) {
      const got = shardc.runSpmd(shardc.lowerPlan(p, { registry, rules }), mesh, feeds, { registry, plan: p }).outputs;
      expect(shardc.compareTensors(got.get('logits')!, want.get('logits')!, { rtol: 1e-5, atol: 1e-5 }).message).toBe('');
    }
  });

  test('the pass manager: insert/replace/remove by name; unknown names are user errors', () => {
    const p = shardc.defaultPipeline().insertBefore('constant-folding', pinLmHeadPass);
    expect(p.names.indexOf('pin-lm-head')).toBe(p.names.indexOf('constant-folding') - 1);
    const other = shardc.definePass('other', () => false);
    p.replace('pin-lm-head', other).remove('dead-code');
    expect(p.names).toEqual(['canonicalize', 'shape-inference', 'other', 'constant-folding', 'patterns']);
    expect(() => p.insertAfter('no-such-pass', pinLmHeadPass)).toThrow(shardc.UserError);
    expect(() => p.insertAfter('no-such-pass', pinLmHeadPass)).toThrow(/no pass named "no-such-pass" \(passes: canonicalize, /);
    expect(() => p.replace('canonicalize', other)).toThrow(/already in the pipeline/);
    expect(() => p.remove('dead-code')).toThrow(shardc.UserError);
  });

  test('a pinned placement that does not parse is a user error naming the tensor', () => {
    const v = new shardc.Value('w', 'float32', [2, 2]);
    expect(() => shardc.pinLayout(v, { tp: 'S(x)' }, 'test')).toThrow(/not a placement/);
    shardc.pinLayout(v, { tp: shardc.Shard(1, 2) }, 'why');
    expect(v.meta.get(`${shardc.PIN_META}tp`)).toBe('S(1:2)');
  });
});

describe('example scripts', () => {
  test('custom-pass.ts --json reports the changed plan and matching runs', () => {
    const r = runExample('custom-pass.ts', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { diff: shardc.PlanDiff; maxError: number; before: shardc.PlanSummary; after: shardc.PlanSummary };
    expect(doc.diff.changed).toBe(true);
    expect(doc.diff.removed).toEqual(['AllGather tp: logits']);
    expect(doc.before.collectives).toHaveLength(6);
    expect(doc.after.collectives).toHaveLength(5);
    expect(doc.maxError).toBeLessThan(1e-4);
  });

  test('custom-op.ts: one AllReduce with the rule, more without, and the sharded run matches', () => {
    const r = runExample('custom-op.ts');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/strategy custom:handMegatron on tp=2: collectives 1 AllReduce tp\n/);
    expect(r.stdout).toMatch(/a: \{tp: S\(1\)\}/);
    expect(r.stdout).toMatch(/without the SquaredRelu rule: collectives 1 AllGather tp/);
    expect(r.stdout).toMatch(/sharded vs unsharded: match/);
  });
});
