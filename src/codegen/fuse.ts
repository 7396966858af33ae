/**
 * Kernel fusion on the ahead-of-time host program: fewer dispatches and no round trip through
 * memory for intermediates that exactly one later kernel reads. Three rewrites, applied until none
 * applies (so chains collapse: Add → Mul → Erf → ... into one map; MatMul → Add(bias) → GELU into
 * one matmul):
 *
 * - **map → map**: a `map` producer whose single store writes temp T at the flat index `i` (over
 *   all of T) is inlined into the one map that reads T: its lets are let-bound in the consumer
 *   (with `i` replaced by the consumer's load index, let-bound as well) right before the first
 *   use, its value becomes a let, and every load of T reads that let. A producer with loop lets
 *   (pools, scans) is only inlined where the load index is `i` itself (no recomputation).
 * - **epilogue**: a matmul / reduce / norm template that writes T, whose one reader is a map that
 *   loads T only at `i` (the element the template just computed) and has no loop lets: the map's
 *   value, with its lets inlined, `load T[i]` replaced by the template's output value and `i` by
 *   the template's store index, becomes the template's store (to the map's output buffer at the
 *   map's store index, so a following transpose fuses too).
 * - **prologue**: a small map producer (Split, Transpose, a cheap elementwise op) whose one reader
 *   is a template: each `load T[e]` in the template's operands becomes the producer's value at
 *   `e` (its lets inlined), so attention's head-splitting transposes are read in place by the
 *   matmuls. Bounded by `maxPrologueNodes`, since templates may evaluate an operand repeatedly.
 *
 * Legality (checked on the program, not assumed): T is a temp with exactly one writer (the
 * producer) and one reader (the consumer), and is not a graph output; the fused kernel runs at
 * the consumer's position, so no step between the two may write a buffer the producer reads; the
 * fused kernel stays within `maxBuffers` storage bindings and `maxLets` lets, and an inlined
 * epilogue within `maxEpilogueNodes` expression nodes.
 *
 * Names: the fused kernel keeps the outer kernel's params and lets; the inner kernel's names are
 * suffixed (`_1`, `_2`, ...) only where they collide. Buffers are renamed canonically (inputs
 * `x0, x1, ...`, outputs `y0, ...` in first-use order, one name per HostBuffer), so identical
 * fused layers render identically and the code never depends on buffer ids or sizes. Dead temp
 * buffers are dropped (ids renumbered) and the memory plan is recomputed.
 *
 * Speed (a 70B graph has thousands of fusible pairs, nearly all repeats of one layer's): a
 * `FuseCache` remembers each decision by its inputs — both kernels (by structure), their params,
 * the binding pattern (HostBuffer ids renumbered by first appearance), the temp and its length —
 * so each distinct pair is fused once and every repeat gets the same fused kernel object, with its
 * bindings mapped back to the repeat's buffers. fuseLaunches is a pure function of exactly those
 * inputs, so the result is the one it would compute. Kernel structure keys and rendered code are
 * memoised per kernel object (kernels are never mutated).
 */
import { type Expr, type ScalarType, variable, walk } from './expr.js';
import { type Kernel, type KernelBody, type Let, type MapBody, type Store, bodyExprs, bodyStores, makeKernel } from './kernel.js';
import { KernelTable } from './host/record.js';
import { planMemory } from './host/memory.js';
import type { DispatchStep, HostBuffer, HostProgram, HostStep } from './host/program.js';
import { renderKernel } from './wgsl/kernel.js';

export interface FuseOptions {
  /** Most lets in a fused map kernel (default 64). */
  maxLets?: number;
  /** Most storage buffers one kernel binds (default 8: WebGPU's maxStorageBuffersPerShaderStage). */
  maxBuffers?: number;
  /** Most expression nodes in an inlined epilogue value (default 512). */
  maxEpilogueNodes?: number;
  /** Most expression nodes of a map producer inlined into a template's operand (default 160). */
  maxPrologueNodes?: number;
}

const DEFAULTS: Required<FuseOptions> = { maxLets: 64, maxBuffers: 8, maxEpilogueNodes: 512, maxPrologueNodes: 160 };

/** One dispatch as fusion sees it: a kernel, its parameter values and buffer bindings (name → HostBuffer id). */
export interface FusibleLaunch {
  kernel: Kernel;
  params: Record<string, number>;
  bindings: Record<string, number>;
}

export type FuseResult = { fused: FusibleLaunch } | { reason: string };

// ---- expression utilities -----------------------------------------------------------------

/** Rewrites `e` top-down: where `f` returns an expression it replaces the node (not revisited). */
function rewrite(e: Expr, f: (e: Expr) => Expr | undefined): Expr {
  const r = f(e);
  if (r) return r;
  const g = (x: Expr): Expr => rewrite(x, f);
  switch (e.k) {
    case 'load': return { ...e, index: g(e.index) };
    case 'bin': case 'cmp': return { ...e, a: g(e.a), b: g(e.b) } as Expr;
    case 'un': case 'cast': return { ...e, a: g(e.a) } as Expr;
    case 'select': return { ...e, cond: g(e.cond), a: g(e.a), b: g(e.b) };
    default: return e;
  }
}

const substVars = (e: Expr, vars: Readonly<Record<string, Expr>>): Expr => rewrite(e, (x) => (x.k === 'var' ? vars[x.name] : undefined));
const renameParams = (e: Expr, names: Readonly<Record<string, string>>): Expr =>
  rewrite(e, (x) => (x.k === 'param' && names[x.name] ? { ...x, name: names[x.name]! } : undefined));
const renameBufs = (e: Expr, names: Readonly<Record<string, string>>): Expr =>
  rewrite(e, (x) => (x.k === 'load' ? { ...x, buf: names[x.buf] ?? x.buf, index: renameBufs(x.index, names) } : undefined));

/** Structural key of an expression (non-finite constants spelled out). */
const exprKey = (e: Expr): string => JSON.stringify(e, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));

function exprSize(e: Expr): number {
  let n = 0;
  walk(e, () => n++);
  return n;
}

function freeVars(e: Expr): Set<string> {
  const s = new Set<string>();
  walk(e, (x) => x.k === 'var' && s.add(x.name));
  return s;
}

function loadsOf(e: Expr, buf: string): Expr[] {
  const out: Expr[] = [];
  walk(e, (x) => x.k === 'load' && x.buf === buf && out.push(x));
  return out;
}

/** A name like `base` not in `taken` (`base`, `base_1`, `base_2`, ...); adds it to `taken`. */
function fresh(base: string, taken: Set<string>): string {
  let name = base;
  for (let j = 1; taken.has(name); j++) name = `${base}_${j}`;
  taken.add(name);
  return name;
}

// ---- body utilities -----------------------------------------------------------------------

/** Applies `f` to every expression of a body (and `buf` to every store's buffer). */
function mapBody(body: KernelBody, f: (e: Expr) => Expr, buf: (b: string) => string = (b) => b): KernelBody {
  const st = (s: Store): Store => ({ buf: buf(s.buf), index: f(s.index), value: f(s.value) });
  switch (body.kind) {
    case 'map':
      return {
        ...body,
        count: f(body.count),
        lets: body.lets.map((l) => (l.loop ? { ...l, value: f(l.value), loop: { ...l.loop, count: f(l.loop.count) } } : { ...l, value: f(l.value) })),
        stores: body.stores.map(st),
      };
    case 'matmul':
      return { ...body, batch: f(body.batch), m: f(body.m), n: f(body.n), k: f(body.k), a: f(body.a), b: f(body.b), out: st(body.out) };
    default:
      return { ...body, rows: f(body.rows), len: f(body.len), value: f(body.value), out: st(body.out) };
  }
}

/** Names of the buffers a launch binds → HostBuffer ids, split by direction. */
function kernelIo(l: FusibleLaunch): { reads: number[]; writes: number[] } {
  const id = (n: string): number => {
    const b = l.bindings[n];
    if (b === undefined) throw new Error(`kernel ${l.kernel.name}: buffer ${n} is not bound`);
    return b;
  };
  return { reads: l.kernel.inputs.map((b) => id(b.name)), writes: l.kernel.outputs.map((b) => id(b.name)) };
}

/**
 * Gives the fused body's buffers canonical names: each HostBuffer one name (`t<id>` while
 * building), then inputs `x0, x1, ...` and outputs `y0, ...` in first-use order.
 */
function finishKernel(name: string, body: KernelBody, workgroupSize: number, params: Record<string, number>): FuseResult {
  const why = unbuildable(body);
  if (why) return { reason: why };
  const draft = makeKernel(name, body, workgroupSize);
  const names: Record<string, string> = {};
  const bindings: Record<string, number> = {};
  draft.inputs.forEach((b, k) => ((names[b.name] = `x${k}`), (bindings[`x${k}`] = Number(b.name.slice(1)))));
  draft.outputs.forEach((b, k) => ((names[b.name] = `y${k}`), (bindings[`y${k}`] = Number(b.name.slice(1)))));
  const kernel = makeKernel(name, mapBody(body, (e) => renameBufs(e, names), (b) => names[b]!), workgroupSize);
  const used: Record<string, number> = {};
  for (const p of kernel.params) {
    const v = params[p];
    if (v === undefined) throw new Error(`fused kernel ${name}: param ${p} has no value`);
    used[p] = v;
  }
  return { fused: { kernel, params: used, bindings } };
}

/** Why makeKernel would refuse a body (one buffer loaded with two types, or read and written). */
function unbuildable(body: KernelBody): string | undefined {
  const written = new Set(bodyStores(body).map((s) => s.buf));
  const loaded = new Map<string, ScalarType>();
  let why: string | undefined;
  for (const e of bodyExprs(body))
    walk(e, (x) => {
      if (x.k !== 'load') return;
      const t = x.t === 'bool' ? 'u32' : x.t;
      if (written.has(x.buf)) why ??= `fused kernel would read its output ${x.buf}`;
      if ((loaded.get(x.buf) ?? t) !== t) why ??= `fused kernel would load ${x.buf} with two types`;
      loaded.set(x.buf, t);
    });
  return why;
}

/** The launch with buffers named by HostBuffer id (`t<id>`) and params renamed by `paramNames`. */
function byIds(l: FusibleLaunch, paramNames: Record<string, string> = {}): KernelBody {
  const names: Record<string, string> = {};
  for (const [n, id] of Object.entries(l.bindings)) names[n] = `t${id}`;
  return mapBody(l.kernel.body, (e) => renameParams(renameBufs(e, names), paramNames), (b) => names[b] ?? b);
}

/** Renames `inner`'s params that collide with `outer`'s; returns the renaming and the merged values. */
function mergeParams(outer: FusibleLaunch, inner: FusibleLaunch): { names: Record<string, string>; values: Record<string, number> } {
  const taken = new Set(outer.kernel.params);
  const names: Record<string, string> = {};
  const values: Record<string, number> = { ...outer.params };
  for (const p of inner.kernel.params) {
    const n = taken.has(p) ? fresh(p, taken) : (taken.add(p), p);
    if (n !== p) names[p] = n;
    values[n] = inner.params[p]!;
  }
  return { names, values };
}

// ---- the rewrites --------------------------------------------------------------------------

/**
 * Fuses `producer` (which writes HostBuffer `temp` of `tempLength` elements) into `consumer` (its
 * only reader). Legality on the program (single writer/reader, nothing in between) is the
 * caller's; this checks what the kernels themselves allow.
 */
export function fuseLaunches(producer: FusibleLaunch, consumer: FusibleLaunch, temp: number, tempLength: number, options: FuseOptions = {}): FuseResult {
  const opts = { ...DEFAULTS, ...options };
  const pIo = kernelIo(producer);
  const cIo = kernelIo(consumer);
  if (!pIo.writes.includes(temp) || !cIo.reads.includes(temp)) return { reason: 'temp is not written by the producer and read by the consumer' };
  if (pIo.writes.length !== 1) return { reason: 'producer writes more than one buffer' };
  if (pIo.reads.some((id) => cIo.writes.includes(id))) return { reason: 'consumer overwrites a buffer the producer reads' };
  const pKind = producer.kernel.body.kind;
  const cKind = consumer.kernel.body.kind;
  const result =
    pKind === 'map' && cKind === 'map' ? fuseMaps(producer, consumer, temp, tempLength, opts)
    : pKind === 'map' ? fusePrologue(producer, consumer, temp, tempLength, opts)
    : cKind === 'map' ? fuseEpilogue(producer, consumer, temp, tempLength, opts)
    : { reason: `${pKind} into ${cKind}: two templates do not fuse` };
  if ('reason' in result) return result;
  const k = result.fused.kernel;
  if (k.inputs.length + k.outputs.length > opts.maxBuffers) return { reason: `fused kernel binds ${k.inputs.length + k.outputs.length} buffers (> ${opts.maxBuffers})` };
  return result;
}

const fusedName = (p: Kernel, c: Kernel): string => `${p.name} + ${c.name}`;

/** Why a map producer cannot be inlined: it must write all of the temp, element i at i, and nothing else. */
function mapProducerError(producer: FusibleLaunch, tempLength: number): string | undefined {
  const pb = producer.kernel.body as MapBody;
  if (pb.stores.length !== 1) return 'producer map has several stores';
  const ps = pb.stores[0]!;
  if (!(ps.index.k === 'var' && ps.index.name === 'i')) return 'producer does not store at i';
  const pCount = pb.count.k === 'const' ? pb.count.v : pb.count.k === 'param' ? producer.params[pb.count.name] : undefined;
  if (pCount !== tempLength) return 'producer does not write all of the temp';
  return undefined;
}

function fuseMaps(producer: FusibleLaunch, consumer: FusibleLaunch, temp: number, tempLength: number, opts: Required<FuseOptions>): FuseResult {
  const notPlain = mapProducerError(producer, tempLength);
  if (notPlain) return { reason: notPlain };
  const { names: pNames, values } = mergeParams(consumer, producer);
  const cBody = byIds(consumer) as MapBody;
  const pBody = byIds(producer, pNames) as MapBody;
  const tName = `t${temp}`;
  const value = pBody.stores[0]!.value;

  // Where the consumer first reads the temp, and at which index (one index for all its loads).
  const exprsOfLet = (l: Let): Expr[] => (l.loop ? [l.value, l.loop.count] : [l.value]);
  const loads = [...cBody.lets.flatMap(exprsOfLet), ...cBody.stores.flatMap((s) => [s.index, s.value])].flatMap((e) => loadsOf(e, tName));
  if (!loads.length) return { reason: 'consumer does not load the temp' };
  const index = (loads[0] as Extract<Expr, { k: 'load' }>).index;
  if (loads.some((l) => exprKey((l as Extract<Expr, { k: 'load' }>).index) !== exprKey(index))) return { reason: 'consumer loads the temp at several indices' };
  if (loads.some((l) => l.t !== value.t)) return { reason: 'consumer loads the temp with another type than the producer stores' };
  let at = cBody.lets.findIndex((l) => exprsOfLet(l).some((e) => loadsOf(e, tName).length > 0));
  if (at < 0) at = cBody.lets.length;
  const defined = new Set(['i', ...cBody.lets.slice(0, at).map((l) => l.name)]);
  if ([...freeVars(index)].some((v) => !defined.has(v))) return { reason: 'load index uses a loop variable' };
  const atI = index.k === 'var' && index.name === 'i';
  if (!atI && pBody.lets.some((l) => l.loop)) return { reason: 'producer has loop lets and the load index is not i' };

  // Producer lets (names fresh in the consumer), its index and value as lets.
  const taken = new Set<string>(['i']);
  for (const l of cBody.lets) {
    taken.add(l.name);
    if (l.loop) taken.add(l.loop.var);
  }
  const vars: Record<string, Expr> = {};
  const inserted: Let[] = [];
  if (!atI) {
    const n = fresh('pi', taken);
    inserted.push({ name: n, value: index });
    vars.i = variable(n);
  }
  for (const l of pBody.lets) {
    const n = fresh(l.name, taken);
    const loopVar = l.loop ? fresh(l.loop.var, taken) : undefined;
    const inner = loopVar ? { ...vars, [l.loop!.var]: variable(loopVar) } : vars;
    inserted.push(l.loop ? { name: n, value: substVars(l.value, inner), loop: { ...l.loop, var: loopVar!, count: substVars(l.loop.count, vars) } } : { name: n, value: substVars(l.value, vars) });
    vars[l.name] = { k: 'var', t: l.loop && (l.loop.op === 'argmax' || l.loop.op === 'argmin') ? 'i32' : l.value.t, name: n };
  }
  // The value as a let (a bare variable or constant is used as is).
  const pValue = substVars(value, vars);
  let read = pValue;
  if (pValue.k !== 'var' && pValue.k !== 'const') {
    const pv = fresh('pv', taken);
    inserted.push({ name: pv, value: pValue });
    read = variable(pv, value.t);
  }
  const readTemp = (e: Expr): Expr => rewrite(e, (x) => (x.k === 'load' && x.buf === tName ? read : undefined));
  const lets: Let[] = [
    ...cBody.lets.slice(0, at),
    ...inserted,
    ...cBody.lets.slice(at).map((l) => (l.loop ? { ...l, value: readTemp(l.value), loop: { ...l.loop, count: readTemp(l.loop.count) } } : { ...l, value: readTemp(l.value) })),
  ];
  if (lets.length > opts.maxLets) return { reason: `fused kernel has ${lets.length} lets (> ${opts.maxLets})` };
  const body: MapBody = { ...cBody, lets, stores: cBody.stores.map((s) => ({ ...s, index: readTemp(s.index), value: readTemp(s.value) })) };
  return finishKernel(fusedName(producer.kernel, consumer.kernel), body, consumer.kernel.workgroupSize, values);
}

function fuseEpilogue(producer: FusibleLaunch, consumer: FusibleLaunch, temp: number, tempLength: number, opts: Required<FuseOptions>): FuseResult {
  const pk = producer.kernel.body;
  if (pk.kind === 'softmax' || pk.kind === 'map') return { reason: `no epilogue on a ${pk.kind} producer` };
  const v = (e: Expr): number | undefined => (e.k === 'const' ? e.v : e.k === 'param' ? producer.params[e.name] : undefined);
  const stored =
    pk.kind === 'matmul' ? [v(pk.batch), v(pk.m), v(pk.n)] : pk.kind === 'reduce' ? [v(pk.rows)] : [v(pk.rows), v(pk.len)];
  if (stored.some((x) => x === undefined) || stored.reduce((a, b) => a! * b!, 1) !== tempLength) return { reason: 'template does not write all of the temp' };
  const cb0 = consumer.kernel.body as MapBody;
  if (cb0.stores.length !== 1) return { reason: 'consumer map has several stores' };
  if (cb0.lets.some((l) => l.loop)) return { reason: 'consumer has loop lets' };
  const cCount = cb0.count.k === 'const' ? cb0.count.v : cb0.count.k === 'param' ? consumer.params[cb0.count.name] : undefined;
  if (cCount !== tempLength) return { reason: 'consumer count differs from the temp length' };

  const { names: cNames, values } = mergeParams(producer, consumer);
  const cBody = byIds(consumer, cNames) as MapBody;
  const pBody = byIds(producer) as Exclude<KernelBody, MapBody>;
  const tName = `t${temp}`;
  // Inline the consumer's lets into its store.
  const vars: Record<string, Expr> = {};
  for (const l of cBody.lets) vars[l.name] = substVars(l.value, vars);
  const store = { ...cBody.stores[0]!, index: substVars(cBody.stores[0]!.index, vars), value: substVars(cBody.stores[0]!.value, vars) };
  const loads = [...loadsOf(store.index, tName), ...loadsOf(store.value, tName)];
  if (!loads.length) return { reason: 'consumer does not load the temp' };
  if (loads.some((l) => (l as Extract<Expr, { k: 'load' }>).index.k !== 'var' || ((l as Extract<Expr, { k: 'load' }>).index as { name: string }).name !== 'i'))
    return { reason: 'consumer loads the temp at an index other than i' };
  const outValue = pBody.out.value;
  if (loads.some((l) => l.t !== outValue.t)) return { reason: 'consumer loads the temp with another type than the template stores' };
  const atOut = (e: Expr): Expr =>
    rewrite(e, (x) => (x.k === 'load' && x.buf === tName ? outValue : x.k === 'var' && x.name === 'i' ? pBody.out.index : undefined));
  const out: Store = { buf: store.buf, index: atOut(store.index), value: atOut(store.value) };
  if (exprSize(out.value) + exprSize(out.index) > opts.maxEpilogueNodes) return { reason: `epilogue has more than ${opts.maxEpilogueNodes} nodes` };
  const body: KernelBody = { ...pBody, out };
  return finishKernel(fusedName(producer.kernel, consumer.kernel), body, producer.kernel.workgroupSize, values);
}

/** The producer's value at flat index `i` as one expression (its lets inlined), if it is a plain map writing all of the temp. */
function inlineMapValue(producer: FusibleLaunch, tempLength: number): Expr | string {
  const notPlain = mapProducerError(producer, tempLength);
  if (notPlain) return notPlain;
  const pb = producer.kernel.body as MapBody;
  if (pb.lets.some((l) => l.loop)) return 'producer has loop lets';
  const vars: Record<string, Expr> = {};
  for (const l of pb.lets) vars[l.name] = substVars(l.value, vars);
  return substVars(pb.stores[0]!.value, vars);
}

/**
 * Prologue: a map producer (typically a pure index map — Split, Transpose — or a cheap
 * elementwise op) inlined into a template's operand loads: each `load T[e]` becomes the
 * producer's value at `e`. Templates may evaluate an operand more than once (a matmul tile load
 * per output tile, softmax three passes), so only small producers (`maxPrologueNodes`) inline.
 */
function fusePrologue(producer: FusibleLaunch, consumer: FusibleLaunch, temp: number, tempLength: number, opts: Required<FuseOptions>): FuseResult {
  const { names: pNames, values } = mergeParams(consumer, producer);
  const inlined = inlineMapValue({ ...producer, kernel: { ...producer.kernel, body: byIds(producer, pNames) } }, tempLength);
  if (typeof inlined === 'string') return { reason: inlined };
  if (exprSize(inlined) > opts.maxPrologueNodes) return { reason: `producer value has more than ${opts.maxPrologueNodes} nodes` };
  const tName = `t${temp}`;
  let bad: string | undefined;
  const body = mapBody(byIds(consumer), (e) =>
    rewrite(e, function at(x): Expr | undefined {
      if (x.k !== 'load' || x.buf !== tName) return undefined;
      if (x.t !== inlined.t) bad = 'consumer loads the temp with another type than the producer stores';
      return substVars(inlined, { i: rewrite(x.index, at) });
    }),
  );
  if (bad) return { reason: bad };
  return finishKernel(fusedName(producer.kernel, consumer.kernel), body, consumer.kernel.workgroupSize, values);
}

// ---- the program pass ---------------------------------------------------------------------

/** Buffers each step reads and writes. */
function stepIo(s: HostStep, kernels: readonly Kernel[]): { reads: number[]; writes: number[] } {
  if (s.kind === 'collective') return { reads: s.input === undefined ? [] : [s.input], writes: [s.output] };
  return kernelIo({ kernel: kernels[s.kernel]!, params: s.params, bindings: s.bindings });
}

/** Rendered WGSL of a kernel with its name left out: the key under which programs deduplicate kernels. Memoised per kernel object. */
const renderKeys = new WeakMap<Kernel, string>();
export function kernelRenderKey(k: Kernel): string {
  let key = renderKeys.get(k);
  if (key === undefined) renderKeys.set(k, (key = renderKernel({ ...k, name: '' })));
  return key;
}

/**
 * Fusion decisions by their inputs (see the file header), shareable by every program fused with
 * the same options (all devices of a partition).
 */
export class FuseCache {
  private readonly structureIds = new Map<string, number>();
  private readonly kernelIds = new WeakMap<Kernel, number>();
  private readonly decisions = new Map<string, { kernel: Kernel; params: Record<string, number>; bindings: [string, number][] } | { reason: string }>();

  /** A number per kernel structure (name included: it names the fused kernel). */
  private kernelId(k: Kernel): number {
    let id = this.kernelIds.get(k);
    if (id === undefined) {
      // Every number spelled exactly (-0 and non-finite constants too): equal keys, equal kernels.
      const key = JSON.stringify(k, (_k, v: unknown) => (typeof v === 'number' && (Object.is(v, -0) || !Number.isFinite(v)) ? `#${Object.is(v, -0) ? '-0' : String(v)}` : v));
      id = this.structureIds.get(key);
      if (id === undefined) this.structureIds.set(key, (id = this.structureIds.size));
      this.kernelIds.set(k, id);
    }
    return id;
  }

  /** fuseLaunches(producer, consumer, temp, tempLength, opts), computed once per distinct input. */
  fuse(producer: FusibleLaunch, consumer: FusibleLaunch, temp: number, tempLength: number, opts: Required<FuseOptions>): FuseResult {
    // HostBuffer ids renumbered by first appearance: the binding pattern, independent of the ids.
    const local = new Map<number, number>();
    const ids: number[] = [];
    const pattern = (b: Record<string, number>): string =>
      Object.entries(b)
        .map(([n, id]) => {
          let l = local.get(id);
          if (l === undefined) {
            local.set(id, (l = ids.length));
            ids.push(id);
          }
          return `${n}=${l}`;
        })
        .join(',');
    const pb = pattern(producer.bindings);
    const cb = pattern(consumer.bindings);
    const key = [
      this.kernelId(producer.kernel),
      this.kernelId(consumer.kernel),
      JSON.stringify(producer.params),
      JSON.stringify(consumer.params),
      pb,
      cb,
      local.get(temp) ?? `t${temp}`,
      tempLength,
      JSON.stringify(opts),
    ].join('|');
    let d = this.decisions.get(key);
    if (!d) {
      const res = fuseLaunches(producer, consumer, temp, tempLength, opts);
      d =
        'reason' in res
          ? res
          : {
              kernel: res.fused.kernel,
              params: res.fused.params,
              bindings: Object.entries(res.fused.bindings).map(([n, id]): [string, number] => {
                const l = local.get(id);
                if (l === undefined) throw new Error(`fused kernel ${res.fused.kernel.name} binds buffer ${id}, which neither launch binds`);
                return [n, l];
              }),
            };
      this.decisions.set(key, d);
    }
    if ('reason' in d) return d;
    return { fused: { kernel: d.kernel, params: { ...d.params }, bindings: Object.fromEntries(d.bindings.map(([n, l]) => [n, ids[l]!])) } };
  }
}

/** Fuses the program's kernels (see the file header); returns a new program with a fresh memory plan. */
export function fuseHostProgram(p: HostProgram, options: FuseOptions = {}, cache: FuseCache = new FuseCache()): HostProgram {
  const opts = { ...DEFAULTS, ...options };
  // Working copy: steps with their own kernels (dedup again at the end).
  const kernels: Kernel[] = [...p.kernels];
  let steps: HostStep[] = p.steps.map((s) => ({ ...s }));
  const pinned = new Set<number>(p.outputs.flatMap((o) => (o.buffer === undefined ? [] : [o.buffer])));

  // Steps keep their slots (a fused pair: the producer's slot emptied, the consumer's replaced), so
  // the readers/writers of each buffer are updated in place instead of rebuilt after every fusion,
  // and the scan resumes at the producer's slot: every consumer before it sees exactly what it saw
  // before the fusion, so the result equals rescanning from the start (linear, not quadratic).
  const slots: (HostStep | undefined)[] = steps;
  const io = slots.map((s) => stepIo(s!, kernels));
  const writers = new Map<number, Set<number>>();
  const readers = new Map<number, Set<number>>();
  const index = (i: number, on: boolean): void => {
    for (const [m, ids] of [[readers, io[i]!.reads], [writers, io[i]!.writes]] as const)
      for (const id of ids) {
        let set = m.get(id);
        if (!set) m.set(id, (set = new Set()));
        if (on) set.add(i);
        else set.delete(i);
      }
  };
  slots.forEach((_, i) => index(i, true));
  const first = (set: Set<number>): number => set.values().next().value!;
  for (let c = 0; c < slots.length; c++) {
    const cs = slots[c];
    if (cs?.kind !== 'dispatch') continue;
    for (const temp of new Set(io[c]!.reads)) {
      const buf = p.buffers[temp]!;
      if (buf.role !== 'temp' || pinned.has(temp)) continue;
      const w = writers.get(temp);
      const r = readers.get(temp);
      if (w?.size !== 1 || r?.size !== 1 || first(w) >= c) continue;
      const pi = first(w);
      const ps = slots[pi]!;
      if (ps.kind !== 'dispatch') continue;
      // The producer now runs at the consumer's position: its inputs must still hold their values.
      const pReads = new Set(io[pi]!.reads);
      let clobbered = false;
      for (let j = pi + 1; j < c && !clobbered; j++) if (slots[j]) clobbered = io[j]!.writes.some((id) => pReads.has(id));
      if (clobbered) continue;
      const res = cache.fuse(
        { kernel: kernels[ps.kernel]!, params: ps.params, bindings: ps.bindings },
        { kernel: kernels[cs.kernel]!, params: cs.params, bindings: cs.bindings },
        temp,
        buf.length,
        opts,
      );
      if ('reason' in res) continue;
      kernels.push(res.fused.kernel);
      const fused: DispatchStep = {
        kind: 'dispatch',
        node: `${ps.node} + ${cs.node}`,
        op: `${ps.op}+${cs.op}`,
        kernel: kernels.length - 1,
        params: res.fused.params,
        bindings: res.fused.bindings,
      };
      index(pi, false);
      index(c, false);
      slots[pi] = undefined;
      io[pi] = { reads: [], writes: [] };
      slots[c] = fused;
      io[c] = stepIo(fused, kernels);
      index(c, true);
      c = pi - 1; // resume at the producer's slot (the loop's c++ makes it pi)
      break;
    }
  }
  steps = slots.filter((s): s is HostStep => s !== undefined);
  return planMemory(compact({ ...p, kernels, steps }));
}

/** Drops unused kernels (deduplicated by rendered code, the name aside) and unreferenced temp buffers (ids renumbered). */
function compact(p: HostProgram): HostProgram {
  const keep = new Set<number>();
  for (const b of p.buffers) if (b.role !== 'temp') keep.add(b.id);
  for (const o of [...p.inputs, ...p.outputs]) if (o.buffer !== undefined) keep.add(o.buffer);
  for (const s of p.steps) {
    if (s.kind === 'dispatch') for (const id of Object.values(s.bindings)) keep.add(id);
    else {
      if (s.input !== undefined) keep.add(s.input);
      keep.add(s.output);
    }
  }
  const newId = new Map<number, number>();
  const buffers: HostBuffer[] = [];
  for (const b of p.buffers)
    if (keep.has(b.id)) {
      newId.set(b.id, buffers.length);
      buffers.push({ ...b, id: buffers.length, slot: buffers.length });
    }
  const id = (x: number): number => newId.get(x)!;
  const table = new KernelTable(kernelRenderKey);
  const kernels = table.kernels;
  const kernelIndex = (k: Kernel): number => table.index(k);
  const steps: HostStep[] = p.steps.map((s) =>
    s.kind === 'dispatch'
      ? { ...s, kernel: kernelIndex(p.kernels[s.kernel]!), bindings: Object.fromEntries(Object.entries(s.bindings).map(([n, b]) => [n, id(b)])) }
      : { ...s, ...(s.input === undefined ? {} : { input: id(s.input) }), output: id(s.output) },
  );
  const ref = <T extends { buffer?: number }>(o: T): T => (o.buffer === undefined ? o : { ...o, buffer: id(o.buffer) });
  return {
    ...p,
    kernels,
    buffers,
    slots: buffers.map((b) => ({ bytes: Math.max(1, b.length) * 4 })),
    inputs: p.inputs.map(ref),
    outputs: p.outputs.map(ref),
    steps,
  };
}

/** A recorded program made ready to run: fused (unless `fuse` is false; fusion re-plans memory) or only memory-planned. */
export function compileHostProgram(recorded: HostProgram, fuse = true): HostProgram {
  return fuse ? fuseHostProgram(recorded) : planMemory(recorded);
}

/** Dispatch steps of a program (for reports: dispatches before → after fusion). */
export const dispatchCount = (p: HostProgram): number => p.steps.filter((s) => s.kind === 'dispatch').length;
