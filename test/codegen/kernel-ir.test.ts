/**
 * The kernel IR without a GPU: expression typing, the CPU executor's device semantics, and the
 * lowering tables run through the CPU executor against the ops' reference evaluation.
 */
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Attrs } from '../../src/ir/attrs.js';
import type { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { KernelTypeError, add, cast, cmp, div, f32, i32, load, mul, select, un, variable } from '../../src/codegen/expr.js';
import { executeLaunch } from '../../src/codegen/cpu.js';
import { makeKernel } from '../../src/codegen/kernel.js';
import { runGraphKernelsCpu } from '../../src/codegen/cpu-backend.js';
import { createLoweringTable, unloweredOps } from '../../src/codegen/lower/index.js';
import { oneNodeGraph as oneNode } from './one-node.js';

const registry = createCoreRegistry();

describe('expressions', () => {
  it('reject mixed operand types at construction', () => {
    expect(() => add(f32(1), i32(1))).toThrow(KernelTypeError);
    expect(() => load('x', 'f32', f32(0))).toThrow(/index of x/);
    expect(() => select(f32(1), f32(1), f32(2))).toThrow(/condition/);
    expect(() => un('exp', i32(1))).toThrow(KernelTypeError);
  });

  it('execute with device semantics: i32 wrap, truncating division, division by zero, round half even', () => {
    const i = variable('i');
    const k = makeKernel('t', {
      kind: 'map',
      count: i32(4),
      lets: [],
      stores: [
        { buf: 'wrap', index: i, value: mul(load('a', 'i32', i), i32(2)) },
        { buf: 'q', index: i, value: div(load('a', 'i32', i), load('b', 'i32', i)) },
        { buf: 'r', index: i, value: un('round', cast(load('a', 'i32', i), 'f32')) },
        { buf: 'h', index: i, value: un('round', add(cast(i, 'f32'), f32(0.5))) },
        { buf: 'neg', index: i, value: cmp('<', load('b', 'i32', i), i32(0)) },
      ],
    });
    const bufs = {
      a: new Int32Array([2 ** 30, -7, 7, 5]), b: new Int32Array([1, 2, -2, 0]),
      wrap: new Int32Array(4), q: new Int32Array(4), r: new Float32Array(4), h: new Float32Array(4), neg: new Uint32Array(4),
    };
    executeLaunch({ kernel: k, params: {} }, bufs);
    expect([...bufs.wrap]).toEqual([-(2 ** 31), -14, 14, 10]);
    expect([...bufs.q]).toEqual([2 ** 30, -3, -3, 5]); // 5 / 0 = 5 (WGSL)
    expect([...bufs.h]).toEqual([0, 2, 2, 4]); // 0.5 → 0, 1.5 → 2, 2.5 → 2, 3.5 → 4
    expect([...bufs.neg]).toEqual([0, 0, 1, 0]);
    expect(k.inputs.map((b) => b.name)).toEqual(['a', 'b']);
    expect(k.outputs.find((b) => b.name === 'neg')!.type).toBe('u32');
  });

  it('throw on out-of-bounds loads (a GPU would read zeros silently)', () => {
    const k = makeKernel('oob', { kind: 'map', count: i32(2), lets: [], stores: [{ buf: 'y', index: variable('i'), value: load('x', 'f32', add(variable('i'), i32(1))) }] });
    expect(() => executeLaunch({ kernel: k, params: {} }, { x: new Float32Array(2), y: new Float32Array(2) })).toThrow(/out of bounds/);
  });
});

function seq(n: number, scale = 0.1, offset = -1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.fround(offset + scale * ((i * 7) % 23)));
}

async function expectSameAsReference(g: Graph, feeds: Map<string, Tensor>): Promise<void> {
  const want = runGraph(g, feeds, { registry });
  const got = await runGraphKernelsCpu(g, feeds, { registry });
  for (const [name, t] of want) {
    const r = compareTensors(got.get(name)!, t, { rtol: 1e-5, atol: 1e-6 });
    expect({ name, message: r.message }).toEqual({ name, message: '' });
  }
}

const f = (shape: number[], data = seq(shape.reduce((a, b) => a * b, 1))): Tensor => new Tensor('float32', shape, data);
const ints = (shape: number[], v: number[], dtype: 'int64' | 'int32' = 'int64'): Tensor => Tensor.from(dtype, shape, v);

describe('lowering on the CPU executor matches the reference evaluation', () => {
  const cases: [string, () => [Graph, Map<string, Tensor>]][] = [
    ['Add with broadcasting', () => [oneNode('Add', [{ name: 'a', t: f([2, 3, 4]) }, { name: 'b', t: f([3, 1]) }]), new Map([['a', f([2, 3, 4])], ['b', f([3, 1])]])]],
    ['Where over int64 and bool', () => {
      const c = Tensor.from('bool', [2, 2], [1, 0, 0, 1]);
      const x = ints([2, 2], [1, -2, 3, 40]);
      const y = ints([2], [7, 8]);
      return [oneNode('Where', [{ name: 'c', t: c }, { name: 'x', t: x }, { name: 'y', t: y }]), new Map([['c', c], ['x', x], ['y', y]])];
    }],
    ['Transpose', () => [oneNode('Transpose', [{ name: 'x', t: f([2, 3, 4]) }], new Attrs([['perm', { kind: 'ints', value: [2, 0, 1] }]])), new Map([['x', f([2, 3, 4])]])]],
    ['Slice with negative steps', () => {
      const g = oneNode('Slice', [{ name: 'x', t: f([4, 5]) }, { name: 's', t: ints([2], [3, 1]), constant: true }, { name: 'e', t: ints([2], [0, 5]), constant: true }, { name: 'ax', t: ints([2], [0, 1]), constant: true }, { name: 'st', t: ints([2], [-1, 2]), constant: true }]);
      return [g, new Map([['x', f([4, 5])]])];
    }],
    ['Gather with negative indices', () => {
      const idx = ints([2, 2], [0, -1, 2, 1]);
      return [oneNode('Gather', [{ name: 'x', t: f([3, 4]) }, { name: 'i', t: idx }], new Attrs([['axis', { kind: 'int', value: 1 }]])), new Map([['x', f([3, 4])], ['i', idx]])];
    }],
    ['Concat on the middle axis', () => [oneNode('Concat', [{ name: 'a', t: f([2, 1, 3]) }, { name: 'b', t: f([2, 2, 3]) }], new Attrs([['axis', { kind: 'int', value: 1 }]])), new Map([['a', f([2, 1, 3])], ['b', f([2, 2, 3])]])]],
    ['MatMul with broadcast batch', () => [oneNode('MatMul', [{ name: 'a', t: f([2, 1, 3, 5]) }, { name: 'b', t: f([3, 5, 2]) }]), new Map([['a', f([2, 1, 3, 5])], ['b', f([3, 5, 2])]])]],
    ['Gemm transposed with bias', () => {
      const attrs = new Attrs([['transA', { kind: 'int', value: 1 }], ['transB', { kind: 'int', value: 1 }], ['alpha', { kind: 'float', value: 0.5 }], ['beta', { kind: 'float', value: 2 }]]);
      return [oneNode('Gemm', [{ name: 'a', t: f([5, 3]) }, { name: 'b', t: f([4, 5]) }, { name: 'c', t: f([4]) }], attrs), new Map([['a', f([5, 3])], ['b', f([4, 5])], ['c', f([4])]])];
    }],
    ['ReduceSum over non-contiguous axes', () => [oneNode('ReduceSum', [{ name: 'x', t: f([2, 3, 4]) }, { name: 'ax', t: ints([2], [0, 2]), constant: true }]), new Map([['x', f([2, 3, 4])]])]],
    ['ReduceMax keepdims=0', () => [oneNode('ReduceMax', [{ name: 'x', t: f([2, 3, 4]) }, { name: 'ax', t: ints([1], [1]), constant: true }], new Attrs([['keepdims', { kind: 'int', value: 0 }]])), new Map([['x', f([2, 3, 4])]])]],
    ['Softmax over axis 1 of 3', () => [oneNode('Softmax', [{ name: 'x', t: f([2, 3, 4]) }], new Attrs([['axis', { kind: 'int', value: 1 }]])), new Map([['x', f([2, 3, 4])]])]],
    ['LayerNormalization with Mean and InvStdDev', () => [oneNode('LayerNormalization', [{ name: 'x', t: f([2, 3, 4]) }, { name: 's', t: f([4]) }, { name: 'b', t: f([4]) }], new Attrs(), 3), new Map([['x', f([2, 3, 4])], ['s', f([4])], ['b', f([4])]])]],
  ];
  for (const [name, make] of cases)
    it(name, async () => {
      const [g, feeds] = make();
      await expectSameAsReference(g, feeds);
    });

  it('int64 values beyond the i32 range are refused with a clear error', async () => {
    const big = ints([1], [2 ** 40]);
    const g = oneNode('Neg', [{ name: 'x', t: big }]);
    await expect(runGraphKernelsCpu(g, new Map([['x', big]]), { registry })).rejects.toThrow(/does not fit the device's 32-bit integers/);
  });

  it('lists ops without a lowering row instead of crashing', () => {
    const g = oneNode('MatMulInteger', [{ name: 'x', t: f([1, 1, 3, 3]) }]);
    expect(unloweredOps(g, createLoweringTable())).toEqual(['MatMulInteger']);
  });

  it('every lowering row names an op of the registry with the same family', () => {
    const wrong = createLoweringTable()
      .list()
      .filter((r) => registry.get(r.op, r.domain)?.family !== r.family)
      .map((r) => `${r.op}: ${r.family} vs ${registry.get(r.op, r.domain)?.family}`);
    expect(wrong).toEqual([]);
  });
});
