import { join } from 'node:path';
import { VerificationError } from '../../src/ir/errors.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { fromOrt, toOrt } from '../../src/verify/ort.js';
import { assertVerified, verifyModel } from '../../src/verify/verify.js';

const ROOT = join(__dirname, '..', '..', '..', 'shared', 'onnx-node-tests');
const EXAMPLES = join(__dirname, '..', '..', 'examples');
const registry = createCoreRegistry();

describe('onnxruntime tensor conversion', () => {
  it('round-trips int64 through BigInt64Array, float16 through raw bits, and bools', () => {
    const i = Tensor.from('int64', [3], [-(2 ** 40), 0, 7]);
    const oi = toOrt(i);
    expect(oi.type).toBe('int64');
    expect(oi.data).toEqual(new BigInt64Array([-(2n ** 40n), 0n, 7n]));
    expect(fromOrt(oi).toArray()).toEqual([-(2 ** 40), 0, 7]);

    const h = Tensor.from('float16', [2], [1.5, -65504]);
    const oh = toOrt(h);
    expect(Array.from(oh.data as Uint16Array)).toEqual([0x3e00, 0xfbff]);
    expect(fromOrt(oh).toArray()).toEqual([1.5, -65504]);

    const b = fromOrt(toOrt(Tensor.from('bool', [2, 1], [1, 0])));
    expect([b.dtype, b.shape, b.toArray()]).toEqual(['bool', [2, 1], [1, 0]]);
  });
});

describe('verifyModel', () => {
  it('compares with onnxruntime-node on seeded random inputs', async () => {
    const r = await verifyModel(join(ROOT, 'test_matmul_2d', 'model.onnx'), { registry, seed: 3 });
    expect(r.reference).toBe('onnxruntime');
    expect(r.ok).toBe(true);
    expect(r.inputs.map((i) => [i.name, i.shape, i.source])).toEqual([
      ['a', [3, 4], 'random'],
      ['b', [4, 3], 'random'],
    ]);
    expect(r.outputs[0]!.maxAbsDiff).toBeLessThan(1e-6);
  });

  it('binds symbolic dims of a whole model from dims', async () => {
    const r = await verifyModel(join(EXAMPLES, 'gpt-tiny.onnx'), { registry, dims: { batch: 2, sequence: 6 } });
    expect(r.ok).toBe(true);
    expect(r.outputs[0]!.shape).toEqual([2, 6, 96]);
  });

  it('uses output_<i>.pb of a data set when present; a zero tolerance still passes exact ops', async () => {
    const r = await verifyModel(join(ROOT, 'test_add', 'model.onnx'), {
      registry,
      inputsDir: join(ROOT, 'test_add', 'test_data_set_0'),
      tolerance: { rtol: 0, atol: 0 },
    });
    expect(r.reference).toBe('test-data');
    expect(r.ok).toBe(true);
  });

  it('assertVerified throws a VerificationError naming the output', async () => {
    const r = await verifyModel(join(ROOT, 'test_add', 'model.onnx'), { registry });
    r.outputs[0] = { ...r.outputs[0]!, ok: false, message: '1 of 60 elements differ; worst at [0,0,1]: got 1, expected 2' };
    r.ok = false;
    expect(() => assertVerified(r)).toThrow(VerificationError);
    expect(() => assertVerified(r)).toThrow(/output "sum" differs from onnxruntime-node: 1 of 60 elements differ; worst at \[0,0,1\]/);
  });
});
