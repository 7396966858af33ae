/**
 * The text parser (text.ts documents the format): text → raw declarations (names unresolved) →
 * Graph (names resolved per scope, so a subgraph may use values of its enclosing graphs).
 */
import type { Attr } from './attrs.js';
import { Attrs } from './attrs.js';
import type { DType } from './dtype.js';
import { UserError } from './errors.js';
import { DEFAULT_DOMAIN, Graph, Node, Value } from './graph.js';
import { type Layout, parseLayout } from './layout.js';
import type { Dim, Shape } from './shape.js';
import { LazyTensor, Tensor } from './tensor.js';
import { DTYPES, type ParseOptions, elided } from './text-common.js';

interface RawValue {
  name: string;
  dtype?: DType;
  shape?: Shape;
  constant?: LazyTensor;
  layout?: Layout;
  meta: [string, string][];
}

type RawAttr = Attr | { kind: 'rawgraph'; value: RawGraph } | { kind: 'rawgraphs'; value: RawGraph[] };

interface RawNode {
  op: string;
  domain: string;
  name: string;
  inputs: (string | null)[];
  outputs: RawValue[];
  attrs: [string, RawAttr][];
  meta: [string, string][];
  at: number;
}

interface RawGraph {
  name: string;
  inputs: RawValue[];
  outputs: string[];
  opsets?: Record<string, number>;
  meta: [string, string][];
  consts: RawValue[];
  nodes: RawNode[];
  at: number;
}

class Cursor {
  pos = 0;
  constructor(
    readonly text: string,
    readonly file?: string,
  ) {}

  fail(msg: string, at = this.pos): never {
    const before = this.text.slice(0, at);
    const line = before.split('\n').length;
    const col = at - before.lastIndexOf('\n');
    throw new UserError(`line ${line}, column ${col}: ${msg}`, this.file !== undefined ? { file: this.file } : {});
  }

  skip(): void {
    const t = this.text;
    for (;;) {
      while (this.pos < t.length && /\s/.test(t[this.pos]!)) this.pos++;
      if (t.startsWith('//', this.pos)) {
        const nl = t.indexOf('\n', this.pos);
        this.pos = nl < 0 ? t.length : nl;
      } else return;
    }
  }

  atEnd(): boolean {
    this.skip();
    return this.pos >= this.text.length;
  }

  peek(s: string): boolean {
    this.skip();
    return this.text.startsWith(s, this.pos);
  }

  eat(s: string): boolean {
    if (!this.peek(s)) return false;
    this.pos += s.length;
    return true;
  }

  expect(s: string): void {
    if (!this.eat(s)) this.fail(`expected '${s}'`);
  }

  /** A token matching `re` (sticky) at the current position, or undefined. */
  match(re: RegExp): string | undefined {
    this.skip();
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }

  peekWord(w: string): boolean {
    this.skip();
    const save = this.pos;
    const got = this.match(/[A-Za-z_][A-Za-z0-9_]*/y);
    this.pos = save;
    return got === w;
  }

  eatWord(w: string): boolean {
    if (!this.peekWord(w)) return false;
    this.pos += w.length;
    return true;
  }

  string(): string {
    const s = this.match(/"(?:[^"\\\n]|\\.)*"/y);
    if (s === undefined) this.fail('expected a string');
    return JSON.parse(s) as string;
  }

  /** A plain name (per `plain`) or a JSON string. */
  name(plain: RegExp, what: string): string {
    if (this.peek('"')) return this.string();
    const s = this.match(plain);
    if (s === undefined) this.fail(`expected ${what}`);
    return s;
  }

  number(): number {
    const s = this.match(/-?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_])/y);
    if (s === undefined) this.fail('expected a number');
    return parseNumber(s);
  }
}

function parseNumber(s: string): number {
  if (s === 'nan' || s === '-nan') return NaN;
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  return Number(s);
}

const NAME_RE = /[A-Za-z0-9_.\-/]+/y;
const WORD_RE = /[A-Za-z_][A-Za-z0-9_]*/y;
const DOMAIN_RE = /[A-Za-z_][A-Za-z0-9_.]*/y;
const DIM_RE = /[A-Za-z0-9_.:*-]+/y;

function parseValueName(c: Cursor): string {
  c.expect('%');
  if (c.text[c.pos] === '"') return c.string();
  NAME_RE.lastIndex = c.pos;
  const m = NAME_RE.exec(c.text);
  if (!m) c.fail('expected a value name after %');
  c.pos += m[0].length;
  return m[0];
}

function parseType(c: Cursor): { dtype?: DType; shape?: Shape } {
  let dtype: DType | undefined;
  if (!c.eat('?')) {
    const w = c.match(WORD_RE);
    if (w === undefined || !DTYPES.has(w)) c.fail(`expected a dtype, got ${JSON.stringify(w ?? c.text.slice(c.pos, c.pos + 10))}`);
    dtype = w as DType;
  }
  if (c.text[c.pos] !== '[') return { dtype };
  c.pos++;
  if (c.eat('*')) {
    c.expect(']');
    return { dtype };
  }
  const shape: Dim[] = [];
  if (!c.eat(']')) {
    do {
      c.skip();
      if (c.peek('"')) shape.push(c.string());
      else {
        const d = c.match(DIM_RE);
        if (d === undefined) c.fail('expected a dim');
        shape.push(/^\d+$/.test(d) ? Number(d) : d);
      }
    } while (c.eat(','));
    c.expect(']');
  }
  return { dtype, shape };
}

function parseKv(c: Cursor): [string, string][] {
  c.expect('{');
  const out: [string, string][] = [];
  if (c.eat('}')) return out;
  do {
    const k = c.name(NAME_RE, 'a key');
    c.expect('=');
    out.push([k, c.string()]);
  } while (c.eat(','));
  c.expect('}');
  return out;
}

function parseLayoutText(c: Cursor): Layout {
  c.skip();
  const start = c.pos;
  const end = c.text.indexOf('}', start);
  if (c.text[start] !== '{' || end < 0) c.fail('expected a layout {axis: placement, ...}');
  c.pos = end + 1;
  try {
    return parseLayout(c.text.slice(start, end + 1));
  } catch (e) {
    return c.fail((e as Error).message, start);
  }
}

function staticShape(c: Cursor, shape: Shape | undefined, at: number): number[] {
  if (!shape || !shape.every((d): d is number => typeof d === 'number')) c.fail('a constant needs a static shape', at);
  return shape as number[];
}

function parseLiteral(c: Cursor, dtype: DType | undefined, shape: Shape | undefined, opts: ParseOptions): LazyTensor {
  const at = c.pos;
  if (!dtype) c.fail('a constant needs a dtype', at);
  const dims = staticShape(c, shape, at);
  const n = dims.reduce((a, b) => a * b, 1);
  if (c.eat('<')) {
    const kind = c.match(WORD_RE);
    if (kind === 'elided') {
      const summary = c.match(/[A-Za-z0-9_:]+/y);
      if (summary === undefined) c.fail('expected a hash after elided');
      c.expect('>');
      const lt = new LazyTensor(dtype, dims, { kind: 'inline' }, () => {
        throw new UserError('the data of this constant was elided from the text form');
      });
      elided.set(lt, summary);
      return lt;
    }
    if (kind === 'external') {
      const path = c.string();
      c.expect('@');
      const offset = c.number();
      c.expect('+');
      const length = c.number();
      c.expect('>');
      const loc = { kind: 'external' as const, path, offset, length };
      const load = opts.loadExternal;
      return new LazyTensor(dtype, dims, loc, () => {
        if (!load) throw new UserError(`external data ${JSON.stringify(path)} cannot be loaded from the text form`);
        return load(loc, dtype, dims);
      });
    }
    c.fail('expected elided or external');
  }
  c.expect('[');
  const strings: string[] = [];
  const nums: number[] = [];
  if (!c.eat(']')) {
    do {
      if (dtype === 'string') strings.push(c.string());
      else nums.push(c.number());
    } while (c.eat(','));
    c.expect(']');
  }
  const count = dtype === 'string' ? strings.length : nums.length;
  if (count !== n) c.fail(`constant has ${count} values but its shape [${dims}] needs ${n}`, at);
  return LazyTensor.of(dtype === 'string' ? new Tensor('string', dims, strings) : Tensor.from(dtype, dims, nums));
}

/** `type [= literal] [layout {...}] [meta {...}]` */
function parseValueInfo(c: Cursor, name: string, opts: ParseOptions, literal: boolean): RawValue {
  const v: RawValue = { name, ...parseType(c), meta: [] };
  if (literal && c.eat('=')) v.constant = parseLiteral(c, v.dtype, v.shape, opts);
  if (c.eatWord('layout')) v.layout = parseLayoutText(c);
  if (c.eatWord('meta')) v.meta = parseKv(c);
  return v;
}

function parseAttrValue(c: Cursor, opts: ParseOptions): RawAttr {
  if (c.peek('"')) return { kind: 'string', value: c.string() };
  for (const k of ['ints', 'floats', 'strings', 'tensors', 'graphs'] as const) {
    if (c.peekWord(k)) {
      c.eatWord(k);
      c.expect('[');
      c.expect(']');
      return k === 'graphs' ? { kind: 'rawgraphs', value: [] } : ({ kind: k, value: [] } as Attr);
    }
  }
  if (c.peekWord('tensor')) return { kind: 'tensor', value: parseTensorAttr(c, opts) };
  if (c.peekWord('graph')) return { kind: 'rawgraph', value: parseRawGraph(c, opts) };
  if (c.eat('[')) {
    if (c.peek('"')) {
      const value: string[] = [];
      do value.push(c.string());
      while (c.eat(','));
      c.expect(']');
      return { kind: 'strings', value };
    }
    if (c.peekWord('tensor')) {
      const value: LazyTensor[] = [];
      do value.push(parseTensorAttr(c, opts));
      while (c.eat(','));
      c.expect(']');
      return { kind: 'tensors', value };
    }
    if (c.peekWord('graph')) {
      const value: RawGraph[] = [];
      do value.push(parseRawGraph(c, opts));
      while (c.eat(','));
      c.expect(']');
      return { kind: 'rawgraphs', value };
    }
    if (c.peek(']')) c.fail('an empty list needs its kind: ints[], floats[], strings[], tensors[] or graphs[]');
    const texts: string[] = [];
    do {
      const s = c.match(/-?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_])/y);
      if (s === undefined) c.fail('expected a number');
      texts.push(s);
    } while (c.eat(','));
    c.expect(']');
    const isFloat = texts.some(looksFloat);
    return isFloat
      ? { kind: 'floats', value: texts.map((t) => Math.fround(parseNumber(t))) }
      : { kind: 'ints', value: texts.map(parseNumber) };
  }
  const s = c.match(/-?(?:inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_])/y);
  if (s === undefined) c.fail('expected an attribute value');
  return looksFloat(s) ? { kind: 'float', value: Math.fround(parseNumber(s)) } : { kind: 'int', value: parseNumber(s) };
}

const looksFloat = (s: string): boolean => /[.eEn]/.test(s);

function parseTensorAttr(c: Cursor, opts: ParseOptions): LazyTensor {
  c.eatWord('tensor');
  c.expect('(');
  const t = parseType(c);
  const lt = parseLiteral(c, t.dtype, t.shape, opts);
  c.expect(')');
  return lt;
}

function parseNodeRest(c: Cursor, outputs: string[], opts: ParseOptions, at: number): RawNode {
  let domain = DEFAULT_DOMAIN;
  let op: string;
  if (c.peek('"')) op = c.string();
  else op = c.name(DOMAIN_RE, 'an op name');
  if (c.eat('::')) {
    domain = op;
    op = c.name(WORD_RE, 'an op name');
  }
  c.expect('(');
  const inputs: (string | null)[] = [];
  if (!c.eat(')')) {
    do {
      if (c.eatWord('none')) inputs.push(null);
      else inputs.push(parseValueName(c));
    } while (c.eat(','));
    c.expect(')');
  }
  const attrs: [string, RawAttr][] = [];
  if (c.eat('{')) {
    if (!c.eat('}')) {
      do {
        const k = c.name(NAME_RE, 'an attribute name');
        c.expect('=');
        attrs.push([k, parseAttrValue(c, opts)]);
      } while (c.eat(','));
      c.expect('}');
    }
  }
  let name = '';
  if (c.eat('@')) name = c.name(NAME_RE, 'a node name');
  let meta: [string, string][] = [];
  if (c.eatWord('meta')) meta = parseKv(c);
  const outs: RawValue[] = outputs.map((o) => ({ name: o, meta: [] }));
  if (c.eat(':')) {
    for (let i = 0; i < outputs.length; i++) {
      if (i > 0) c.expect(',');
      outs[i] = parseValueInfo(c, outputs[i]!, opts, false);
    }
  }
  return { op, domain, name, inputs, outputs: outs, attrs, meta, at };
}

function parseRawGraph(c: Cursor, opts: ParseOptions): RawGraph {
  c.skip();
  const at = c.pos;
  if (!c.eatWord('graph')) c.fail("expected 'graph'");
  const name = c.name(NAME_RE, 'a graph name');
  const g: RawGraph = { name, inputs: [], outputs: [], meta: [], consts: [], nodes: [], at };
  c.expect('(');
  if (!c.eat(')')) {
    do {
      const vn = parseValueName(c);
      c.expect(':');
      g.inputs.push(parseValueInfo(c, vn, opts, true));
    } while (c.eat(','));
    c.expect(')');
  }
  c.expect('->');
  c.expect('(');
  if (!c.eat(')')) {
    do g.outputs.push(parseValueName(c));
    while (c.eat(','));
    c.expect(')');
  }
  c.expect('{');
  while (!c.eat('}')) {
    if (c.atEnd()) c.fail("expected '}' closing the graph");
    const stmt = c.pos;
    if (c.eatWord('opsets')) {
      c.expect('{');
      const opsets: Record<string, number> = {};
      if (!c.eat('}')) {
        do {
          const d = c.string();
          c.expect(':');
          opsets[d] = c.number();
        } while (c.eat(','));
        c.expect('}');
      }
      g.opsets = opsets;
    } else if (c.eatWord('meta')) {
      g.meta = parseKv(c);
    } else if (c.peek('%')) {
      const outs: string[] = [];
      do outs.push(parseValueName(c));
      while (c.eat(','));
      c.expect('=');
      if (outs.length === 1 && c.eatWord('const')) {
        const t = parseType(c);
        const v: RawValue = { name: outs[0]!, ...t, meta: [] };
        v.constant = parseLiteral(c, t.dtype, t.shape, opts);
        if (c.eatWord('layout')) v.layout = parseLayoutText(c);
        if (c.eatWord('meta')) v.meta = parseKv(c);
        g.consts.push(v);
      } else g.nodes.push(parseNodeRest(c, outs, opts, stmt));
    } else {
      g.nodes.push(parseNodeRest(c, [], opts, stmt));
    }
  }
  return g;
}

function makeValue(r: RawValue): Value {
  const v = new Value(r.name, r.dtype, r.shape);
  if (r.constant) v.constant = r.constant;
  if (r.layout) v.layout = r.layout;
  for (const [k, m] of r.meta) v.meta.set(k, m);
  return v;
}

type Scope = { local: Map<string, Value>; parent?: Scope };

function lookup(s: Scope | undefined, name: string): Value | undefined {
  for (; s; s = s.parent) {
    const v = s.local.get(name);
    if (v) return v;
  }
  return undefined;
}

function buildGraph(raw: RawGraph, c: Cursor, parent: Scope | undefined): Graph {
  const g = new Graph(raw.name);
  if (raw.opsets) g.opsets = raw.opsets;
  for (const [k, v] of raw.meta) g.meta.set(k, v);
  const scope: Scope = { local: new Map(), parent };
  const define = (v: Value, at: number): Value => {
    if (v.name === '') return v;
    if (scope.local.has(v.name)) c.fail(`value %${JSON.stringify(v.name)} is defined twice`, at);
    scope.local.set(v.name, v);
    return v;
  };
  g.inputs = raw.inputs.map((r) => define(makeValue(r), raw.at));
  // Inputs with a default value are initializers too (as the importer keeps them).
  g.initializers = [...g.inputs.filter((v) => v.constant), ...raw.consts.map((r) => define(makeValue(r), raw.at))];
  const outs = raw.nodes.map((n) => n.outputs.map((r) => define(makeValue(r), n.at)));
  raw.nodes.forEach((rn, i) => {
    const inputs = rn.inputs.map((name) => {
      if (name === null) return null;
      const v = lookup(scope, name);
      if (!v) c.fail(`value %${JSON.stringify(name)} is not defined`, rn.at);
      return v;
    });
    const attrs = new Attrs();
    for (const [k, a] of rn.attrs) {
      if (a.kind === 'rawgraph') attrs.set(k, { kind: 'graph', value: buildGraph(a.value, c, scope) });
      else if (a.kind === 'rawgraphs') attrs.set(k, { kind: 'graphs', value: a.value.map((sg) => buildGraph(sg, c, scope)) });
      else attrs.set(k, a);
    }
    const node = new Node(rn.op, inputs, outs[i]!, attrs, rn.name, rn.domain);
    for (const [k, m] of rn.meta) node.meta.set(k, m);
    g.addNode(node);
  });
  g.outputs = raw.outputs.map((name) => {
    const v = lookup(scope, name);
    if (!v) c.fail(`graph output %${JSON.stringify(name)} is not defined`, raw.at);
    return v;
  });
  return g;
}

/** Parses the text form (as printed by printGraph). Throws a UserError with line and column. */
export function parseGraph(text: string, options: ParseOptions = {}): Graph {
  const c = new Cursor(text, options.file);
  const raw = parseRawGraph(c, options);
  if (!c.atEnd()) c.fail('unexpected text after the graph');
  return buildGraph(raw, c, undefined);
}
