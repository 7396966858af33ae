import type { Value } from '../../src/ir/graph.js';
import { PATTERN_META, annotatePatterns, findPatterns } from '../../src/passes/patterns.js';
import { GraphBuilder, int, ints } from './graph-builder.js';

const axes = (b: GraphBuilder): Value => b.const(`axes${b.g.initializers.length}`, 'int64', [1], [-1]);

/** The decomposed LayerNorm of PyTorch exports; returns its output. */
function layerNorm(b: GraphBuilder, x: Value, square: 'Pow' | 'Mul' = 'Pow', affine = true): Value {
  const mean = b.op('ReduceMean', [x, axes(b)]);
  const d = b.op('Sub', [x, mean]);
  const sq = square === 'Pow' ? b.op('Pow', [d, b.scalar(`two${b.g.initializers.length}`, 2)]) : b.op('Mul', [d, d]);
  const v = b.op('ReduceMean', [sq, axes(b)]);
  const std = b.op('Sqrt', [b.op('Add', [v, b.scalar(`eps${b.g.initializers.length}`, 1e-5)])]);
  let y = b.op('Div', [d, std]);
  if (affine) {
    y = b.op('Mul', [y, b.const(`gamma${b.g.initializers.length}`, 'float32', [4], [1, 1, 1, 1])]);
    y = b.op('Add', [y, b.const(`beta${b.g.initializers.length}`, 'float32', [4], [0, 0, 0, 0])]);
  }
  return y;
}

function rmsNorm(b: GraphBuilder, x: Value, form: 'reciprocal' | 'div' | 'one-over'): Value {
  const ms = b.op('ReduceMean', [b.op('Pow', [x, b.scalar(`two${b.g.initializers.length}`, 2)]), axes(b)]);
  const rms = b.op('Sqrt', [b.op('Add', [b.scalar(`eps${b.g.initializers.length}`, 1e-6), ms])]);
  let y: Value;
  if (form === 'div') y = b.op('Div', [x, rms]);
  else if (form === 'reciprocal') y = b.op('Mul', [b.op('Reciprocal', [rms]), x]);
  else y = b.op('Mul', [x, b.op('Div', [b.scalar(`one${b.g.initializers.length}`, 1), rms])]);
  return b.op('Mul', [b.const(`w${b.g.initializers.length}`, 'float32', [4], [1, 2, 3, 4]), y]);
}

function geluErf(b: GraphBuilder, x: Value, order: 'torch' | 'half-first'): Value {
  const e = b.op('Erf', [b.op('Div', [x, b.scalar(`sqrt2_${b.g.initializers.length}`, 1.4142135)])]);
  const a = b.op('Add', [e, b.scalar(`one${b.g.initializers.length}`, 1)]);
  if (order === 'torch') return b.op('Mul', [b.op('Mul', [x, a]), b.scalar(`half${b.g.initializers.length}`, 0.5)]);
  return b.op('Mul', [b.op('Mul', [b.scalar(`half${b.g.initializers.length}`, 0.5), x]), a]);
}

function geluTanh(b: GraphBuilder, x: Value): Value {
  const cube = b.op('Pow', [x, b.scalar('three', 3)]);
  const inner = b.op('Add', [x, b.op('Mul', [b.scalar('c044', 0.044715), cube])]);
  const t = b.op('Tanh', [b.op('Mul', [inner, b.scalar('sqrt2pi', 0.7978845608)])]);
  const a = b.op('Add', [b.scalar('one_t', 1), t]);
  return b.op('Mul', [b.op('Mul', [b.scalar('half_t', 0.5), a]), x]);
}

function attention(b: GraphBuilder, q: Value, k: Value, v: Value, mask?: Value): Value {
  const kt = b.op('Transpose', [k], { perm: ints([0, 1, 3, 2]) });
  let s = b.op('MatMul', [q, kt]);
  s = b.op('Div', [s, b.scalar(`scale${b.g.initializers.length}`, 2.8284)]);
  if (mask) s = b.op('Add', [mask, s]);
  return b.op('MatMul', [b.op('Softmax', [s], { axis: int(-1) }), v]);
}

const kinds = (b: GraphBuilder): string[] => findPatterns(b.g).map((p) => `${p.kind}#${p.index}:${p.nodes.length}`);

describe('pattern recognition', () => {
  it('finds decomposed LayerNorm (Pow or Mul square, with or without affine) and LayerNormalization nodes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const l0 = layerNorm(b, x);
    const l1 = layerNorm(b, l0, 'Mul', false);
    const [l2] = b.ops('LayerNormalization', [l1, b.const('g', 'float32', [4], [1, 1, 1, 1])], {}, ['ln']);
    b.output(l2!);
    expect(kinds(b)).toEqual(['LayerNorm#0:9', 'LayerNorm#1:7', 'LayerNorm#2:1']);
    annotatePatterns(b.g);
    expect(b.g.nodes.map((n) => n.meta.get(PATTERN_META))).toEqual([
      ...new Array(9).fill('LayerNorm#0'),
      ...new Array(7).fill('LayerNorm#1'),
      'LayerNorm#2',
    ]);
  });

  it('finds RMSNorm in its three forms, not inside a LayerNorm', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const r = rmsNorm(b, rmsNorm(b, rmsNorm(b, x, 'reciprocal'), 'div'), 'one-over');
    b.output(layerNorm(b, r));
    expect(kinds(b)).toEqual(['RMSNorm#0:7', 'RMSNorm#1:6', 'RMSNorm#2:7', 'LayerNorm#0:9']);
  });

  it('finds GELU in erf form (two associations) and tanh form, and Gelu nodes', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const g0 = geluErf(b, x, 'torch');
    const g1 = geluErf(b, g0, 'half-first');
    const g2 = geluTanh(b, g1);
    b.output(b.op('Gelu', [g2]));
    expect(kinds(b)).toEqual(['GELU#0:5', 'GELU#1:5', 'GELU#2:8', 'GELU#3:1']);
  });

  it('does not take a near miss for GELU (wrong constant) or x*Sigmoid(x) without the up projection', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const e = b.op('Erf', [b.op('Div', [x, b.scalar('c', 1.5)])]);
    const a = b.op('Add', [e, b.scalar('one', 1)]);
    const y = b.op('Mul', [b.op('Mul', [x, a]), b.scalar('half', 0.5)]);
    const silu = b.op('Mul', [y, b.op('Sigmoid', [y])]);
    b.output(silu);
    expect(kinds(b)).toEqual([]);
  });

  it('finds attention with and without a mask, and SwiGLU', () => {
    const b = new GraphBuilder();
    const q = b.input('q', 'float32', [1, 2, 3, 4]);
    const k = b.input('k', 'float32', [1, 2, 3, 4]);
    const v = b.input('v', 'float32', [1, 2, 3, 4]);
    const mask = b.input('mask', 'float32', [1, 1, 3, 3]);
    const a0 = attention(b, q, k, v, mask);
    const a1 = attention(b, a0, k, v);
    const gate = b.op('Sigmoid', [a1]);
    const up = b.op('Neg', [a1]);
    b.output(b.op('Mul', [up, b.op('Mul', [gate, a1])]));
    expect(kinds(b)).toEqual(['Attention#0:6', 'Attention#1:5', 'SwiGLU#0:3']);
  });

  it('does not call it attention when the scores are used elsewhere', () => {
    const b = new GraphBuilder();
    const q = b.input('q', 'float32', [1, 2, 3, 4]);
    const k = b.input('k', 'float32', [1, 2, 3, 4]);
    const v = b.input('v', 'float32', [1, 2, 3, 4]);
    const kt = b.op('Transpose', [k], { perm: ints([0, 1, 3, 2]) });
    const s = b.op('MatMul', [q, kt]);
    const p = b.op('Softmax', [s], { axis: int(-1) });
    b.output(b.op('MatMul', [p, v]), s);
    expect(kinds(b)).toEqual([]);
  });

  it('finds rotary embeddings (rotate_half form)', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [1, 2, 3, 8]);
    const cos = b.input('cos', 'float32', [3, 8]);
    const sin = b.input('sin', 'float32', [3, 8]);
    const c = (name: string, v: number) => b.const(name, 'int64', [1], [v]);
    const x1 = b.op('Slice', [x, c('s0', 0), c('e0', 4), c('a0', -1)]);
    const x2 = b.op('Slice', [x, c('s1', 4), c('e1', 8), c('a1', -1)]);
    const rot = b.op('Concat', [b.op('Neg', [x2]), x1], { axis: int(-1) });
    b.output(b.op('Add', [b.op('Mul', [x, cos]), b.op('Mul', [rot, sin])]));
    expect(kinds(b)).toEqual(['RoPE#0:7']);
  });

  it('re-annotation replaces earlier annotations and numbering is stable', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const y = b.op('Relu', [layerNorm(b, x)]);
    y.producer!.meta.set(PATTERN_META, 'Stale#9');
    b.output(y);
    const first = annotatePatterns(b.g).map((p) => `${p.kind}#${p.index}`);
    const metas = b.g.nodes.map((n) => n.meta.get(PATTERN_META));
    expect(annotatePatterns(b.g).map((p) => `${p.kind}#${p.index}`)).toEqual(first);
    expect(b.g.nodes.map((n) => n.meta.get(PATTERN_META))).toEqual(metas);
    expect(y.producer!.meta.has(PATTERN_META)).toBe(false);
  });
});
