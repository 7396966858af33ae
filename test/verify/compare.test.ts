import { Tensor } from '../../src/ir/tensor.js';
import { ONNX_TEST_TOLERANCE, compareTensors, unflatten } from '../../src/verify/compare.js';

const f32 = (shape: number[], v: number[]): Tensor => Tensor.from('float32', shape, v);

describe('compareTensors', () => {
  it('accepts differences within atol + rtol*|expected|', () => {
    // allowed at 100: 1e-7 + 1e-3*100 = 0.1000001
    const r = compareTensors(f32([2], [100.1, 0]), f32([2], [100, 0]), ONNX_TEST_TOLERANCE);
    expect(r.ok).toBe(true);
    expect(r.maxAbsDiff).toBeCloseTo(0.1, 4);
  });

  it('names the worst element by multi-dimensional index', () => {
    const got = f32([2, 3], [1, 2, 3, 4, 5.5, 6]);
    const exp = f32([2, 3], [1, 2, 3.01, 4, 5, 6]);
    const r = compareTensors(got, exp);
    expect(r.ok).toBe(false);
    expect(r.mismatches).toBe(2);
    expect(r.worst).toMatchObject({ flat: 4, index: [1, 1], got: 5.5, expected: 5 });
    expect(r.message).toBe('2 of 6 elements differ; worst at [1,1]: got 5.5, expected 5');
  });

  it('treats NaN as equal to NaN and equal infinities as equal, but not inf vs -inf', () => {
    expect(compareTensors(f32([3], [NaN, Infinity, -Infinity]), f32([3], [NaN, Infinity, -Infinity])).ok).toBe(true);
    const r = compareTensors(f32([2], [1, Infinity]), f32([2], [1, -Infinity]));
    expect(r.ok).toBe(false);
    expect(r.message).toContain('got inf, expected -inf');
    expect(compareTensors(f32([1], [NaN]), f32([1], [0])).message).toContain('got NaN, expected 0');
  });

  it('compares integers and bools exactly whatever the tolerance', () => {
    const a = Tensor.from('int64', [2], [5, 7]);
    const b = Tensor.from('int64', [2], [5, 8]);
    const r = compareTensors(a, b, { rtol: 0.5, atol: 2 });
    expect(r.ok).toBe(false);
    expect(r.worst?.index).toEqual([1]);
    expect(compareTensors(Tensor.from('bool', [2], [1, 0]), Tensor.from('bool', [2], [1, 0])).ok).toBe(true);
  });

  it('requires the same dtype and shape', () => {
    expect(compareTensors(Tensor.from('int32', [1], [1]), Tensor.from('int64', [1], [1])).message).toBe('dtype int32, expected int64');
    expect(compareTensors(f32([2, 1], [1, 2]), f32([2], [1, 2])).message).toBe('shape [2,1], expected [2]');
  });

  it('compares strings exactly', () => {
    const a = new Tensor('string', [2], ['a', 'b']);
    expect(compareTensors(a, new Tensor('string', [2], ['a', 'b'])).ok).toBe(true);
    expect(compareTensors(a, new Tensor('string', [2], ['a', 'c'])).message).toBe('1 of 2 elements differ; worst at [1]: got "b", expected "c"');
  });

  it('unflattens row-major indices', () => {
    expect(unflatten(23, [2, 3, 4])).toEqual([1, 2, 3]);
    expect(unflatten(0, [])).toEqual([]);
  });
});
