/**
 * Sharding rules of the shape family, checked on simulated devices: every candidate (plus the
 * implicit all-R) of each node is run through check-rule.ts at axis sizes 2 and 3 — inputs sliced
 * per device, the node localized and evaluated per device, outputs reassembled and compared with
 * the unsharded evaluation — and the expected candidates are pinned by their printed form.
 */
import { Tensor } from '../../src/ir/tensor.js';
import { Replicate, Shard } from '../../src/ir/layout.js';
import { checkCandidate } from '../../src/passes/sharding/check-rule.js';
import { attrsOf, opNode } from '../helpers/ops.js';
import { checkWith, counter, i64, rand, registry, rules } from './rules-harness.js';

const check = checkWith({ constants: [] });

afterAll(() => {
  // Every test above runs candidates through the checker; the total is reported for the lead.
  expect(counter.checked).toBeGreaterThan(100);
  console.log(`rules-shape: ${counter.checked} candidate checks`);
});

describe('Reshape', () => {
  const C = [false, true];

  test('heads → hidden merges with unit head_dim: [2,3,6,4] → [2,3,24]', () => {
    const c = check('Reshape', [rand([2, 3, 6, 4], 1), i64([2, 3, 24])], {}, { constants: C });
    expect(c[2]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), R] -> [S(1)]', '[S(2), R] -> [S(2:4)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    expect(c[3]).toEqual(['[S(1), R] -> [S(1)]', '[S(2), R] -> [S(2:4)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('hidden → heads, 6 heads of 8 on 2, 3 and 4 devices (2,2,1,1 heads): [2,5,48] → [2,5,6,8]', () => {
    const c = check('Reshape', [rand([2, 5, 48], 2), i64([2, 5, 6, 8])], {}, { constants: C, sizes: [2, 3, 4] });
    expect(c[4]).toEqual(['[S(1), R] -> [S(1)]', '[S(2:8), R] -> [S(2)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    expect(c[2]).toContain('[S(2:8), R] -> [S(2)]');
    expect(c[3]).toContain('[S(2:8), R] -> [S(2)]');
  });

  test('0 and -1 in the shape input are rewritten to explicit local dims', () => {
    const c = check('Reshape', [rand([4, 3, 24], 3), i64([0, 0, 6, -1])], {}, { constants: C });
    expect(c[2]).toContain('[S(0), R] -> [S(0)]');
    expect(c[3]).toContain('[S(2:4), R] -> [S(2)]');
  });

  test('groups with both units > 1: [6,4] → [4,6] shards 3 rows in for 2 rows out', () => {
    const c = check('Reshape', [rand([6, 4], 4), i64([4, 6])], {}, { constants: C });
    expect(c[2]).toEqual(['[S(0:3), R] -> [S(0:2)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    // 2 blocks cannot cover 3 devices: not offered.
    expect(c[3]).toEqual(['[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('split of a batch·seq dim and size-1 dims: [12,1,5] → [3,4,5]', () => {
    const c = check('Reshape', [rand([12, 1, 5], 5), i64([3, 4, 5])], {}, { constants: C });
    expect(c[3]).toEqual(['[S(0:4), R] -> [S(0)]', '[S(2), R] -> [S(2)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('a wrong candidate fails the check (the checker can fail)', () => {
    const x = rand([2, 3, 6, 4], 1);
    const shape = i64([2, 3, 24]);
    const node = opNode('Reshape', 2, 1, attrsOf({}), 'reshape_bad');
    const wrong = { inputs: [Shard(3), Replicate], outputs: [Shard(2)] };
    const r = checkCandidate({ node, inputs: [x, shape], registry, constants: C }, rules.get('Reshape')!, wrong, 2);
    expect(r.ok).toBe(false);
  });
});

describe('views', () => {
  test('Flatten axis 1: [4,3,5] → [4,15]', () => {
    const c = check('Flatten', [rand([4, 3, 5], 6)], { axis: 1 });
    expect(c[3]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(1:5)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
  });

  test('Squeeze and Unsqueeze renumber dims', () => {
    const sq = check('Squeeze', [rand([4, 1, 6], 7), i64([1])], {}, { constants: [false, true] });
    expect(sq[3]).toEqual(['[S(0), R] -> [S(0)]', '[S(2), R] -> [S(1)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    const un = check('Unsqueeze', [rand([4, 6], 8), i64([0, 2])], {}, { constants: [false, true] });
    expect(un[2]).toEqual(['[S(0), R] -> [S(1)]', '[S(1), R] -> [S(3)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('Expand: kept dims shard through, broadcast dims shard from a replicated input', () => {
    const c = check('Expand', [rand([3, 1], 9), i64([2, 3, 4])], {}, { constants: [false, true] });
    expect(c[2]).toEqual([
      '[R, R] -> [S(0)]',
      '[S(0), R] -> [S(1)]',
      '[R, R] -> [S(2)]',
      '[P(sum), R] -> [P(sum)]',
      '[R, R] -> [R]',
    ]);
    expect(c[3]).toContain('[R, R] -> [S(2)]');
  });

  test('Shape, Size and the constant makers are replicate-only', () => {
    expect(check('Shape', [rand([4, 6], 10)])[2]).toEqual(['[R] -> [R]']);
    expect(check('Size', [rand([4, 6], 10)])[2]).toEqual(['[R] -> [R]']);
    expect(check('ConstantOfShape', [i64([4, 3])], {}, { constants: [true] })[3]).toEqual(['[R] -> [R]']);
    expect(check('Range', [Tensor.scalar('int64', 0), Tensor.scalar('int64', 7), Tensor.scalar('int64', 1)])[2]).toEqual(['[R, R, R] -> [R]']);
  });
});

describe('movement', () => {
  test('Transpose maps dims through perm', () => {
    const c = check('Transpose', [rand([2, 4, 3, 5], 11)], { perm: [0, 2, 1, 3] });
    expect(c[2]).toEqual(['[S(0)] -> [S(0)]', '[S(1)] -> [S(2)]', '[S(2)] -> [S(1)]', '[S(3)] -> [S(3)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
    expect(check('Transpose', [rand([4, 3, 5], 12)])[3]).toContain('[S(0)] -> [S(2)]');
  });

  test('Concat shards every input on a non-concat dim', () => {
    const c = check('Concat', [rand([4, 2, 3], 13), rand([4, 3, 3], 14), rand([4, 1, 3], 15)], { axis: 1 });
    expect(c[3]).toEqual(['[S(0), S(0), S(0)] -> [S(0)]', '[S(2), S(2), S(2)] -> [S(2)]', '[P(sum), P(sum), P(sum)] -> [P(sum)]', '[R, R, R] -> [R]']);
  });

  test('Split: non-split dims, split sizes unchanged', () => {
    const c = check('Split', [rand([5, 6, 3], 16), i64([2, 4])], { axis: 1 }, { nOut: 2, constants: [false, true] });
    expect(c[3]).toEqual(['[S(0), R] -> [S(0), S(0)]', '[S(2), R] -> [S(2), S(2)]', '[P(sum), R] -> [P(sum), P(sum)]', '[R, R] -> [R, R]']);
    const eq = check('Split', [rand([4, 6], 17)], { axis: -1, num_outputs: 3 }, { nOut: 3 });
    expect(eq[2]).toContain('[S(0)] -> [S(0), S(0), S(0)]');
  });

  test('Slice: untouched and full-range dims shard; sliced and strided ones do not', () => {
    const C = [false, true, true, true, true];
    const c = check('Slice', [rand([4, 6, 5, 3], 18), i64([1, -9, 0]), i64([3, 100, 3]), i64([1, 2, 3]), i64([1, 1, 2])], {}, { constants: C });
    // dim 1 sliced [1,3), dim 2 full range (start -9 clamps to 0), dim 3 strided.
    expect(c[2]).toEqual(['[S(0), R, R, R, R] -> [S(0)]', '[S(2), R, R, R, R] -> [S(2)]', '[P(sum), R, R, R, R] -> [P(sum)]', '[R, R, R, R, R] -> [R]']);
    const noAxes = check('Slice', [rand([4, 6], 19), i64([0]), i64([2])], {}, { constants: [false, true, true] });
    expect(noAxes[3]).toEqual(['[S(1), R, R] -> [S(1)]', '[P(sum), R, R] -> [P(sum)]', '[R, R, R] -> [R]']);
  });

  test('Tile: dims repeated once', () => {
    const c = check('Tile', [rand([3, 4], 20), i64([1, 2])], {}, { constants: [false, true] });
    expect(c[3]).toEqual(['[S(0), R] -> [S(0)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
  });

  test('Pad: unpadded dims; P only when padding with 0 or copying', () => {
    const x = rand([4, 5, 6], 21);
    const pads = i64([0, 0, 1, 0, 0, 2]);
    const zero = check('Pad', [x, pads], {}, { constants: [false, true] });
    expect(zero[2]).toEqual(['[S(0), R] -> [S(0)]', '[S(1), R] -> [S(1)]', '[P(sum), R] -> [P(sum)]', '[R, R] -> [R]']);
    const one = check('Pad', [x, pads, Tensor.scalar('float32', 1.5)], {}, { constants: [false, true, true] });
    expect(one[3]).toEqual(['[S(0), R, R] -> [S(0)]', '[S(1), R, R] -> [S(1)]', '[R, R, R] -> [R]']);
    const refl = check('Pad', [x, i64([1, 2]), undefined, i64([-1])], { mode: 'reflect' }, { constants: [false, true, false, true] });
    expect(refl[2]).toContain('[P(sum), R, -, R] -> [P(sum)]');
    expect(refl[3]).toContain('[S(1), R, -, R] -> [S(1)]');
  });

  test('DepthToSpace (DCR, CRD) and SpaceToDepth', () => {
    const dcr = check('DepthToSpace', [rand([2, 8, 3, 4], 22)], { blocksize: 2 });
    expect(dcr[2]).toEqual(['[S(0)] -> [S(0)]', '[S(2)] -> [S(2:2)]', '[S(3)] -> [S(3:2)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
    const crd = check('DepthToSpace', [rand([2, 12, 3, 2], 23)], { blocksize: 2, mode: 'CRD' });
    expect(crd[3]).toContain('[S(1:4)] -> [S(1)]');
    const s2d = check('SpaceToDepth', [rand([3, 2, 6, 4], 24)], { blocksize: 2 });
    expect(s2d[3]).toEqual(['[S(0)] -> [S(0)]', '[S(2:2)] -> [S(2)]', '[P(sum)] -> [P(sum)]', '[R] -> [R]']);
  });
});
