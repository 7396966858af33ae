/**
 * Semantics of the emitted CUDA without a GPU: each node below is lowered and run on the CPU
 * executor of the kernel IR (the reference), recording every launch with its buffers; the same
 * kernels rendered as CUDA are compiled as host C++ through test/codegen/cuda-shim.h (one OS
 * thread per CUDA thread, a barrier for __syncthreads, blocks in sequence) and their outputs must
 * match at 1e-5 (integers and bools exactly). Covers map (lets, loop lets, index maps, int and
 * bool semantics), matmul (shared-memory tiles), reduce, softmax and norm templates.
 */
import { Attrs } from '../../src/ir/attrs.js';
import type { Graph } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type LaunchCase, recordLaunches, runShim } from './cuda-harness.js';
import { type NodeInput, feedsOf, oneNodeGraph } from './one-node.js';

const registry = createCoreRegistry();

let seed = 7;
const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const f = (shape: number[], scale = 2): Tensor => Tensor.from('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * scale));
const ints = (dtype: 'int32' | 'int64', shape: number[], v: number[]): Tensor => Tensor.from(dtype, shape, v);
const int = (name: string, value: number): [string, { kind: 'int'; value: number }] => [name, { kind: 'int', value }];

const cases: [string, string, NodeInput[], Attrs?, number?][] = [
  ['Add with broadcasting', 'Add', [{ name: 'a', t: f([2, 3, 4]) }, { name: 'b', t: f([3, 1]) }]],
  ['Erf (polynomial helper)', 'Erf', [{ name: 'x', t: f([37]) }]],
  ['Round half to even', 'Round', [{ name: 'x', t: Tensor.from('float32', [8], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6, 3.5]) }]],
  ['Integer Div and Mod by zero, negatives', 'Div', [{ name: 'a', t: ints('int32', [6], [7, -7, 5, -2147483648, 9, 0]) }, { name: 'b', t: ints('int32', [6], [2, 2, 0, -1, -4, 3]) }]],
  ['Integer Mod (fmod=0, sign of divisor)', 'Mod', [{ name: 'a', t: ints('int32', [5], [7, -7, 5, 7, -9]) }, { name: 'b', t: ints('int32', [5], [3, 3, 0, -3, 4]) }]],
  ['Cast float to int32 (saturating, NaN)', 'Cast', [{ name: 'x', t: Tensor.from('float32', [5], [1.9, -1.9, 3e10, -3e10, NaN]) }], new Attrs([int('to', 6)])],
  ['Where over bools', 'Where', [{ name: 'c', t: Tensor.from('bool', [2, 2], [1, 0, 0, 1]) }, { name: 'x', t: f([2, 2]) }, { name: 'y', t: f([2]) }]],
  ['Greater (bool output)', 'Greater', [{ name: 'a', t: f([9]) }, { name: 'b', t: f([9]) }]],
  ['Gather with negative indices', 'Gather', [{ name: 'x', t: f([3, 4]) }, { name: 'i', t: ints('int64', [2, 2], [0, -1, 2, 1]) }], new Attrs([int('axis', 1)])],
  ['Transpose', 'Transpose', [{ name: 'x', t: f([2, 3, 4]) }], new Attrs([['perm', { kind: 'ints', value: [2, 0, 1] }]])],
  ['ArgMax (loop let)', 'ArgMax', [{ name: 'x', t: f([3, 7]) }], new Attrs([int('axis', 1)])],
  ['MaxPool (loop lets over a window)', 'MaxPool', [{ name: 'x', t: f([1, 2, 5, 5]) }], new Attrs([['kernel_shape', { kind: 'ints', value: [2, 2] }]])],
  ['MatMul batched, ragged tiles', 'MatMul', [{ name: 'a', t: f([2, 19, 37]) }, { name: 'b', t: f([37, 21]) }]],
  ['Gemm transposed with bias', 'Gemm', [{ name: 'a', t: f([5, 3]) }, { name: 'b', t: f([4, 5]) }, { name: 'c', t: f([4]) }],
    new Attrs([int('transA', 1), int('transB', 1), ['alpha', { kind: 'float', value: 0.5 }], ['beta', { kind: 'float', value: 2 }]])],
  ['ReduceSum over non-contiguous axes', 'ReduceSum', [{ name: 'x', t: f([2, 3, 4]) }, { name: 'ax', t: ints('int64', [2], [0, 2]), constant: true }]],
  ['ReduceMax, long rows', 'ReduceMax', [{ name: 'x', t: f([3, 300]) }, { name: 'ax', t: ints('int64', [1], [1]), constant: true }]],
  ['ReduceProd over int32', 'ReduceProd', [{ name: 'x', t: ints('int32', [2, 3], [1, 2, 3, -4, 5, 6]) }, { name: 'ax', t: ints('int64', [1], [1]), constant: true }]],
  ['Softmax over axis 1 of 3', 'Softmax', [{ name: 'x', t: f([2, 3, 4]) }], new Attrs([int('axis', 1)])],
  ['LogSoftmax, rows longer than the block', 'LogSoftmax', [{ name: 'x', t: f([2, 150], 8) }]],
  ['LayerNormalization with Mean and InvStdDev', 'LayerNormalization', [{ name: 'x', t: f([2, 3, 70]) }, { name: 's', t: f([70]) }, { name: 'b', t: f([70]) }], new Attrs(), 3],
  ['RMSNormalization', 'RMSNormalization', [{ name: 'x', t: f([4, 33]) }, { name: 's', t: f([33]) }]],
];

function close(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  return Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b));
}

describe('emitted CUDA run as host C++ through the shim matches the CPU executor', () => {
  const all: { name: string; cases: LaunchCase[] }[] = [];
  let results: ReturnType<typeof runShim> = [];

  beforeAll(async () => {
    const flat: LaunchCase[] = [];
    for (const [name, op, inputs, attrs, outputs] of cases) {
      let g: Graph;
      try {
        g = oneNodeGraph(op, inputs, attrs ?? new Attrs(), outputs ?? 1);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
      const { cases: cs } = await recordLaunches(g, feedsOf(inputs), registry);
      all.push({ name, cases: cs });
      flat.push(...cs);
    }
    results = runShim(flat);
  }, 300000);

  for (const [name] of cases)
    it(name, () => {
      const entry = all.find((a) => a.name === name)!;
      expect(entry.cases.length).toBeGreaterThan(0);
      const offset = all.slice(0, all.indexOf(entry)).reduce((n, a) => n + a.cases.length, 0);
      entry.cases.forEach((c, j) => {
        const got = results[offset + j]!;
        const k = c.launch.kernel;
        k.outputs.forEach((b, o) => {
          const want = c.after[k.inputs.length + o]!;
          const have = got[o]!;
          expect(have.length).toBe(want.length);
          const bad: string[] = [];
          for (let i = 0; i < want.length && bad.length < 5; i++)
            if (b.type === 'f32' ? !close(have[i]!, want[i]!) : have[i] !== want[i]) bad.push(`${b.name}[${i}]: cuda ${have[i]}, cpu ${want[i]}`);
          expect({ kernel: k.name, body: k.body.kind, bad }).toEqual({ kernel: k.name, body: k.body.kind, bad: [] });
        });
      });
    });

  it('covers every kernel body kind', () => {
    const kinds = new Set(all.flatMap((a) => a.cases.map((c) => c.launch.kernel.body.kind)));
    expect([...kinds].sort()).toEqual(['map', 'matmul', 'norm', 'reduce', 'softmax']);
    const loopLets = all.flatMap((a) => a.cases).some((c) => c.launch.kernel.body.kind === 'map' && c.launch.kernel.body.lets.some((l) => l.loop));
    expect(loopLets).toBe(true);
  });
});
