import type { Node, Value } from '../../src/ir/graph.js';
import { importModel } from '../../src/onnx/import.js';
import { AT, floatAttr, graphAttr, intAttr, intsAttr, model, node, valueInfo } from './proto-helpers.js';

/** Imports a one-node model at `opset` and returns the (normalised) node. */
function one(opset: number, op: string, inputs: string[], attrs: ReturnType<typeof intAttr>[], nOut = 1, inType = 1): Node {
  const names = inputs.filter((s) => s);
  const outs = Array.from({ length: nOut }, (_, i) => `y${i}`);
  const m = importModel(
    model({ node: [node(op, inputs, outs, attrs, 'n')], input: names.map((n) => valueInfo(n, inType)), output: outs.map((o) => valueInfo(o)) }, opset),
    { file: 'm.onnx' },
  );
  return m.graph.nodes[0]!;
}

const constOf = (v: Value | null | undefined) => {
  expect(v?.constant).toBeDefined();
  const t = v!.constant!.load();
  return { dtype: t.dtype, shape: t.shape, values: t.toArray() };
};

describe('opset normalisation', () => {
  it.each(['Squeeze', 'Unsqueeze'])('%s < 13: axes attribute → int64 input', (op) => {
    const n = one(11, op, ['x'], [intsAttr('axes', [0, -1])]);
    expect(n.attrs.has('axes')).toBe(false);
    expect(constOf(n.inputs[1])).toEqual({ dtype: 'int64', shape: [2], values: [0, -1] });
    // Already in the latest form at 13.
    expect(one(13, op, ['x', 'a'], []).inputs.map((v) => v?.name)).toEqual(['x', 'a']);
  });

  it('Squeeze < 13 without axes keeps one input (squeeze all)', () => {
    expect(one(11, 'Squeeze', ['x'], []).inputs).toHaveLength(1);
  });

  it('Split < 13: split attribute → input', () => {
    const n = one(11, 'Split', ['x'], [intAttr('axis', 1), intsAttr('split', [2, 3])], 2);
    expect(constOf(n.inputs[1]).values).toEqual([2, 3]);
    expect(n.attrs.int('axis')).toBe(1);
  });

  it('ReduceSum < 13 and other Reduce* < 18: axes → input; ReduceSum at 13 untouched', () => {
    expect(constOf(one(12, 'ReduceSum', ['x'], [intsAttr('axes', [1])]).inputs[1]).values).toEqual([1]);
    for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']) {
      const n = one(17, op, ['x'], [intsAttr('axes', [0, 2]), intAttr('keepdims', 0)]);
      expect(constOf(n.inputs[1]).values).toEqual([0, 2]);
      expect(n.attrs.int('keepdims')).toBe(0);
      expect(n.attrs.has('axes')).toBe(false);
    }
    const n18 = one(18, 'ReduceMean', ['x', 'a'], []);
    expect(n18.inputs.map((v) => v?.name)).toEqual(['x', 'a']);
    // No axes attribute: no input (reduce over all axes).
    expect(one(13, 'ReduceMean', ['x'], []).inputs).toHaveLength(1);
  });

  it('Clip < 11: min/max attributes → scalar inputs of the input dtype; a missing min stays absent', () => {
    const n = one(6, 'Clip', ['x'], [floatAttr('max', 6)], 1, 11);
    expect(n.inputs[1]).toBeNull();
    expect(constOf(n.inputs[2])).toEqual({ dtype: 'float64', shape: [], values: [6] });
    const both = one(10, 'Clip', ['x'], [floatAttr('min', -1), floatAttr('max', 1)]);
    expect(constOf(both.inputs[1])).toEqual({ dtype: 'float32', shape: [], values: [-1] });
    expect(constOf(both.inputs[2]).values).toEqual([1]);
    expect(both.attrs.has('min') || both.attrs.has('max')).toBe(false);
  });

  it('Pad < 11: pads → int64 input, value → scalar input, mode stays', () => {
    const n = one(10, 'Pad', ['x'], [intsAttr('pads', [0, 1, 0, 2]), floatAttr('value', 1.5), { name: 'mode', type: AT.STRING, s: new TextEncoder().encode('constant') }]);
    expect(constOf(n.inputs[1])).toEqual({ dtype: 'int64', shape: [4], values: [0, 1, 0, 2] });
    expect(constOf(n.inputs[2])).toEqual({ dtype: 'float32', shape: [], values: [1.5] });
    expect(n.attrs.string('mode')).toBe('constant');
  });

  it('Slice < 10: starts/ends/axes → inputs', () => {
    const n = one(9, 'Slice', ['x'], [intsAttr('starts', [1]), intsAttr('ends', [-1]), intsAttr('axes', [2])]);
    expect(n.inputs.slice(1).map((v) => constOf(v).values)).toEqual([[1], [-1], [2]]);
    const noAxes = one(9, 'Slice', ['x'], [intsAttr('starts', [0]), intsAttr('ends', [3])]);
    expect(noAxes.inputs).toHaveLength(3);
  });

  it('TopK < 10: k → int64 [1] input', () => {
    const n = one(9, 'TopK', ['x'], [intAttr('k', 3), intAttr('axis', -1)], 2);
    expect(constOf(n.inputs[1])).toEqual({ dtype: 'int64', shape: [1], values: [3] });
  });

  it('Upsample 7 (scales attribute) and Resize 10 → Resize(X, "", scales)', () => {
    const up = one(7, 'Upsample', ['x'], [{ name: 'scales', type: AT.FLOATS, floats: [1, 1, 2, 2] }, { name: 'mode', type: AT.STRING, s: new TextEncoder().encode('bilinear') }]);
    expect(up.op).toBe('Resize');
    expect(up.inputs[1]).toBeNull();
    expect(constOf(up.inputs[2])).toEqual({ dtype: 'float32', shape: [4], values: [1, 1, 2, 2] });
    expect(up.attrs.string('mode')).toBe('linear');
    expect(up.attrs.string('coordinate_transformation_mode')).toBe('asymmetric');
    const r10 = one(10, 'Resize', ['x', 's'], []);
    expect(r10.inputs.map((v) => v?.name ?? null)).toEqual(['x', null, 's']);
    expect(r10.attrs.string('nearest_mode')).toBe('floor');
    // Opset 11 Resize is already in the 4-input form.
    const r11 = one(11, 'Resize', ['x', 'roi', 's'], []);
    expect(r11.inputs.map((v) => v?.name)).toEqual(['x', 'roi', 's']);
    expect(r11.attrs.has('coordinate_transformation_mode')).toBe(false);
  });

  it('Dropout < 12 loses ratio; Scatter becomes ScatterElements', () => {
    const d = one(10, 'Dropout', ['x'], [floatAttr('ratio', 0.3)]);
    expect(d.attrs.has('ratio')).toBe(false);
    expect(one(9, 'Scatter', ['x', 'i', 'u'], [intAttr('axis', 0)]).op).toBe('ScatterElements');
  });

  it.each(['Softmax', 'LogSoftmax', 'Hardmax'])('%s < 13 is marked _legacy_axis_2d with an explicit axis; 13 is not', (op) => {
    const old = one(11, op, ['x'], []);
    expect(old.attrs.int('_legacy_axis_2d')).toBe(1);
    expect(old.attrs.int('axis')).toBe(1);
    const oldAxis = one(12, op, ['x'], [intAttr('axis', 2)]);
    expect(oldAxis.attrs.int('axis')).toBe(2);
    const cur = one(13, op, ['x'], []);
    expect(cur.attrs.has('_legacy_axis_2d')).toBe(false);
    expect(cur.attrs.has('axis')).toBe(false);
  });

  it('generated constant names are unique in the model and nodes inside subgraphs are normalised', () => {
    const body = { node: [node('Unsqueeze', ['x'], ['y__axes'], [intsAttr('axes', [0])])], output: [valueInfo('y__axes')] };
    const m = importModel(
      model(
        {
          node: [node('Unsqueeze', ['x'], ['y'], [intsAttr('axes', [0])]), node('If', ['c'], ['z'], [graphAttr('then_branch', body), graphAttr('else_branch', body)])],
          input: [valueInfo('x', 1, [2]), valueInfo('c', 9, [])],
          output: [valueInfo('y'), valueInfo('z')],
        },
        11,
      ),
      { file: 'm.onnx' },
    );
    const top = m.graph.nodes.find((n) => n.op === 'Unsqueeze')!;
    const inner = m.graph.nodes.find((n) => n.op === 'If')!.attrs.graph('then_branch')!;
    const innerAxes = inner.nodes[0]!.inputs[1]!;
    expect(inner.initializers).toContain(innerAxes);
    const names = [top.inputs[1]!.name, innerAxes.name, 'y__axes'];
    expect(new Set(names).size).toBe(3);
  });
});
