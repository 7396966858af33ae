/**
 * Lowering rows of the indexing-style ops (GatherND, scatters, OneHot, EyeLike, DepthToSpace,
 * SpaceToDepth, TopK, Einsum, Dropout with mask) run through the CPU kernel executor: hand-computed
 * values, and agreement with the ops' reference evaluation.
 */
import { Attrs, type Attr } from '../../src/ir/attrs.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { compareTensors } from '../../src/verify/compare.js';
import { runGraphKernelsCpu } from '../../src/codegen/cpu-backend.js';
import { type NodeInput, feedsOf, oneNodeGraph } from './one-node.js';

const registry = createCoreRegistry();

type In = NodeInput;

const oneNode = (op: string, inputs: In[], attrs: [string, Attr][] = [], outputs = 1): Graph => oneNodeGraph(op, inputs, new Attrs(attrs), outputs);

const f = (shape: number[], v?: number[]): Tensor =>
  Tensor.from('float32', shape, v ?? Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => ((i * 7) % 23) * 0.25 - 2));
const i64 = (shape: number[], v: number[]): Tensor => Tensor.from('int64', shape, v);
const int = (name: string, value: number): [string, Attr] => [name, { kind: 'int', value }];
const str = (name: string, value: string): [string, Attr] => [name, { kind: 'string', value }];

async function run(op: string, inputs: In[], attrs: [string, Attr][] = [], outputs = 1): Promise<Tensor[]> {
  const g = oneNode(op, inputs, attrs, outputs);
  const got = await runGraphKernelsCpu(g, feedsOf(inputs), { registry });
  const want = runGraph(g, feedsOf(inputs), { registry });
  for (const [name, t] of want) expect({ name, message: compareTensors(got.get(name)!, t, { rtol: 1e-6, atol: 1e-6 }).message }).toEqual({ name, message: '' });
  return g.outputs.map((o) => got.get(o.name)!);
}
const values = (t: Tensor): number[] => Array.from(t.data as ArrayLike<number>);

describe('indexing lowerings on the CPU kernel executor', () => {
  it('GatherND with batch_dims picks rows per batch', async () => {
    const [y] = await run('GatherND', [{ name: 'x', t: f([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]) }, { name: 'i', t: i64([2, 1], [1, -2]) }], [int('batch_dims', 1)]);
    expect(values(y!)).toEqual([2, 3, 4, 5]);
  });

  it('ScatterElements: none keeps the last duplicate, add folds them', async () => {
    const data = f([1, 5], [1, 2, 3, 4, 5]);
    const idx = i64([1, 3], [1, 3, 1]);
    const upd = f([1, 3], [10, 20, 30]);
    const ins = [{ name: 'x', t: data }, { name: 'i', t: idx }, { name: 'u', t: upd }];
    expect(values((await run('ScatterElements', ins, [int('axis', 1)]))[0]!)).toEqual([1, 30, 3, 20, 5]);
    expect(values((await run('ScatterElements', ins, [int('axis', 1), str('reduction', 'add')]))[0]!)).toEqual([1, 42, 3, 24, 5]);
    expect(values((await run('ScatterElements', ins, [int('axis', 1), str('reduction', 'max')]))[0]!)).toEqual([1, 30, 3, 20, 5]);
  });

  it('ScatterElements with indices smaller than data on the other axis', async () => {
    await run('ScatterElements', [{ name: 'x', t: f([3, 4]) }, { name: 'i', t: i64([2, 2], [2, 0, -1, 1]) }, { name: 'u', t: f([2, 2], [9, 8, 7, 6]) }], [int('axis', 0)]);
  });

  it('ScatterND replaces slices and multiplies with reduction mul', async () => {
    const ins = [{ name: 'x', t: f([3, 2], [1, 2, 3, 4, 5, 6]) }, { name: 'i', t: i64([2, 1], [2, 0]) }, { name: 'u', t: f([2, 2], [7, 8, 9, 10]) }];
    expect(values((await run('ScatterND', ins))[0]!)).toEqual([9, 10, 3, 4, 7, 8]);
    expect(values((await run('ScatterND', ins, [str('reduction', 'mul')]))[0]!)).toEqual([9, 20, 3, 4, 35, 48]);
  });

  it('OneHot on axis 0 with negative indices', async () => {
    const [y] = await run('OneHot', [
      { name: 'i', t: i64([3], [0, -1, 5]) },
      { name: 'd', t: i64([], [3]), constant: true },
      { name: 'v', t: f([2], [-1, 4]) },
    ], [int('axis', 0)]);
    expect(y!.shape).toEqual([3, 3]);
    expect(values(y!)).toEqual([4, -1, -1, -1, -1, -1, -1, 4, -1]);
  });

  it('EyeLike with an offset diagonal', async () => {
    const [y] = await run('EyeLike', [{ name: 'x', t: f([2, 3]) }], [int('k', 1)]);
    expect(values(y!)).toEqual([0, 1, 0, 0, 0, 1]);
  });

  it('DepthToSpace (DCR, CRD) and SpaceToDepth round-trip', async () => {
    const x = f([1, 8, 2, 3]);
    await run('DepthToSpace', [{ name: 'x', t: x }], [int('blocksize', 2)]);
    await run('DepthToSpace', [{ name: 'x', t: x }], [int('blocksize', 2), str('mode', 'CRD')]);
    const [y] = await run('SpaceToDepth', [{ name: 'x', t: f([1, 2, 4, 6]) }], [int('blocksize', 2)]);
    expect(y!.shape).toEqual([1, 8, 2, 3]);
  });

  it('TopK: largest with ties by lower index, smallest on a middle axis', async () => {
    const x = f([2, 4], [3, 1, 3, 2, 0, 5, 5, 4]);
    const [v, i] = await run('TopK', [{ name: 'x', t: x }, { name: 'k', t: i64([1], [3]), constant: true }], [], 2);
    expect(values(v!)).toEqual([3, 3, 2, 5, 5, 4]);
    expect(values(i!)).toEqual([0, 2, 3, 1, 2, 3]);
    await run('TopK', [{ name: 'x', t: f([2, 5, 3]) }, { name: 'k', t: i64([1], [2]), constant: true }], [int('axis', 1), int('largest', 0)], 2);
  });

  it.each([
    ['bij,bjk->bik', [[2, 2, 3], [2, 3, 2]]],
    ['ij->ji', [[2, 3]]],
    ['ii->i', [[3, 3]]],
    ['ij->', [[2, 3]]],
    ['i,i->', [[4], [4]]],
    ['bii->bi', [[2, 3, 3]]],
    ['ik,jk->kij', [[2, 3], [4, 3]]],
  ])('Einsum %s on the matmul template', async (eq, shapes) => {
    const ins = shapes.map((s, k) => ({ name: `x${k}`, t: f(s) }));
    await run('Einsum', ins, [str('equation', eq)]);
  });

  it('Dropout in inference mode with a mask output', async () => {
    const [y, m] = await run('Dropout', [{ name: 'x', t: f([2, 2], [1, 2, 3, 4]) }], [], 2);
    expect(values(y!)).toEqual([1, 2, 3, 4]);
    expect(m!.dtype).toBe('bool');
    expect(values(m!)).toEqual([1, 1, 1, 1]);
  });
});
