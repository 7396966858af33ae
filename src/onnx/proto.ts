/**
 * Protobuf decoding of ONNX files, behind a guard.
 *
 * onnx-proto's generated decoder recurses once per nested message without a limit and trusts
 * the wire types it meets, so a crafted file (a thousand nested If subgraphs, or bytes whose
 * wire types disagree with the schema) could overflow the stack or send it reading garbage.
 * Before decoding we therefore walk the wire format ITERATIVELY against a table of the ONNX
 * schema (the same schema version as onnx-proto: every field the generated decoder reads, with
 * its wire type), and reject:
 * - truncated or malformed varints, lengths past the end of the enclosing message, field 0,
 *   group wire types (never used by ONNX), a known field with a wire type the decoder would
 *   misread;
 * - nesting deeper than `maxDepth` levels, where a level is a GraphProto (the main graph is level
 *   1, each subgraph adds one) or a TypeProto (sequence/map/optional types nest).
 * After a successful scan the decoder reads exactly the structure the scan saw; any error it still
 * throws is reported as a UserError too.
 */
import onnxProto from 'onnx-proto';
import { UserError } from '../ir/errors.js';

const { onnx } = onnxProto;
export { onnx };
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type TypeProto = onnxProto.onnx.ITypeProto;

export const DEFAULT_MAX_DEPTH = 100;

/** Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
type Field =
  | { kind: 'msg'; type: MsgType } // length-delimited sub-message
  | { kind: 'wire'; wire: number } // scalar or string with exactly this wire type
  | { kind: 'packed'; wire: number }; // repeated number: packed (2) or one element (wire)

type MsgType =
  | 'Model' | 'OpsetId' | 'StrStr' | 'TrainingInfo' | 'Function' | 'Graph' | 'TensorAnnotation' | 'Node'
  | 'Attribute' | 'ValueInfo' | 'Tensor' | 'Segment' | 'Sparse' | 'TensorShape' | 'Dim' | 'Type'
  | 'TypeTensor' | 'TypeSeq' | 'TypeMap' | 'TypeOpt' | 'TypeSparse';

const m = (type: MsgType): Field => ({ kind: 'msg', type });
const V: Field = { kind: 'wire', wire: 0 };
const S: Field = { kind: 'wire', wire: 2 };
const F32: Field = { kind: 'wire', wire: 5 };
const PV: Field = { kind: 'packed', wire: 0 };
const PF32: Field = { kind: 'packed', wire: 5 };
const PF64: Field = { kind: 'packed', wire: 1 };

/** The fields onnx-proto (ONNX 1.10 schema) decodes, by message. Unknown fields are skipped. */
const SCHEMA: Record<MsgType, Record<number, Field>> = {
  Model: { 1: V, 2: S, 3: S, 4: S, 5: V, 6: S, 7: m('Graph'), 8: m('OpsetId'), 14: m('StrStr'), 20: m('TrainingInfo'), 25: m('Function') },
  OpsetId: { 1: S, 2: V },
  StrStr: { 1: S, 2: S },
  TrainingInfo: { 1: m('Graph'), 2: m('Graph'), 3: m('StrStr'), 4: m('StrStr') },
  Function: { 1: S, 4: S, 5: S, 6: S, 7: m('Node'), 8: S, 9: m('OpsetId'), 10: S },
  Graph: { 1: m('Node'), 2: S, 5: m('Tensor'), 10: S, 11: m('ValueInfo'), 12: m('ValueInfo'), 13: m('ValueInfo'), 14: m('TensorAnnotation'), 15: m('Sparse') },
  TensorAnnotation: { 1: S, 2: m('StrStr') },
  Node: { 1: S, 2: S, 3: S, 4: S, 5: m('Attribute'), 6: S, 7: S },
  Attribute: {
    1: S, 2: F32, 3: V, 4: S, 5: m('Tensor'), 6: m('Graph'), 7: PF32, 8: PV, 9: S, 10: m('Tensor'), 11: m('Graph'),
    13: S, 14: m('Type'), 15: m('Type'), 20: V, 21: S, 22: m('Sparse'), 23: m('Sparse'),
  },
  ValueInfo: { 1: S, 2: m('Type'), 3: S },
  Tensor: { 1: PV, 2: V, 3: m('Segment'), 4: PF32, 5: PV, 6: S, 7: PV, 8: S, 9: S, 10: PF64, 11: PV, 12: S, 13: m('StrStr'), 14: V },
  Segment: { 1: V, 2: V },
  Sparse: { 1: m('Tensor'), 2: m('Tensor'), 3: PV },
  TensorShape: { 1: m('Dim') },
  Dim: { 1: V, 2: S, 3: S },
  Type: { 1: m('TypeTensor'), 4: m('TypeSeq'), 5: m('TypeMap'), 6: S, 8: m('TypeSparse'), 9: m('TypeOpt') },
  TypeTensor: { 1: V, 2: m('TensorShape') },
  TypeSeq: { 1: m('Type') },
  TypeMap: { 1: V, 2: m('Type') },
  TypeOpt: { 1: m('Type') },
  TypeSparse: { 1: V, 2: m('TensorShape') },
};

/** Messages that count as one nesting level. */
const LEVEL: ReadonlySet<MsgType> = new Set<MsgType>(['Graph', 'Type']);

const MSG_NAMES: Record<MsgType, string> = {
  Model: 'ModelProto', OpsetId: 'OperatorSetIdProto', StrStr: 'StringStringEntryProto', TrainingInfo: 'TrainingInfoProto',
  Function: 'FunctionProto', Graph: 'GraphProto', TensorAnnotation: 'TensorAnnotation', Node: 'NodeProto',
  Attribute: 'AttributeProto', ValueInfo: 'ValueInfoProto', Tensor: 'TensorProto', Segment: 'TensorProto.Segment',
  Sparse: 'SparseTensorProto', TensorShape: 'TensorShapeProto', Dim: 'TensorShapeProto.Dimension', Type: 'TypeProto',
  TypeTensor: 'TypeProto.Tensor', TypeSeq: 'TypeProto.Sequence', TypeMap: 'TypeProto.Map', TypeOpt: 'TypeProto.Optional',
  TypeSparse: 'TypeProto.SparseTensor',
};

export interface GuardOptions {
  file: string;
  maxDepth?: number;
  /** What the bytes should hold, for messages ("ONNX model", "tensor file"). */
  what?: string;
}

/**
 * Walks `bytes` as a `root` message without recursion; throws a UserError naming the file and
 * the reason when the wire format is malformed or nested deeper than `maxDepth`.
 */
export function guardWireFormat(bytes: Uint8Array, root: 'Model' | 'Tensor', opts: GuardOptions): void {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const what = opts.what ?? (root === 'Model' ? 'ONNX model' : 'TensorProto');
  const fail = (reason: string, at: number): never => {
    throw new UserError(`not a valid ${what} (${reason} at byte ${at})`, { file: opts.file });
  };
  if (bytes.length === 0) throw new UserError(`not a valid ${what} (the file is empty)`, { file: opts.file });

  // Explicit stack of open messages: type and end offset.
  const types: MsgType[] = [root];
  const ends: number[] = [bytes.length];
  let level = LEVEL.has(root) ? 1 : 0;
  let pos = 0;

  const varint = (): number => {
    // Value as a double (exact below 2^53; only compared against small bounds otherwise).
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) fail('truncated varint', pos);
      const b = bytes[pos++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return v;
    }
    return fail('varint longer than 10 bytes', pos);
  };

  while (types.length > 0) {
    const end = ends[ends.length - 1]!;
    if (pos === end) {
      const t = types.pop()!;
      ends.pop();
      if (LEVEL.has(t)) level--;
      continue;
    }
    const type = types[types.length - 1]!;
    const tagAt = pos;
    const tag = varint();
    if (pos > end) fail(`field tag runs past the end of ${MSG_NAMES[type]}`, tagAt);
    if (tag >= 2 ** 32) fail('field tag out of range', tagAt);
    const fieldNo = Math.floor(tag / 8);
    const wire = tag % 8;
    if (fieldNo === 0) fail(`field number 0 in ${MSG_NAMES[type]}`, tagAt);
    const field = SCHEMA[type][fieldNo];
    if (field && field.kind === 'msg' && wire !== 2) fail(`field ${fieldNo} of ${MSG_NAMES[type]} must be a message`, tagAt);
    if (field && field.kind === 'wire' && wire !== field.wire)
      fail(`field ${fieldNo} of ${MSG_NAMES[type]} has wire type ${wire}, expected ${field.wire}`, tagAt);
    if (field && field.kind === 'packed' && wire !== 2 && wire !== field.wire)
      fail(`field ${fieldNo} of ${MSG_NAMES[type]} has wire type ${wire}, expected ${field.wire} or 2`, tagAt);
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const lenAt = pos;
        const len = varint();
        if (len >= 2 ** 31 || pos + len > end) fail(`length ${len} runs past the end of ${MSG_NAMES[type]}`, lenAt);
        if (field?.kind === 'msg') {
          const child = field.type;
          if (LEVEL.has(child)) {
            level++;
            if (level > maxDepth)
              throw new UserError(
                `${what} nests ${MSG_NAMES[child]} deeper than ${maxDepth} levels (subgraphs or nested types); refusing to decode it`,
                { file: opts.file },
              );
          }
          types.push(child);
          ends.push(pos + len);
        } else {
          pos += len;
        }
        break;
      }
      default:
        fail(`unsupported wire type ${wire} (field ${fieldNo} of ${MSG_NAMES[type]})`, tagAt);
    }
    if (pos > end) fail(`field ${fieldNo} runs past the end of ${MSG_NAMES[type]}`, tagAt);
  }
}

function decodeGuarded<T>(bytes: Uint8Array, what: string, file: string, decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = e instanceof RangeError ? 'nesting too deep' : e instanceof Error ? e.message : String(e);
    throw new UserError(`not a valid ${what} (${msg})`, { file });
  }
}

/** Guards then decodes an ONNX ModelProto. */
export function decodeModelProto(bytes: Uint8Array, opts: GuardOptions): ModelProto {
  guardWireFormat(bytes, 'Model', opts);
  return decodeGuarded(bytes, 'ONNX model', opts.file, () => onnx.ModelProto.decode(bytes));
}

/** Guards then decodes a serialized TensorProto. */
export function decodeTensorProtoMessage(bytes: Uint8Array, opts: GuardOptions): onnxProto.onnx.TensorProto {
  guardWireFormat(bytes, 'Tensor', { ...opts, what: opts.what ?? 'TensorProto' });
  return decodeGuarded(bytes, 'TensorProto', opts.file, () => onnx.TensorProto.decode(bytes));
}

/** A protobufjs int64 (number or Long-like {low, high, unsigned}) as a JS number. */
export function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number; unsigned?: boolean; toNumber?: () => number };
    if (typeof l.toNumber === 'function') return l.toNumber();
    return l.unsigned ? (l.high >>> 0) * 2 ** 32 + (l.low >>> 0) : l.high * 2 ** 32 + (l.low >>> 0);
  }
  if (v === undefined || v === null) return 0;
  return Number(v);
}

/** An int64 field that is exact (|v| ≤ 2^53), else a UserError. */
export function toSafeInt(v: unknown, what: string, loc: { file?: string; node?: string; tensor?: string }): number {
  const n = toNum(v);
  if (!Number.isSafeInteger(n)) throw new UserError(`${what} ${n} is not an integer within ±2^53`, loc);
  return n;
}

/** True when a protobufjs message has the field set explicitly (not the prototype default). */
export function hasField(msg: object | null | undefined, key: string): boolean {
  return !!msg && Object.prototype.hasOwnProperty.call(msg, key) && (msg as Record<string, unknown>)[key] != null;
}

const utf8 = new TextDecoder('utf-8');
export const bytesToString = (b: Uint8Array | string | null | undefined): string =>
  b == null ? '' : typeof b === 'string' ? b : utf8.decode(b);
