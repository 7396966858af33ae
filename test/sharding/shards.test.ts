/**
 * Shard arithmetic (src/passes/sharding/shards.ts): splitDim's balanced split against hand-worked
 * splits, and splitPart (one part, as lowering asks for it) against splitDim's parts.
 */
import { splitDim, splitPart } from '../../src/passes/sharding/shards.js';

describe('splitDim / splitPart', () => {
  it('splits in balanced whole blocks, larger parts first', () => {
    expect(splitDim(48, 4, 8)).toEqual([
      { offset: 0, size: 16 },
      { offset: 16, size: 16 },
      { offset: 32, size: 8 },
      { offset: 40, size: 8 },
    ]);
    // a vocabulary of 50257 over 8 devices: 6283 once, then 6282
    const vocab = splitDim(50257, 8);
    expect(vocab.map((r) => r.size)).toEqual([6283, 6282, 6282, 6282, 6282, 6282, 6282, 6282]);
    expect(vocab.map((r) => r.offset)).toEqual([0, 6283, 12565, 18847, 25129, 31411, 37693, 43975]);
    expect(splitDim(3, 5).map((r) => r.size)).toEqual([1, 1, 1, 0, 0]);
  });

  it('gives each part of splitDim on its own', () => {
    for (const unit of [1, 2, 3, 8])
      for (let m = 0; m <= 20; m++)
        for (let k = 1; k <= 9; k++) {
          const n = m * unit;
          const all = splitDim(n, k, unit);
          for (let i = 0; i < k; i++) expect(splitPart(n, k, unit, i)).toEqual(all[i]);
        }
  });

  it('rejects a dim that is not whole blocks', () => {
    expect(() => splitDim(10, 2, 4)).toThrow('cannot split 10 elements in blocks of 4');
    expect(() => splitPart(10, 2, 4, 0)).toThrow('cannot split 10 elements in blocks of 4');
  });
});
