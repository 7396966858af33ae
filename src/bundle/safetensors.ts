/**
 * The safetensors format (https://github.com/huggingface/safetensors), written here rather than
 * through an npm package: the only `safetensors` package on npm is a 0.0.1 release, and the format
 * is small. A file is
 *   8 bytes    header length N, unsigned 64-bit little-endian
 *   N bytes    UTF-8 JSON: {"__metadata__": {string: string}, name: {dtype, shape, data_offsets}}
 *              padded with spaces so the data starts at a multiple of 8
 *   data       each tensor's little-endian bytes; data_offsets [begin, end) are relative to the
 *              start of the data, tensors are contiguous (no holes, no overlap)
 * We write `__metadata__` first and the tensors sorted by name (code-unit order) in both the header
 * and the data, so the same tensors always give the same bytes. int64 values are exact up to 2^53
 * (the IR's storage, see src/ir/dtype.ts).
 */
import type { DType } from '../ir/dtype.js';
import { dtypeBytes } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { decodeRaw, encodeRaw } from '../onnx/tensor-file.js';
import { compareCodeUnits, utf8 } from './canonical.js';

export type NumericDType = Exclude<DType, 'string'>;

export const SAFETENSORS_DTYPE: Readonly<Record<NumericDType, string>> = {
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  float64: 'F64',
  int8: 'I8',
  int16: 'I16',
  int32: 'I32',
  int64: 'I64',
  uint8: 'U8',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  bool: 'BOOL',
};

const FROM_SAFETENSORS = new Map<string, NumericDType>(Object.entries(SAFETENSORS_DTYPE).map(([d, s]) => [s, d as NumericDType]));

/** Largest header we accept when reading (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  name: string;
  dtype: NumericDType;
  shape: number[];
  /** Byte range in the FILE (header included), ready for ONNX external data references. */
  offset: number;
  length: number;
}

export interface EncodedSafetensors {
  /** The file, in pieces (header, then one piece per tensor): write them in order. */
  parts: Uint8Array[];
  byteLength: number;
  /** Entries in file order (sorted by name). */
  entries: SafetensorsEntry[];
}

/** One tensor to store: its little-endian bytes (as ONNX raw_data and encodeRaw lay them out). */
export interface SafetensorsItem {
  name: string;
  dtype: NumericDType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Encodes named tensors (names unique, numeric dtypes) with string metadata. */
export function encodeSafetensors(tensors: readonly { name: string; tensor: Tensor }[], metadata: Readonly<Record<string, string>> = {}): EncodedSafetensors {
  return encodeSafetensorsRaw(
    tensors.map(({ name, tensor }) => {
      if (tensor.dtype === 'string') throw new Error(`tensor ${JSON.stringify(name)}: safetensors has no string dtype`);
      return { name, dtype: tensor.dtype, shape: tensor.shape, bytes: encodeRaw(tensor) };
    }),
    metadata,
  );
}

/** Encodes tensors given as raw bytes. */
export function encodeSafetensorsRaw(items: readonly SafetensorsItem[], metadata: Readonly<Record<string, string>> = {}): EncodedSafetensors {
  const sorted = items.slice().sort((a, b) => compareCodeUnits(a.name, b.name));
  const header: Record<string, unknown> = {};
  const meta: Record<string, string> = {};
  for (const k of Object.keys(metadata).sort(compareCodeUnits)) meta[k] = metadata[k]!;
  header['__metadata__'] = meta;
  const ranges: [number, number][] = [];
  let end = 0;
  for (const [i, it] of sorted.entries()) {
    if (it.name === '__metadata__') throw new Error('a tensor cannot be named __metadata__');
    if (i > 0 && sorted[i - 1]!.name === it.name) throw new Error(`tensor ${JSON.stringify(it.name)} is given twice`);
    const want = it.shape.reduce((a, b) => a * b, 1) * dtypeBytes(it.dtype);
    if (it.bytes.length !== want) throw new Error(`tensor ${JSON.stringify(it.name)}: ${it.bytes.length} bytes for ${it.dtype}[${it.shape.join(',')}]`);
    header[it.name] = { dtype: SAFETENSORS_DTYPE[it.dtype], shape: it.shape.slice(), data_offsets: [end, end + want] };
    ranges.push([end, end + want]);
    end += want;
  }
  let json = JSON.stringify(header);
  const pad = (8 - ((8 + utf8(json).length) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = utf8(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const dataStart = 8 + headerBytes.length;
  const entries: SafetensorsEntry[] = sorted.map((it, i) => ({
    name: it.name,
    dtype: it.dtype,
    shape: it.shape.slice(),
    offset: dataStart + ranges[i]![0],
    length: ranges[i]![1] - ranges[i]![0],
  }));
  return { parts: [prefix, headerBytes, ...sorted.map((it) => it.bytes)], byteLength: dataStart + end, entries };
}

/** Concatenates encoded parts (tests, small files). */
export function concatParts(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface ParsedSafetensors {
  metadata: Record<string, string>;
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  /** Decodes one tensor. */
  tensor(name: string): Tensor;
}

/** Parses and validates a safetensors file held in memory; malformed files are UserErrors naming `file`. */
export function parseSafetensors(bytes: Uint8Array, file = 'weights.safetensors'): ParsedSafetensors {
  const bad = (reason: string, tensor?: string): UserError => new UserError(`not a valid safetensors file: ${reason}`, { file, tensor });
  if (bytes.length < 8) throw bad('shorter than its 8-byte header length');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES || 8 + n > bytes.length) throw bad(`header length ${n} exceeds the file`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad('header is not UTF-8 JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = typeof e?.dtype === 'string' ? FROM_SAFETENSORS.get(e.dtype) : undefined;
    if (!dtype) throw bad(`unsupported dtype ${JSON.stringify(e?.dtype)}`, name);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad('shape is not a list of non-negative integers', name);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[0] > offs[1] || offs[1] > dataLength)
      throw bad('data_offsets are not a range inside the data', name);
    const shape = e.shape as number[];
    const want = shape.reduce((a, b) => a * b, 1) * dtypeBytes(dtype);
    if (offs[1] - offs[0] !== want) throw bad(`holds ${offs[1] - offs[0]} bytes but ${dtype}[${shape.join(',')}] needs ${want}`, name);
    entries.push({ name, dtype, shape, offset: dataStart + offs[0], length: want });
  }
  // No holes and no overlaps: sorted by offset, the ranges tile the data exactly.
  const byOffset = entries.slice().sort((a, b) => a.offset - b.offset || a.length - b.length);
  let at = dataStart;
  for (const e of byOffset) {
    if (e.offset !== at) throw bad(e.offset < at ? 'tensors overlap' : 'the data has a hole', e.name);
    at += e.length;
  }
  if (at !== bytes.length) throw bad('bytes after the last tensor');
  const byName = new Map(entries.map((e) => [e.name, e]));
  return {
    metadata,
    entries,
    tensor(name: string): Tensor {
      const e = byName.get(name);
      if (!e) throw new UserError(`no tensor ${JSON.stringify(name)} in the safetensors file`, { file });
      const count = e.shape.reduce((a, b) => a * b, 1);
      return new Tensor(e.dtype, e.shape, decodeRaw(e.dtype, count, bytes.subarray(e.offset, e.offset + e.length)));
    },
  };
}
