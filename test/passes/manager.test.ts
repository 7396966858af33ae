import * as path from 'node:path';
import { UserError } from '../../src/ir/errors.js';
import { type Graph, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { printGraph } from '../../src/ir/text.js';
import { loadModel } from '../../src/onnx/import.js';
import { type Pass, PassManager, defaultPipeline, findPatterns } from '../../src/passes/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { expectGolden } from './golden.js';
import { GraphBuilder } from './graph-builder.js';

const registry = createCoreRegistry();
const EXAMPLES = path.join(__dirname, '..', '..', 'examples');

const noop = (name: string, log?: string[]): Pass => ({
  name,
  run() {
    log?.push(name);
  },
});

function tiny(): Graph {
  const b = new GraphBuilder();
  const x = b.input('x', 'float32', [2]);
  b.output(b.op('Relu', [b.op('Identity', [x])], {}, 'y'));
  return b.g;
}

describe('PassManager', () => {
  it('orders passes with add, insertBefore, insertAfter and remove', () => {
    const log: string[] = [];
    const pm = new PassManager([noop('a', log), noop('c', log)], { registry });
    pm.insertBefore('c', noop('b', log)).insertAfter('c', noop('d', log)).add(noop('e', log)).remove('a');
    expect(pm.names).toEqual(['b', 'c', 'd', 'e']);
    pm.run(tiny());
    expect(log).toEqual(['b', 'c', 'd', 'e']);
    expect(pm.timings.map((t) => t.name)).toEqual(['b', 'c', 'd', 'e']);
    expect(pm.timings.every((t) => t.ms >= 0 && t.changed === undefined)).toBe(true);
    expect(() => pm.add(noop('b'))).toThrow(/already in the pipeline/);
    expect(() => pm.insertAfter('zz', noop('f'))).toThrow(UserError);
    expect(() => pm.remove('zz')).toThrow(/no pass named "zz" \(passes: b, c, d, e\)/);
  });

  it('passes the context (registry, bindings, options, logger) to each pass', () => {
    const seen: unknown[] = [];
    const debug: string[] = [];
    const pm = new PassManager(
      [{ name: 'peek', run: (_g, ctx) => void seen.push(ctx.registry, ctx.bindings, ctx.options['peek.x']) }],
      { registry, bindings: { batch: 3 }, options: { 'peek.x': 7 }, logger: { debug: (m) => debug.push(m), info() {}, warn() {} } },
    );
    pm.run(tiny());
    expect(seen).toEqual([registry, { batch: 3 }, 7]);
    expect(debug[0]).toMatch(/^pass peek: \d+\.\d ms$/);
  });

  it('with verifyEach, rejects an invalid input graph and names a pass that breaks the graph', () => {
    const breaker: Pass = {
      name: 'breaker',
      run(g) {
        g.nodes[1]!.inputs[0] = new Value('dangling');
        return true;
      },
    };
    const pm = new PassManager([noop('fine'), breaker], { registry, verifyEach: true });
    expect(() => pm.run(tiny())).toThrow(/^pass "breaker" left an invalid graph: graph "main" is invalid: node "Relu\(y\)" input 0 "dangling" is not defined/);
    const bad = tiny();
    bad.nodes.reverse();
    expect(() => new PassManager([], { registry, verifyEach: true }).run(bad)).toThrow(UserError);
    // Without verifyEach the broken graph goes through.
    expect(() => new PassManager([breaker], { registry }).run(tiny())).not.toThrow();
  });

  it('defaultPipeline runs canonicalize → shape inference → constant folding → dead code → patterns', () => {
    const pm = defaultPipeline({ registry, verifyEach: true });
    expect(pm.names).toEqual(['canonicalize', 'shape-inference', 'constant-folding', 'dead-code', 'patterns']);
    const g = tiny();
    pm.run(g);
    expect(printGraph(g)).toBe('graph main(%x: float32[2]) -> (%y) {\n  %y = Relu(%x) : float32[2]\n}\n');
    expect(pm.timings.map((t) => [t.name, t.changed])).toEqual([
      ['canonicalize', true],
      ['shape-inference', true],
      ['constant-folding', false],
      ['dead-code', false],
      ['patterns', false],
    ]);
  });
});

/** Deterministic feeds for a model's inputs (token ids below 16, masks of ones). */
function feedsFor(g: Graph, dims: Record<string, number>): Map<string, Tensor> {
  const feeds = new Map<string, Tensor>();
  for (const v of g.inputs) {
    const shape = v.shape!.map((d) => (typeof d === 'number' ? d : dims[d]!));
    const n = shape.reduce((a, b) => a * b, 1);
    const values = Array.from({ length: n }, (_, i) => (v.name.includes('mask') ? 1 : (i * 7 + 3) % 16));
    feeds.set(v.name, Tensor.from(v.dtype!, shape, values));
  }
  return feeds;
}

describe('default pipeline on the example transformers', () => {
  const dims = { batch: 2, sequence: 8 };
  const cases: [string, Record<string, number>][] = [
    ['gpt-tiny', { LayerNorm: 5, Attention: 2, GELU: 2 }],
    ['bert-tiny', { LayerNorm: 5, Attention: 2, GELU: 2 }],
    ['llama-tiny', { RMSNorm: 5, RoPE: 4, Attention: 2, SwiGLU: 2 }],
  ];
  it.each(cases)('%s: keeps the outputs, makes every shape static under bindings, finds the patterns', (name, expected) => {
    const g = loadModel(path.join(EXAMPLES, `${name}.onnx`)).graph;
    const feeds = feedsFor(g, dims);
    const before = runGraph(g, feeds, { registry });
    const nodesBefore = g.nodes.length;
    defaultPipeline({ registry, verifyEach: true, bindings: dims }).run(g);
    expect(g.nodes.length).toBeLessThan(nodesBefore);
    const after = runGraph(g, feeds, { registry });
    for (const [k, t] of before) {
      const u = after.get(k)!;
      expect(u.shape).toEqual(t.shape);
      const a = t.toArray();
      const c = u.toArray();
      expect(Math.max(...a.map((x, i) => Math.abs(x - c[i]!)))).toBeLessThan(1e-5);
    }
    for (const n of g.nodes) for (const o of n.outputs) if (o.name) expect([o.name, o.shape?.every((d) => typeof d === 'number')]).toEqual([o.name, true]);
    const counts: Record<string, number> = {};
    for (const p of findPatterns(g)) counts[p.kind] = (counts[p.kind] ?? 0) + 1;
    expect(counts).toEqual(expected);
    const text = printGraph(g);
    expectGolden(`passes/${name}.txt`, text);
  });
});
