/**
 * Golden baselines of emitted WGSL (test/golden/wgsl/*.wgsl) for a few lowered nodes; the text is
 * also the pipeline cache key, so the test also checks that it does not depend on sizes.
 * `SHARDC_ACCEPT=1 npx jest test/codegen` rewrites the files.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { type LowerValue, createLoweringTable } from '../../src/codegen/lower/index.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();
const table = createLoweringTable();

/** WGSL of every launch of `op` on inputs of these types (host values for shape inputs). */
function wgslOf(op: string, inputs: LowerValue[], attrs = new Attrs(), name = op): string[] {
  const node = new Node(op, inputs.map((v, k) => new Value(`in${k}`, v.dtype, v.shape)), [new Value('out')], attrs, name);
  const types = registry.forNode(node).infer({
    node, attrs, inputs: inputs.map((v) => ({ dtype: v.dtype, shape: v.shape })), constant: (k) => inputs[k]?.host,
  });
  const lowered = table.get(op)!.lower({ node, attrs, inputs, outputs: types.map((t) => ({ dtype: t.dtype, shape: t.shape as number[] })) });
  if (lowered.kind !== 'kernels') throw new Error(`${op} lowered to ${lowered.kind}`);
  return lowered.launches.map((l) => renderKernel(l.kernel));
}

const f32 = (...shape: number[]): LowerValue => ({ dtype: 'float32', shape });
const axes = (...a: number[]): LowerValue => ({ dtype: 'int64', shape: [a.length], host: Tensor.from('int64', [a.length], a) });

describe('emitted WGSL', () => {
  it('broadcast Add (map with index maps)', () => expectGolden('wgsl/add-broadcast.wgsl', wgslOf('Add', [f32(2, 3, 4), f32(3, 1)], new Attrs(), 'block0/add').join('\n')));
  it('batched MatMul (tiled template)', () => expectGolden('wgsl/matmul-batched.wgsl', wgslOf('MatMul', [f32(2, 8, 16), f32(16, 4)]).join('\n')));
  it('ReduceMean over a middle axis (row template)', () =>
    expectGolden('wgsl/reduce-mean-axis1.wgsl', wgslOf('ReduceMean', [f32(2, 3, 4), axes(1)]).join('\n')));
  it('Softmax over the last axis', () => expectGolden('wgsl/softmax-last.wgsl', wgslOf('Softmax', [f32(4, 10)]).join('\n')));
  it('LayerNormalization with scale and bias', () =>
    expectGolden('wgsl/layernorm.wgsl', wgslOf('LayerNormalization', [f32(2, 5, 8), f32(8), f32(8)]).join('\n')));
  it('Erf pulls in its helper only when used', () => {
    const [erf] = wgslOf('Erf', [f32(3)]);
    expect(erf).toContain('fn erf_f32');
    expect(wgslOf('Exp', [f32(3)])[0]).not.toContain('fn erf_f32');
  });

  it('does not depend on sizes (one pipeline per dtype/rank/template), only on what the kernel depends on', () => {
    expect(wgslOf('Add', [f32(2, 3, 4), f32(3, 1)])).toEqual(wgslOf('Add', [f32(5, 7, 9), f32(7, 1)]));
    expect(wgslOf('MatMul', [f32(2, 8, 16), f32(16, 4)])).toEqual(wgslOf('MatMul', [f32(3, 5, 7), f32(7, 9)]));
    expect(wgslOf('Add', [f32(2, 3, 4), f32(3, 1)])).not.toEqual(wgslOf('Add', [f32(2, 3, 4, 5), f32(3, 1, 1)]));
  });
});
