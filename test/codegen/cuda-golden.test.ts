/**
 * Golden baselines of emitted CUDA (test/golden/cuda/*.cu) for a few lowered nodes, one per
 * template, each a self-contained translation unit (prelude + kernels); the text does not depend
 * on sizes. `SHARDC_ACCEPT=1 npx jest test/codegen/cuda-golden` rewrites the files.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type LowerValue, createLoweringTable } from '../../src/codegen/lower/index.js';
import { CUDA_PRELUDE, renderCudaKernel } from '../../src/codegen/cuda/kernel.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const table = createLoweringTable();

/** CUDA of every launch of `op` on inputs of these types (host values for shape inputs). */
function cudaOf(op: string, inputs: LowerValue[], attrs = new Attrs(), name = op): string[] {
  const node = new Node(op, inputs.map((v, k) => new Value(`in${k}`, v.dtype, v.shape)), [new Value('out')], attrs, name);
  const types = registry.forNode(node).infer({
    node, attrs, inputs: inputs.map((v) => ({ dtype: v.dtype, shape: v.shape })), constant: (k) => inputs[k]?.host,
  });
  const lowered = table.get(op)!.lower({ node, attrs, inputs, outputs: types.map((t) => ({ dtype: t.dtype, shape: t.shape as number[] })) });
  if (lowered.kind !== 'kernels') throw new Error(`${op} lowered to ${lowered.kind}`);
  return lowered.launches.map((l, i) => renderCudaKernel(l.kernel, `${op.toLowerCase()}_${i}`).code);
}

const file = (kernels: string[]): string => `${CUDA_PRELUDE}\n\n${kernels.join('\n')}`;
const f32 = (...shape: number[]): LowerValue => ({ dtype: 'float32', shape });
const axes = (...a: number[]): LowerValue => ({ dtype: 'int64', shape: [a.length], host: Tensor.from('int64', [a.length], a) });

describe('emitted CUDA', () => {
  it('broadcast Add (map with index maps)', () => expectGolden('cuda/add-broadcast.cu', file(cudaOf('Add', [f32(2, 3, 4), f32(3, 1)], new Attrs(), 'block0/add'))));
  it('batched MatMul (shared-memory tiles)', () => expectGolden('cuda/matmul-batched.cu', file(cudaOf('MatMul', [f32(2, 8, 16), f32(16, 4)]))));
  it('ReduceMean over a middle axis (block tree reduction)', () => expectGolden('cuda/reduce-mean-axis1.cu', file(cudaOf('ReduceMean', [f32(2, 3, 4), axes(1)]))));
  it('Softmax over the last axis', () => expectGolden('cuda/softmax-last.cu', file(cudaOf('Softmax', [f32(4, 10)]))));
  it('LayerNormalization with scale and bias', () => expectGolden('cuda/layernorm.cu', file(cudaOf('LayerNormalization', [f32(2, 5, 8), f32(8), f32(8)]))));
  it('does not depend on sizes', () => {
    expect(cudaOf('Add', [f32(2, 3, 4), f32(3, 1)])).toEqual(cudaOf('Add', [f32(5, 7, 9), f32(7, 1)]));
    expect(cudaOf('MatMul', [f32(2, 8, 16), f32(16, 4)])).toEqual(cudaOf('MatMul', [f32(3, 5, 7), f32(7, 9)]));
  });
  it('keeps model names out of code: a hostile kernel name lands only in an escaped comment', () => {
    const [code] = cudaOf('Relu', [f32(3)], new Attrs(), 'x */ #include <evil>\n');
    const lines = code!.split('\n');
    expect(lines[0]!.startsWith('// kernel ')).toBe(true);
    expect(lines.filter((l) => l.trimStart().startsWith('#'))).toEqual([]);
    expect(code).not.toContain('*/');
  });
});
