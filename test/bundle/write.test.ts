import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { explainBundle, formatExplanation } from '../../src/bundle/explain.js';
import { parseSafetensors } from '../../src/bundle/safetensors.js';
import { loadBundleForRun } from '../../src/bundle/run.js';
import { type BundleInput, writeBundle } from '../../src/bundle/write.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { UserError } from '../../src/ir/errors.js';
import { loadModel } from '../../src/onnx/import.js';
import { exportModel } from '../../src/onnx/export.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { ShardingRuleRegistry } from '../../src/passes/sharding/rule.js';
import { shardTensor } from '../../src/passes/sharding/shards.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { mlpGraph, mlpPlan, randomTensor } from './fixtures.js';

const registry = createCoreRegistry();
const rules = new ShardingRuleRegistry();
let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-bundle-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function input(tp: number, env: Record<string, string | undefined> = {}): BundleInput {
  const plan = mlpPlan(tp);
  return {
    plan,
    programs: lowerPlan(plan, { registry, rules }),
    registry,
    exportGraph: (g) => exportModel(g),
    model: { file: 'mlp.onnx', sha256: 'ab'.repeat(32) },
    strategy: 'megatron',
    target: 'cpu',
    shardcVersion: '0.1.0',
    env,
  };
}

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('bundle writer (hand-made MLP plan, tp=3: hidden 16 → 6,5,5)', () => {
  it('writes the documented files, and the manifest hashes every other file', () => {
    const out = join(tmp, 'b');
    const built = writeBundle(out, input(3));
    const files = listFiles(out);
    expect(files).toEqual([
      'device-0/model.onnx',
      'device-0/weights.safetensors',
      'device-1/model.onnx',
      'device-1/weights.safetensors',
      'device-2/model.onnx',
      'device-2/weights.safetensors',
      'manifest.json',
      'plan.json',
      'report.html',
      'report.json',
      'schedule.json',
    ]);
    const manifestBytes = readFileSync(join(out, 'manifest.json'));
    expect(sha(manifestBytes)).toBe(built.manifestSha256);
    const m = JSON.parse(manifestBytes.toString('utf8'));
    expect(m.format).toBe('shardc-bundle');
    expect(m.model).toEqual({ file: 'mlp.onnx', sha256: 'ab'.repeat(32) });
    expect(m.mesh).toEqual({ spec: 'tp=3', axes: [{ name: 'tp', size: 3 }], devices: 3 });
    expect([m.strategy, m.target, m.shardc]).toEqual(['megatron', 'cpu', '0.1.0']);
    expect(m.created).toBeUndefined();
    expect(m.files.map((f: { path: string }) => f.path)).toEqual(files.filter((f) => f !== 'manifest.json'));
    for (const f of m.files) {
      const bytes = readFileSync(join(out, f.path));
      expect(f.sha256).toBe(sha(bytes));
      expect(f.bytes).toBe(bytes.length);
    }
    // Keys are sorted at every level.
    expect(Object.keys(m)).toEqual([...Object.keys(m)].sort());
  });

  it('is byte-identical when written twice; SOURCE_DATE_EPOCH alone adds a date', () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    writeBundle(a, input(3));
    writeBundle(b, input(3));
    for (const f of listFiles(a)) expect(sha(readFileSync(join(b, f)))).toBe(sha(readFileSync(join(a, f))));
    const c = join(tmp, 'c');
    writeBundle(c, input(3, { SOURCE_DATE_EPOCH: '1700000000' }));
    expect(JSON.parse(readFileSync(join(c, 'manifest.json'), 'utf8')).created).toBe('2023-11-14T22:13:20.000Z');
  });

  it("stores each device's weight shards in safetensors, referenced by model.onnx as external data", () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(3));
    const plan = mlpPlan(3);
    const [w1, w2] = [randomTensor([8, 16], 1), randomTensor([16, 8], 2)];
    for (let d = 0; d < 3; d++) {
      const st = parseSafetensors(readFileSync(join(out, `device-${d}`, 'weights.safetensors')));
      expect(st.entries.map((e) => e.name)).toEqual(['W1', 'W2']);
      expect(st.metadata).toEqual({ 'shardc.device': String(d), 'shardc.mesh': 'tp=3' });
      const want1 = shardTensor(w1, plan.graph.valuesByName().get('W1')!.layout, plan.mesh, d);
      const want2 = shardTensor(w2, plan.graph.valuesByName().get('W2')!.layout, plan.mesh, d);
      expect(st.tensor('W1').shape).toEqual([8, d === 0 ? 6 : 5]);
      expect(Array.from(st.tensor('W1').data)).toEqual(Array.from(want1.data));
      expect(Array.from(st.tensor('W2').data)).toEqual(Array.from(want2.data));
      // The model file holds no weight bytes: it is much smaller than the weights.
      const model = loadModel(join(out, `device-${d}`, 'model.onnx'));
      const w1c = model.graph.initializers.find((v) => v.name === 'W1')!.constant!;
      expect(w1c.location.kind).toBe('external');
      expect(Array.from(w1c.load().data)).toEqual(Array.from(want1.data));
    }
  });

  it('report.json: liveness peak, params, flops per device; every collective with a reason', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(3));
    const r = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    // Device 0 (hidden 6): params (8·6 + 6·8)·4 = 384; live peak x(128)... → h 96 + r 96, then
    // y_partial 128 + y 128 = 256 at the all-reduce.
    expect(r.devices.map((d: { paramBytes: number }) => d.paramBytes)).toEqual([384, 320, 320]);
    expect(r.devices.map((d: { peakMemoryBytes: number }) => d.peakMemoryBytes)).toEqual([640, 576, 576]);
    expect(r.unsharded).toMatchObject({ paramBytes: 1024, peakMemoryBytes: 1536 });
    // MatMul flops 2·M·K·N on local shapes; the devices' flops add up to the unsharded flops.
    const flops = r.devices.map((d: { flops: number }) => d.flops);
    expect(flops[0]).toBeGreaterThanOrEqual(2 * (2 * 4 * 8 * 6));
    expect(flops[0] + flops[1] + flops[2]).toBe(r.unsharded.flops);
    expect(r.collectives).toHaveLength(1);
    expect(r.collectives[0]).toMatchObject({ kind: 'AllReduce', meshAxes: ['tp'], tensor: 'y_partial' });
    expect(r.collectives[0].reason).toMatch(/contracts over the sharded hidden dim/);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/<td>AllReduce<\/td>/);
  });

  it('schedule.json: program order with dependencies, collectives with their group', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(3));
    const s = JSON.parse(readFileSync(join(out, 'schedule.json'), 'utf8'));
    expect(s.devices).toHaveLength(3);
    const d1 = s.devices[1];
    expect(d1.program).toBe('device-1/model.onnx');
    expect(d1.steps.map((x: { kind: string; op: string; dependencies: number[] }) => [x.kind, x.op, x.dependencies])).toEqual([
      ['kernel', 'MatMul', []],
      ['kernel', 'Relu', [0]],
      ['kernel', 'MatMul', [1]],
      ['collective', 'AllReduce', [2]],
    ]);
    expect(d1.steps[3].collective).toMatchObject({ kind: 'AllReduce', axis: 'tp', group: [0, 1, 2], attributes: { reduce: 'sum' } });
    expect(d1.steps[3].inputs).toEqual(['y_partial']);
  });

  it('runs from the bundle alone and equals the unsharded run', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(3));
    const x = randomTensor([4, 8], 7);
    const want = runGraph(mlpGraph(), new Map([['x', x]]), { registry }).get('y')!;
    const got = loadBundleForRun(out, registry).run(new Map([['x', x]]));
    expect(got.map((o) => o.name)).toEqual(['y']);
    const c = compareTensors(got[0]!.tensor, want, { rtol: 1e-5, atol: 1e-6 });
    expect(c.message).toBe('');
    expect(c.maxAbsDiff).toBeLessThan(1e-5);
  });

  it('refuses to run a bundle whose files changed', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(2));
    const f = join(out, 'device-1', 'weights.safetensors');
    const bytes = readFileSync(f);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(f, bytes);
    expect(() => loadBundleForRun(out, registry)).toThrow(/device-1\/weights\.safetensors does not match its SHA-256/);
  });

  it('explain: each collective with its reason, each value with its layout and why', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(3));
    const e = explainBundle(out);
    expect(e.collectives.map((c) => [c.node, c.kind, c.tensor])).toEqual([['allreduce_y', 'AllReduce', 'y_partial']]);
    const why = Object.fromEntries(e.values.map((v) => [v.name, `${v.layoutText} ${v.why}`]));
    expect(why['W1']).toBe('{tp: S(1)} seeded by strategy megatron: column-parallel first MLP weight');
    expect(why['h']).toBe('{tp: S(1)} output of MatMul mm1, which runs tp: x: R, W1: S(1) -> S(1)');
    expect(why['y']).toMatch(/^\{tp: R\} produced by AllReduce allreduce_y: graph output y must be replicated/);
    expect(why['x']).toMatch(/^\{tp: R\} replicated: no consumer needs it split/);
    const text = formatExplanation(e).join('\n');
    expect(text).toMatch(/allreduce_y: AllReduce over tp of "y_partial", 171 bytes per device, \{tp: P\(sum\)\} -> \{tp: R\}/);
    expect(text).toMatch(/why: graph output y must be replicated/);
    const one = explainBundle(out, { tensor: 'y' });
    expect(one.values.map((v) => v.name)).toEqual(['y']);
    expect(one.collectives.map((c) => c.node)).toEqual(['allreduce_y']);
    expect(explainBundle(out, { collective: 'allreduce_y' }).values.map((v) => v.name)).toEqual(['y', 'y_partial']);
    expect(() => explainBundle(out, { tensor: 'nope' })).toThrow(/no value named "nope"/);
    expect(() => explainBundle(out, { collective: 'nope' })).toThrow(/no collective named "nope" \(collectives: allreduce_y\)/);
    expect(() => explainBundle(tmp)).toThrow(/not a shardc bundle/);
  });

  it('a failure mid-write leaves the target untouched; a non-bundle directory is refused', () => {
    const out = join(tmp, 'b');
    writeBundle(out, input(2));
    const before = listFiles(out).map((f) => [f, sha(readFileSync(join(out, f)))]);
    expect(() =>
      writeBundle(out, input(3), {
        beforeFile: (p) => {
          if (p === 'device-1/weights.safetensors') throw new Error('disk full');
        },
      }),
    ).toThrow('disk full');
    expect(listFiles(out).map((f) => [f, sha(readFileSync(join(out, f)))])).toEqual(before);
    expect(readdirSync(tmp)).toEqual(['b']);
    // An earlier bundle is replaced without --force; another directory is not.
    writeBundle(out, input(3));
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).mesh.spec).toBe('tp=3');
    const mine = join(tmp, 'mine');
    mkdirSync(mine);
    writeFileSync(join(mine, 'keep.txt'), 'x');
    expect(() => writeBundle(mine, input(2))).toThrow(UserError);
    expect(listFiles(mine)).toEqual(['keep.txt']);
    writeBundle(mine, input(2), { force: true });
    expect(existsSync(join(mine, 'keep.txt'))).toBe(false);
  });
});
