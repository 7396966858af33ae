/** The text printer (text.ts documents the format). */
import type { Attr } from './attrs.js';
import { type DType, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from './dtype.js';
import { DEFAULT_DOMAIN, type Graph, type Node, type Value } from './graph.js';
import { formatLayout } from './layout.js';
import type { Dim, Shape } from './shape.js';
import type { LazyTensor, Tensor } from './tensor.js';
import { DEFAULT_OPSETS, KEYWORDS, PLAIN_DIM, PLAIN_DOMAIN, PLAIN_NAME, PLAIN_WORD, type PrintOptions, elided } from './text-common.js';

const quoteIf = (s: string, plain: RegExp): string => (plain.test(s) && !KEYWORDS.has(s) ? s : JSON.stringify(s));
const valueRef = (v: Value): string => `%${quoteIf(v.name, PLAIN_NAME)}`;

function formatDim(d: Dim): string {
  if (typeof d === 'number') return String(d);
  return PLAIN_DIM.test(d) ? d : JSON.stringify(d);
}

export function formatType(dtype: DType | undefined, shape: Shape | undefined): string {
  const dims = shape ? `[${shape.map(formatDim).join(',')}]` : dtype ? '[*]' : '';
  return `${dtype ?? '?'}${dims}`;
}

function roundFloat(dtype: DType, x: number): number {
  if (dtype === 'float16') return f16BitsToF32(f32ToF16Bits(x));
  if (dtype === 'bfloat16') return bf16BitsToF32(f32ToBf16Bits(x));
  if (dtype === 'float64') return x;
  return Math.fround(x);
}

/** Shortest decimal that reads back (after rounding to `dtype`) as exactly `x`. */
function formatNumber(x: number, dtype: DType): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') return String(x);
  for (let p = 1; p <= 17; p++) {
    const y = Number(x.toPrecision(p));
    if (roundFloat(dtype, y) === x) return String(y);
  }
  return String(x);
}

/** A float attribute: always recognisable as a float (has '.', an exponent, or is nan/inf). */
function formatFloatAttr(x: number): string {
  const s = formatNumber(Math.fround(x), 'float32');
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function hashTensor(t: Tensor): string {
  if (t.strings) return fnv1a(new TextEncoder().encode(JSON.stringify(t.strings)));
  return fnv1a(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function formatLiteral(lt: LazyTensor, opts: Required<PrintOptions>): string {
  const summary = elided.get(lt);
  if (summary !== undefined) return `<elided ${summary}>`;
  if (lt.location.kind === 'external') {
    const { path, offset, length } = lt.location;
    return `<external ${JSON.stringify(path)}@${offset}+${length}>`;
  }
  const t = lt.load();
  if (t.size > opts.maxInlineElements) return `<elided fnv1a:${hashTensor(t)}>`;
  if (t.strings) return `[${t.strings.map((s) => JSON.stringify(s)).join(', ')}]`;
  const parts: string[] = new Array(t.size);
  for (let i = 0; i < t.size; i++) parts[i] = formatNumber(t.data[i]!, t.dtype);
  return `[${parts.join(', ')}]`;
}

function formatKv(entries: [string, string][]): string {
  return `{${entries.map(([k, v]) => `${quoteIf(k, PLAIN_NAME)}=${JSON.stringify(v)}`).join(', ')}}`;
}

function sortedMeta(m: ReadonlyMap<string, string>): [string, string][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `type [= literal] [layout {...}] [meta {...}]` */
function formatValueInfo(v: Value, opts: Required<PrintOptions>, literal: boolean): string {
  let s = formatType(v.dtype, v.shape);
  if (literal && v.constant) s += ` = ${formatLiteral(v.constant, opts)}`;
  if (v.layout) s += ` layout ${formatLayout(v.layout)}`;
  if (v.meta.size) s += ` meta ${formatKv(sortedMeta(v.meta))}`;
  return s;
}

function formatAttr(a: Attr, opts: Required<PrintOptions>, indent: string): string {
  switch (a.kind) {
    case 'int':
      return String(a.value);
    case 'float':
      return formatFloatAttr(a.value);
    case 'string':
      return JSON.stringify(a.value);
    case 'ints':
      return a.value.length ? `[${a.value.map(String).join(', ')}]` : 'ints[]';
    case 'floats':
      return a.value.length ? `[${a.value.map(formatFloatAttr).join(', ')}]` : 'floats[]';
    case 'strings':
      return a.value.length ? `[${a.value.map((s) => JSON.stringify(s)).join(', ')}]` : 'strings[]';
    case 'tensor':
      return formatTensorAttr(a.value, opts);
    case 'tensors':
      return a.value.length ? `[${a.value.map((t) => formatTensorAttr(t, opts)).join(', ')}]` : 'tensors[]';
    case 'graph':
      return printGraphAt(a.value, opts, indent);
    case 'graphs':
      return a.value.length ? `[${a.value.map((g) => printGraphAt(g, opts, indent)).join(', ')}]` : 'graphs[]';
  }
}

function formatTensorAttr(lt: LazyTensor, opts: Required<PrintOptions>): string {
  return `tensor(${formatType(lt.dtype, [...lt.shape])} ${formatLiteral(lt, opts)})`;
}

function formatNode(n: Node, opts: Required<PrintOptions>, indent: string): string {
  let s = '';
  if (n.outputs.length) s += `${n.outputs.map(valueRef).join(', ')} = `;
  const op = quoteIf(n.op, PLAIN_WORD);
  s += n.domain === DEFAULT_DOMAIN ? op : `${quoteIf(n.domain, PLAIN_DOMAIN)}::${op}`;
  s += `(${n.inputs.map((v) => (v ? valueRef(v) : 'none')).join(', ')})`;
  const attrs = n.attrs.entries();
  if (attrs.length) s += ` {${attrs.map(([k, a]) => `${quoteIf(k, PLAIN_NAME)}=${formatAttr(a, opts, indent)}`).join(', ')}}`;
  if (n.name) s += ` @${quoteIf(n.name, PLAIN_NAME)}`;
  if (n.meta.size) s += ` meta ${formatKv(sortedMeta(n.meta))}`;
  if (n.outputs.length) s += ` : ${n.outputs.map((o) => formatValueInfo(o, opts, false)).join(', ')}`;
  return s;
}

function printGraphAt(g: Graph, opts: Required<PrintOptions>, indent: string): string {
  const inner = indent + '  ';
  const ins = g.inputs.map((v) => `${valueRef(v)}: ${formatValueInfo(v, opts, true)}`).join(', ');
  const lines = [`graph ${quoteIf(g.name, PLAIN_NAME)}(${ins}) -> (${g.outputs.map(valueRef).join(', ')}) {`];
  const opsets = Object.fromEntries(Object.entries(g.opsets).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  if (JSON.stringify(opsets) !== DEFAULT_OPSETS)
    lines.push(`${inner}opsets {${Object.entries(opsets).map(([d, v]) => `${JSON.stringify(d)}: ${v}`).join(', ')}}`);
  if (g.meta.size) lines.push(`${inner}meta ${formatKv(sortedMeta(g.meta))}`);
  const inputs = new Set(g.inputs);
  for (const c of g.initializers) {
    if (inputs.has(c)) continue; // an input's default value, printed with the input
    if (!c.constant) throw new Error(`initializer ${c.name} has no constant data`);
    let s = `${inner}${valueRef(c)} = const ${formatType(c.dtype ?? c.constant.dtype, c.shape ?? [...c.constant.shape])} ${formatLiteral(c.constant, opts)}`;
    if (c.layout) s += ` layout ${formatLayout(c.layout)}`;
    if (c.meta.size) s += ` meta ${formatKv(sortedMeta(c.meta))}`;
    lines.push(s);
  }
  for (const n of g.nodes) lines.push(inner + formatNode(n, opts, inner));
  lines.push(`${indent}}`);
  return lines.join('\n');
}

/** The text form of a graph (ends with a newline). */
export function printGraph(graph: Graph, options: PrintOptions = {}): string {
  const opts: Required<PrintOptions> = { maxInlineElements: options.maxInlineElements ?? 64 };
  return printGraphAt(graph, opts, '') + '\n';
}
