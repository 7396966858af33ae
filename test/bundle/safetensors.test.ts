import { Tensor } from '../../src/ir/tensor.js';
import { UserError } from '../../src/ir/errors.js';
import { concatParts, encodeSafetensors, parseSafetensors } from '../../src/bundle/safetensors.js';

function file(tensors: { name: string; tensor: Tensor }[], meta: Record<string, string> = {}): Uint8Array {
  return concatParts(encodeSafetensors(tensors, meta).parts);
}

describe('safetensors', () => {
  const w = Tensor.from('float32', [2, 3], [1, -2.5, 3, 4, 5e-8, -6]);
  const ids = Tensor.from('int64', [3], [-1, 2 ** 40, 7]);
  const half = Tensor.from('float16', [2], [0.1, -65504]);
  const bf = Tensor.from('bfloat16', [1], [3.14159]);
  const mask = Tensor.from('bool', [4], [1, 0, 0, 1]);
  const i8 = Tensor.from('int8', [2], [-128, 127]);

  it('writes the documented layout: u64 header length, sorted JSON header padded to 8, contiguous data', () => {
    const bytes = file([{ name: 'b', tensor: ids }, { name: 'a', tensor: w }], { format: 'pt' });
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"I64","shape":[3],"data_offsets":[24,48]}}',
    );
    expect(bytes.length).toBe(8 + n + 48);
    // a's first float is 1.0 little-endian right after the header.
    expect(new DataView(bytes.buffer, bytes.byteOffset + 8 + n).getFloat32(0, true)).toBe(1);
    expect(new DataView(bytes.buffer, bytes.byteOffset + 8 + n + 24).getBigInt64(8, true)).toBe(2n ** 40n);
  });

  it('parses back every dtype exactly', () => {
    const all = { w, ids, half, bf, mask, i8, empty: Tensor.zeros('float32', [0, 4]), s: Tensor.scalar('int32', -7) };
    const parsed = parseSafetensors(file(Object.entries(all).map(([name, tensor]) => ({ name, tensor })), { device: '3' }));
    expect(parsed.metadata).toEqual({ device: '3' });
    expect(parsed.entries.map((e) => e.name)).toEqual(['bf', 'empty', 'half', 'i8', 'ids', 'mask', 's', 'w']);
    for (const [name, t] of Object.entries(all)) {
      const back = parsed.tensor(name);
      expect(back.dtype).toBe(t.dtype);
      expect(back.shape).toEqual(t.shape);
      expect(Array.from(back.data)).toEqual(Array.from(t.data));
    }
    expect(parsed.tensor('half').toArray()).toEqual([0.0999755859375, -65504]);
  });

  it('is byte-identical whatever the input order', () => {
    const a = file([{ name: 'x', tensor: w }, { name: 'y', tensor: ids }]);
    const b = file([{ name: 'y', tensor: ids }, { name: 'x', tensor: w }]);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('rejects malformed files with a UserError', () => {
    const good = file([{ name: 'w', tensor: w }]);
    expect(() => parseSafetensors(good.subarray(0, 5))).toThrow(UserError);
    expect(() => parseSafetensors(good.subarray(0, good.length - 1))).toThrow(/data_offsets|hole|exceeds/);
    const extra = new Uint8Array(good.length + 4);
    extra.set(good);
    expect(() => parseSafetensors(extra)).toThrow(/bytes after the last tensor/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => parseSafetensors(huge)).toThrow(/header length/);
    const badDtype = good.slice();
    const at = Buffer.from(badDtype).indexOf('"F32"');
    badDtype.set(new TextEncoder().encode('"F99"'), at);
    expect(() => parseSafetensors(badDtype)).toThrow(/unsupported dtype "F99"/);
  });
});
