import { concreteShape, mulberry32, randomTensor } from '../../src/verify/random-inputs.js';

describe('random inputs', () => {
  it('mulberry32 is deterministic per seed and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(mulberry32(43)()).not.toBe(xs[0]);
    // mean of 1000 uniform draws is within 0.05 of 0.5
    expect(Math.abs(xs.reduce((s, x) => s + x, 0) / 1000 - 0.5)).toBeLessThan(0.05);
  });

  it('binds symbolic dims from the bindings, else to 1', () => {
    expect(concreteShape(['batch', 'sequence', 4], { sequence: 8 })).toEqual([1, 8, 4]);
    expect(concreteShape(['2*batch*sequence'], { batch: 3, sequence: 5 })).toEqual([30]);
    expect(concreteShape(['2*batch'], {})).toEqual([2]);
  });

  it('draws floats in [-1, 1), ints in [0, intHigh) and bools 0/1', () => {
    const f = randomTensor('float32', [4, 50], mulberry32(1));
    expect(f.shape).toEqual([4, 50]);
    expect(Math.min(...f.toArray())).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...f.toArray())).toBeLessThan(1);
    const i = randomTensor('int64', [200], mulberry32(1), 5);
    expect(new Set(i.toArray())).toEqual(new Set([0, 1, 2, 3, 4]));
    const b = randomTensor('bool', [100], mulberry32(1));
    expect(new Set(b.toArray())).toEqual(new Set([0, 1]));
  });
});
