/**
 * numpy `.npy` files (format versions 1–3): little- or big-endian numbers, bool, fixed-width
 * unicode strings (`<U8`), C or Fortran order on read; C order, little-endian on write.
 * bfloat16 has no numpy dtype and cannot be written here (use a TensorProto `.pb` file).
 */
import { type DType, allocStorage, f16BitsToF32, f32ToF16Bits } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { numel, stridesOf } from '../ir/shape.js';
import { Tensor } from '../ir/tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const KIND_TO_DTYPE: Record<string, DType> = {
  f2: 'float16', f4: 'float32', f8: 'float64',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  b1: 'bool',
};

const DTYPE_TO_KIND: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(KIND_TO_DTYPE).map(([k, d]) => [d, k]));

interface Header {
  descr: string;
  fortran: boolean;
  shape: number[];
}

function parseHeader(text: string, file: string): Header {
  const bad = (what: string): never => {
    throw new UserError(`not a valid .npy file (${what} in header ${JSON.stringify(text.trim().slice(0, 120))})`, { file });
  };
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text)?.[1] ?? bad('no descr');
  const fo = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1] ?? bad('no fortran_order');
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1] ?? bad('no shape');
  const shape: number[] = [];
  for (const part of shapeText.split(',')) {
    const s = part.trim().replace(/L$/, '');
    if (s === '') continue;
    if (!/^\d+$/.test(s)) bad(`invalid dimension ${JSON.stringify(s)}`);
    const d = Number(s);
    if (!Number.isSafeInteger(d)) bad(`dimension ${s} too large`);
    shape.push(d);
  }
  return { descr, fortran: fo === 'True', shape };
}

/** Decodes a `.npy` file. */
export function readNpy(bytes: Uint8Array, file: string): Tensor {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new UserError('not a valid .npy file (bad magic)', { file });
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new UserError('not a valid .npy file (truncated header)', { file });
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else throw new UserError(`unsupported .npy format version ${major}`, { file });
  if (start + headerLen > bytes.length) throw new UserError('not a valid .npy file (truncated header)', { file });
  const header = parseHeader(new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen)), file);
  const body = bytes.subarray(start + headerLen);
  const n = numel(header.shape);
  if (!Number.isSafeInteger(n)) throw new UserError(`shape (${header.shape}) is too large`, { file });

  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(header.descr);
  if (!m) throw new UserError(`unsupported .npy dtype ${JSON.stringify(header.descr)}`, { file });
  const little = m[1] !== '>';
  const kind = m[2]!;
  const width = Number(m[3]);
  let values: Tensor;
  if (kind === 'U') {
    if (body.length < n * width * 4) throw new UserError(`data holds ${body.length} bytes, shape needs ${n * width * 4}`, { file });
    const bdv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let c = 0; c < width; c++) {
        const cp = bdv.getUint32((i * width + c) * 4, little);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      out.push(s);
    }
    values = new Tensor('string', header.shape, out);
  } else {
    const dtype = KIND_TO_DTYPE[`${kind}${width}`];
    if (!dtype) throw new UserError(`unsupported .npy dtype ${JSON.stringify(header.descr)}`, { file });
    if (body.length < n * width) throw new UserError(`data holds ${body.length} bytes, shape (${header.shape}) of ${header.descr} needs ${n * width}`, { file });
    const bdv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const out = allocStorage(dtype, n);
    const get = readerFor(dtype, bdv, little);
    for (let i = 0; i < n; i++) out[i] = get(i);
    values = new Tensor(dtype, header.shape, out);
  }
  return header.fortran ? fromFortran(values) : values;
}

function readerFor(dtype: DType, dv: DataView, le: boolean): (i: number) => number {
  switch (dtype) {
    case 'float16': return (i) => f16BitsToF32(dv.getUint16(i * 2, le));
    case 'float32': return (i) => dv.getFloat32(i * 4, le);
    case 'float64': return (i) => dv.getFloat64(i * 8, le);
    case 'int8': return (i) => dv.getInt8(i);
    case 'int16': return (i) => dv.getInt16(i * 2, le);
    case 'int32': return (i) => dv.getInt32(i * 4, le);
    case 'int64': return (i) => Number(dv.getBigInt64(i * 8, le));
    case 'uint8': return (i) => dv.getUint8(i);
    case 'uint16': return (i) => dv.getUint16(i * 2, le);
    case 'uint32': return (i) => dv.getUint32(i * 4, le);
    case 'uint64': return (i) => Number(dv.getBigUint64(i * 8, le));
    case 'bool': return (i) => (dv.getUint8(i) ? 1 : 0);
    default: throw new Error(`no npy reader for ${dtype}`);
  }
}

/** Fortran-ordered storage → row-major. */
function fromFortran(t: Tensor): Tensor {
  const shape = t.shape;
  const rank = shape.length;
  if (rank < 2) return t;
  const n = t.size;
  // Fortran strides: first dim fastest.
  const fStrides = new Array<number>(rank);
  let acc = 1;
  for (let d = 0; d < rank; d++) {
    fStrides[d] = acc;
    acc *= shape[d]!;
  }
  const cStrides = stridesOf(shape);
  const src = t.strings ?? t.data;
  const dst: (number | string)[] | ReturnType<typeof allocStorage> = t.strings ? new Array<string>(n) : allocStorage(t.dtype, n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let off = 0;
    for (let d = 0; d < rank; d++) {
      const idx = Math.floor(rem / cStrides[d]!);
      rem -= idx * cStrides[d]!;
      off += idx * fStrides[d]!;
    }
    (dst as unknown as (number | string)[])[i] = (src as ArrayLike<number | string>)[off]!;
  }
  return new Tensor(t.dtype, shape, dst as never);
}

/** Encodes `t` as a version 1 `.npy` file (C order, little-endian). */
export function writeNpy(t: Tensor, file: string): Uint8Array {
  let descr: string;
  let width: number;
  let maxLen = 0;
  if (t.dtype === 'string') {
    const strs = (t.strings ?? []).map((s) => Array.from(s));
    for (const s of strs) maxLen = Math.max(maxLen, s.length);
    maxLen = Math.max(maxLen, 1);
    descr = `<U${maxLen}`;
    width = maxLen * 4;
  } else {
    const kind = DTYPE_TO_KIND[t.dtype];
    if (!kind) throw new UserError(`${t.dtype} tensors cannot be written as .npy (numpy has no such dtype); use a .pb file`, { file });
    descr = kind === 'b1' || kind.endsWith('1') ? `|${kind}` : `<${kind}`;
    width = Number(kind.slice(1));
  }
  const shapeText = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const n = t.size;
  const out = new Uint8Array(10 + header.length + n * width);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  dv.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const base = 10 + header.length;
  const d = t.data;
  switch (t.dtype) {
    case 'string': {
      const strs = t.strings ?? [];
      for (let i = 0; i < n; i++) {
        const cps = Array.from(strs[i]!);
        cps.forEach((c, k) => dv.setUint32(base + (i * maxLen + k) * 4, c.codePointAt(0)!, true));
      }
      break;
    }
    case 'float16': for (let i = 0; i < n; i++) dv.setUint16(base + i * 2, f32ToF16Bits(d[i]!), true); break;
    case 'float32': for (let i = 0; i < n; i++) dv.setFloat32(base + i * 4, d[i]!, true); break;
    case 'float64': for (let i = 0; i < n; i++) dv.setFloat64(base + i * 8, d[i]!, true); break;
    case 'int8': for (let i = 0; i < n; i++) dv.setInt8(base + i, d[i]!); break;
    case 'int16': for (let i = 0; i < n; i++) dv.setInt16(base + i * 2, d[i]!, true); break;
    case 'int32': for (let i = 0; i < n; i++) dv.setInt32(base + i * 4, d[i]!, true); break;
    case 'int64': for (let i = 0; i < n; i++) dv.setBigInt64(base + i * 8, BigInt.asIntN(64, BigInt(Math.trunc(d[i]! || 0))), true); break;
    case 'uint8': for (let i = 0; i < n; i++) dv.setUint8(base + i, d[i]!); break;
    case 'uint16': for (let i = 0; i < n; i++) dv.setUint16(base + i * 2, d[i]!, true); break;
    case 'uint32': for (let i = 0; i < n; i++) dv.setUint32(base + i * 4, d[i]!, true); break;
    case 'uint64': for (let i = 0; i < n; i++) dv.setBigUint64(base + i * 8, BigInt.asUintN(64, BigInt(Math.trunc(d[i]! || 0))), true); break;
    case 'bool': for (let i = 0; i < n; i++) dv.setUint8(base + i, d[i] ? 1 : 0); break;
    default: throw new Error(`no npy writer for ${t.dtype}`);
  }
  return out;
}
