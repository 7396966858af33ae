import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bf16BitsToF32 } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readNpy, writeNpy } from '../../src/onnx/npy.js';
import { decodeTensorProto, encodeTensorProto, readTensorFile, tensorFromProto, writeTensorFile } from '../../src/onnx/tensor-file.js';
import { onnx, userError } from './proto-helpers.js';

const TESTS = '/work/shared/onnx-node-tests';
const haveTests = fs.existsSync(`${TESTS}/test_add/model.onnx`);
const itData = haveTests ? it : it.skip;

// .npy files written by numpy 2.4 (np.save), base64.
const NPY = {
  f32: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAQEAAAIhAAACgQAAAwEA=',
  i64be: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAf/////////+AAAAAAAAAAM=',
  fortran: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGk0JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMyksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAwAAAAEAAAAEAAAAAgAAAAUAAAA=',
  bool: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAE=',
  str: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPFUzJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAphAAAAYgAAAAAAAABjAAAAZAAAAGUAAAA=',
  f16: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIApmLv97',
  scalar: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKCksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAEQA==',
};
const npy = (k: keyof typeof NPY): Uint8Array => new Uint8Array(Buffer.from(NPY[k], 'base64'));

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-tensor-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('TensorProto files of the ONNX node tests', () => {
  itData('test_add: input_0 + input_1 equals output_0 (float32 raw_data)', () => {
    const ds = `${TESTS}/test_add/test_data_set_0`;
    const a = readTensorFile(`${ds}/input_0.pb`);
    const b = readTensorFile(`${ds}/input_1.pb`);
    const c = readTensorFile(`${ds}/output_0.pb`);
    expect(a.name).toBe('x');
    expect(a.tensor.dtype).toBe('float32');
    expect(a.tensor.shape).toEqual([3, 4, 5]);
    expect(c.tensor.shape).toEqual([3, 4, 5]);
    const sum = Float32Array.from(a.tensor.data, (v, i) => v + b.tensor.data[i]!);
    expect(Array.from(c.tensor.data)).toEqual(Array.from(sum));
  });

  itData('float16 and bfloat16 casts decode to values near their float32 inputs', () => {
    // onnx 1.12 stored the bfloat16 expectation as uint16 bit patterns.
    for (const [test, dtype, rel] of [
      ['test_cast_FLOAT_to_FLOAT16', 'float16', 2 ** -10],
      ['test_cast_FLOAT_to_BFLOAT16', 'uint16', 2 ** -7],
    ] as const) {
      const ds = `${TESTS}/${test}/test_data_set_0`;
      const x = readTensorFile(`${ds}/input_0.pb`).tensor;
      let y = readTensorFile(`${ds}/output_0.pb`).tensor;
      expect(y.dtype).toBe(dtype);
      if (dtype === 'uint16') y = new Tensor('bfloat16', y.shape, Float32Array.from(y.data, bf16BitsToF32));
      expect(y.shape).toEqual(x.shape);
      let checked = 0;
      for (let i = 0; i < x.size; i++) {
        const xv = x.data[i]!;
        if (!Number.isFinite(xv) || Math.abs(xv) > 60000 || Math.abs(xv) < 1e-4) continue;
        expect(Math.abs(y.data[i]! - xv)).toBeLessThanOrEqual(Math.abs(xv) * rel);
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    }
  });

  itData('string tensors decode from string_data', () => {
    const ds = `${TESTS}/test_cast_FLOAT_to_STRING/test_data_set_0`;
    const x = readTensorFile(`${ds}/input_0.pb`).tensor;
    const y = readTensorFile(`${ds}/output_0.pb`).tensor;
    expect(y.dtype).toBe('string');
    expect(y.strings).toHaveLength(x.size);
    for (let i = 0; i < x.size; i++) {
      if (!Number.isFinite(x.data[i]!)) continue;
      expect(Number(y.strings![i])).toBeCloseTo(x.data[i]!, 4);
    }
  });
});

describe('TensorProto encode/decode', () => {
  const cases: Tensor[] = [
    Tensor.from('float32', [2, 2], [1.5, -2, 3e-8, 1e30]),
    Tensor.from('float64', [3], [Math.PI, -0, 1e300]),
    Tensor.from('float16', [3], [0.1, 65504, -2]),
    Tensor.from('bfloat16', [2], [3.14159, -1e20]),
    Tensor.from('int8', [3], [-128, 0, 127]),
    Tensor.from('uint8', [2], [0, 255]),
    Tensor.from('int16', [2], [-32768, 32767]),
    Tensor.from('uint16', [1], [65535]),
    Tensor.from('int32', [2], [-(2 ** 31), 2 ** 31 - 1]),
    Tensor.from('uint32', [1], [2 ** 32 - 1]),
    Tensor.from('int64', [3], [-(2 ** 53) + 1, 0, 2 ** 53 - 1]),
    Tensor.from('uint64', [1], [2 ** 53]),
    Tensor.from('bool', [3], [1, 0, 1]),
    Tensor.from('float32', [0, 3], []),
    Tensor.scalar('int64', 7),
    new Tensor('string', [2], ['héllo', '']),
  ];
  it.each(cases.map((t) => [t.dtype, t.shape.join('x'), t] as const))('%s [%s] round-trips', (_d, _s, t) => {
    const back = decodeTensorProto(encodeTensorProto(t, 'w'), { file: 'mem.pb' });
    expect(back.name).toBe('w');
    expect(back.tensor.dtype).toBe(t.dtype);
    expect(back.tensor.shape).toEqual(t.shape);
    if (t.dtype === 'string') expect(back.tensor.strings).toEqual(t.strings);
    else expect(Array.from(back.tensor.data)).toEqual(Array.from(t.data));
  });

  it('decodes the typed fields: int64_data, uint64_data, int32_data as float16 bits, double_data', () => {
    const ctx = { file: 't.pb' };
    const i64 = tensorFromProto(onnx.TensorProto.create({ dims: [2], dataType: 7, int64Data: [-5, 9007199254740991] }), ctx).load();
    expect(i64.toArray()).toEqual([-5, 9007199254740991]);
    const u64 = tensorFromProto(onnx.TensorProto.create({ dims: [1], dataType: 13, uint64Data: [4294967296] }), ctx).load();
    expect(u64.toArray()).toEqual([4294967296]);
    const f16 = tensorFromProto(onnx.TensorProto.create({ dims: [2], dataType: 10, int32Data: [0x3c00, 0xc000] }), ctx).load();
    expect(f16.toArray()).toEqual([1, -2]);
    const bf16 = tensorFromProto(onnx.TensorProto.create({ dims: [1], dataType: 16, int32Data: [0x3fc0] }), ctx).load();
    expect(bf16.toArray()).toEqual([1.5]);
    const f64 = tensorFromProto(onnx.TensorProto.create({ dims: [], dataType: 11, doubleData: [0.1] }), ctx).load();
    expect(f64.toArray()).toEqual([0.1]);
    // Through the wire too (Long objects for int64).
    const bytes = onnx.TensorProto.encode({ dims: [2], dataType: 7, int64Data: [-3, 2 ** 40] }).finish();
    expect(decodeTensorProto(bytes, ctx).tensor.toArray()).toEqual([-3, 2 ** 40]);
  });

  it('is lazy: inline data is decoded on load only', () => {
    const lt = tensorFromProto(onnx.TensorProto.create({ dims: [2], dataType: 1, floatData: [1, 2] }), { file: 'x' });
    expect(lt.loaded).toBe(false);
    expect(lt.shape).toEqual([2]);
    expect(lt.load().toArray()).toEqual([1, 2]);
  });

  it('rejects bad tensors with user errors naming the tensor', () => {
    const ctx = { file: 'bad.onnx' };
    const mk = (p: object) => () => tensorFromProto(onnx.TensorProto.create({ name: 'w', ...p }), ctx);
    let e = userError(mk({ dims: [2], dataType: 99, floatData: [1, 2] }));
    expect(e.message).toMatch(/bad\.onnx.*tensor "w".*unknown data_type 99/);
    e = userError(mk({ dims: [2], dataType: 14 }));
    expect(e.message).toMatch(/COMPLEX64/);
    e = userError(mk({ dims: [2, 3], dataType: 1, rawData: new Uint8Array(20) }));
    expect(e.message).toMatch(/raw_data holds 20 bytes but dims \[2,3\] of float32 need 24/);
    e = userError(mk({ dims: [-1], dataType: 1 }));
    expect(e.message).toMatch(/invalid dimension -1/);
    e = userError(mk({ dims: [2 ** 30, 2 ** 30, 2 ** 30], dataType: 1, rawData: new Uint8Array(4) }));
    expect(e.message).toMatch(/more than 2\^53 elements/);
    e = userError(mk({ dims: [3], dataType: 1, floatData: [1, 2] }));
    expect(e.message).toMatch(/float_data holds 2 elements but dims \[3\] need 3/);
    e = userError(mk({ dims: [3], dataType: 7 }));
    expect(e.message).toMatch(/has no data/);
  });

  it('rejects truncated and random bytes as TensorProto files', () => {
    const good = encodeTensorProto(Tensor.from('float32', [4], [1, 2, 3, 4]), 'x');
    expect(userError(() => decodeTensorProto(good.subarray(0, good.length - 3), { file: 'cut.pb' })).message).toMatch(/cut\.pb: not a valid TensorProto/);
    expect(userError(() => decodeTensorProto(new Uint8Array(0), { file: 'e.pb' })).message).toMatch(/empty/);
  });
});

describe('tensor files on disk', () => {
  it('writes and reads .pb and .npy files', () => {
    const t = Tensor.from('int64', [2, 3], [1, -2, 3, 4, 5, 2 ** 40]);
    for (const ext of ['pb', 'npy']) {
      const f = path.join(dir, `t.${ext}`);
      writeTensorFile(f, t, 'named');
      const back = readTensorFile(f);
      expect(back.tensor.dtype).toBe('int64');
      expect(back.tensor.shape).toEqual([2, 3]);
      expect(back.tensor.toArray()).toEqual([1, -2, 3, 4, 5, 2 ** 40]);
      if (ext === 'pb') expect(back.name).toBe('named');
    }
  });

  it('missing files are user errors naming the file', () => {
    expect(userError(() => readTensorFile(path.join(dir, 'nope.pb'))).message).toMatch(/nope\.pb: file not found/);
  });
});

describe('.npy', () => {
  it('reads numpy-written files (endianness, Fortran order, bool, unicode, float16, 0-d)', () => {
    const f32 = readNpy(npy('f32'), 'a.npy');
    expect(f32.dtype).toBe('float32');
    expect(f32.shape).toEqual([3, 2]);
    expect(f32.toArray()).toEqual([1.5, -2, 3, 4.25, 5, 6]);
    const be = readNpy(npy('i64be'), 'b.npy');
    expect([be.dtype, be.toArray()]).toEqual(['int64', [1, -2, 3]]);
    const fo = readNpy(npy('fortran'), 'c.npy');
    expect([fo.dtype, fo.shape, fo.toArray()]).toEqual(['int32', [2, 3], [0, 1, 2, 3, 4, 5]]);
    const b = readNpy(npy('bool'), 'd.npy');
    expect([b.dtype, b.toArray()]).toEqual(['bool', [1, 0, 1]]);
    const s = readNpy(npy('str'), 'e.npy');
    expect([s.dtype, s.strings]).toEqual(['string', ['ab', 'cde']]);
    const h = readNpy(npy('f16'), 'f.npy');
    expect(h.dtype).toBe('float16');
    expect(h.data[0]).toBeCloseTo(0.1, 3);
    expect(h.data[1]).toBe(65504);
    const sc = readNpy(npy('scalar'), 'g.npy');
    expect([sc.dtype, sc.shape, sc.toArray()]).toEqual(['float64', [], [2.5]]);
  });

  it('writes byte-identical files to numpy for C-order little-endian data', () => {
    const t = Tensor.from('float32', [3, 2], [1.5, -2, 3, 4.25, 5, 6]);
    expect(Buffer.from(writeNpy(t, 'x.npy')).toString('base64')).toBe(NPY.f32);
    expect(Buffer.from(writeNpy(new Tensor('string', [2], ['ab', 'cde']), 'x.npy')).toString('base64')).toBe(NPY.str);
  });

  it('round-trips every numpy dtype', () => {
    for (const t of [
      Tensor.from('uint16', [2], [1, 65535]),
      Tensor.from('int8', [1, 1, 2], [-1, 1]),
      Tensor.from('uint64', [1], [2 ** 50]),
      Tensor.from('float64', [0], []),
    ]) {
      const back = readNpy(writeNpy(t, 'x.npy'), 'x.npy');
      expect([back.dtype, back.shape, back.toArray()]).toEqual([t.dtype, t.shape, t.toArray()]);
    }
  });

  it('rejects bad .npy files and bfloat16 writes', () => {
    expect(userError(() => readNpy(new Uint8Array([1, 2, 3]), 'x.npy')).message).toMatch(/x\.npy: not a valid \.npy file/);
    const cut = npy('f32').subarray(0, 140);
    expect(userError(() => readNpy(cut, 'cut.npy')).message).toMatch(/needs 24/);
    expect(userError(() => writeNpy(Tensor.from('bfloat16', [1], [1]), 'y.npy')).message).toMatch(/bfloat16/);
  });
});
