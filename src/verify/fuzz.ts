/**
 * A seeded mutation fuzzer for the model reader (issue 8 §2).
 *
 * Each iteration takes one valid model, applies 1–3 mutations — byte-level (bit flips, inserted,
 * deleted or overwritten bytes, truncation) or structured (decode with onnx-proto, change dims,
 * dtypes, attributes, node inputs/outputs, op types, initializer data, the opset; re-encode) — and
 * sends the mutant through import, shape inference and, when it imports, a CPU run on small
 * random inputs. Outcomes:
 *   ok          the mutant is still a valid model (it ran) or the run was skipped as too large;
 *   user-error  a UserError (the expected answer to bad input);
 *   internal    any other exception: a bug (recorded with seed, iteration, mutation and message,
 *               and the mutant saved to the output folder);
 *   timeout     the mutant did not finish within the time limit: a hang (a failure, saved too);
 *   crash       the worker died (out of memory...): a failure, saved too.
 *
 * Mutants run in a worker thread so that a hang can be stopped: the worker is terminated and a
 * fresh one started. Every iteration draws from its own PRNG seeded by (seed, iteration), so any
 * single iteration can be replayed alone (`mutantFor`).
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, parentPort } from 'node:worker_threads';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import { mulberry32 } from '../ir/random.js';
import { isSymbolName, numel } from '../ir/shape.js';
import { importModel, unsupportedOps } from '../onnx/import.js';
import type onnxProto from 'onnx-proto';
import { onnx } from '../onnx/proto.js';
import { inferShapes } from '../passes/shape-inference.js';
import { runGraph } from '../targets/cpu/interpreter.js';
import { randomInputs } from './random-inputs.js';

export type Outcome = 'ok' | 'user-error' | 'internal' | 'timeout' | 'crash';
export const OUTCOMES: readonly Outcome[] = ['ok', 'user-error', 'internal', 'timeout', 'crash'];
export const isFailure = (o: Outcome): boolean => o === 'internal' || o === 'timeout' || o === 'crash';

export interface SeedModel {
  name: string;
  bytes: Uint8Array;
  /** Folder that external data would be resolved in (the model's own folder). */
  baseDir: string;
}

// ---------------------------------------------------------------------------------------------
// Mutations

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Interesting integers for dims, attributes and sizes. */
const EDGE_INTS = [0, 1, 2, 3, -1, -2, 7, 64, 255, 256, 65535, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, -(2 ** 53), 1e15];
const smallOrEdge = (r: Rand): number => (r() < 0.5 ? int(r, 9) - 1 : pick(r, EDGE_INTS));
const EDGE_FLOATS = [0, -0, 1, -1, 0.5, 1e-30, 1e30, Infinity, -Infinity, NaN, 3.4e38];

function byteMutation(b: Uint8Array, r: Rand): { bytes: Uint8Array; what: string } {
  const n = b.length;
  const at = int(r, Math.max(1, n));
  switch (int(r, 5)) {
    case 0: {
      const out = b.slice();
      const bit = int(r, 8);
      if (n > 0) out[at] = out[at]! ^ (1 << bit);
      return { bytes: out, what: `flip bit ${bit} of byte ${at}` };
    }
    case 1: {
      const len = 1 + int(r, 8);
      const ins = Uint8Array.from({ length: len }, () => (r() < 0.3 ? pick(r, [0, 0x7f, 0x80, 0xff]) : int(r, 256)));
      const out = new Uint8Array(n + len);
      out.set(b.subarray(0, at), 0);
      out.set(ins, at);
      out.set(b.subarray(at), at + len);
      return { bytes: out, what: `insert ${len} bytes at ${at}` };
    }
    case 2: {
      const len = Math.min(1 + int(r, 16), n - at);
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at), 0);
      out.set(b.subarray(at + len), at);
      return { bytes: out, what: `delete ${len} bytes at ${at}` };
    }
    case 3: {
      const out = b.slice();
      const len = 1 + int(r, 4);
      for (let i = 0; i < len && at + i < n; i++) out[at + i] = pick(r, [0, 0x7f, 0x80, 0xff, int(r, 256)]);
      return { bytes: out, what: `overwrite ${len} bytes at ${at}` };
    }
    default:
      return { bytes: b.slice(0, at), what: `truncate to ${at} bytes` };
  }
}

type IModel = onnxProto.onnx.IModelProto;
type IGraph = onnxProto.onnx.IGraphProto;

/** Every graph in the model, subgraphs included. */
function graphsOf(m: IModel): IGraph[] {
  const out: IGraph[] = [];
  const visit = (g: IGraph | null | undefined): void => {
    if (!g) return;
    out.push(g);
    for (const n of g.node ?? []) for (const a of n.attribute ?? []) [a.g, ...(a.graphs ?? [])].forEach(visit);
  };
  visit(m.graph);
  return out;
}

/** One structured mutation of a decoded model, in place; returns what it did (or null: nothing to mutate). */
function structuredMutation(m: IModel, r: Rand): string | null {
  const graphs = graphsOf(m);
  if (graphs.length === 0) return null;
  const g = pick(r, graphs);
  const nodes = g.node ?? [];
  const names = [...(g.input ?? []).map((v) => v.name ?? ''), ...(g.initializer ?? []).map((t) => t.name ?? ''), ...nodes.flatMap((n) => n.output ?? [])];
  const valueInfos = [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])];
  const inits = g.initializer ?? [];
  switch (int(r, 12)) {
    case 0: {
      // A dim of a declared shape.
      const vi = valueInfos.length ? pick(r, valueInfos) : undefined;
      const dims = vi?.type?.tensorType?.shape?.dim;
      if (!vi || !dims || dims.length === 0) return null;
      const d = pick(r, dims);
      if (r() < 0.2) {
        d.dimValue = undefined;
        d.dimParam = pick(r, ['batch', 'N', '', '1x', '__proto__', 'a*b']);
        return `dim_param of ${vi.name} = ${JSON.stringify(d.dimParam)}`;
      }
      d.dimParam = undefined;
      d.dimValue = smallOrEdge(r);
      return `dim_value of ${vi.name} = ${d.dimValue}`;
    }
    case 1: {
      // Rank of a declared shape.
      const vi = valueInfos.length ? pick(r, valueInfos) : undefined;
      const shape = vi?.type?.tensorType?.shape;
      if (!vi || !shape) return null;
      if (r() < 0.5 && (shape.dim ?? []).length > 0) shape.dim = (shape.dim ?? []).slice(1);
      else shape.dim = [...(shape.dim ?? []), { dimValue: 1 + int(r, 3) }];
      return `rank of ${vi.name} = ${shape.dim.length}`;
    }
    case 2: {
      // A declared or initializer dtype.
      const code = r() < 0.8 ? int(r, 17) : pick(r, [17, 21, 23, 24, 99, -1]);
      if (inits.length && r() < 0.5) {
        const t = pick(r, inits);
        t.dataType = code;
        return `data_type of initializer ${t.name} = ${code}`;
      }
      const vi = valueInfos.length ? pick(r, valueInfos) : undefined;
      if (!vi?.type?.tensorType) return null;
      vi.type.tensorType.elemType = code;
      return `elem_type of ${vi.name} = ${code}`;
    }
    case 3: {
      // Initializer dims (size no longer matches the data, or matches a different shape).
      if (!inits.length) return null;
      const t = pick(r, inits);
      const dims = (t.dims ?? []).map(Number);
      const k = int(r, 4);
      if (k === 0 && dims.length) dims[int(r, dims.length)] = smallOrEdge(r);
      else if (k === 1) dims.reverse();
      else if (k === 2) dims.push(1);
      else dims.splice(0, 1);
      t.dims = dims;
      return `dims of initializer ${t.name} = [${dims}]`;
    }
    case 4: {
      // Initializer data (raw_data cut or typed data dropped).
      if (!inits.length) return null;
      const t = pick(r, inits);
      if (t.rawData && t.rawData.length) {
        t.rawData = t.rawData.subarray(0, int(r, t.rawData.length));
        return `raw_data of ${t.name} cut to ${t.rawData.length} bytes`;
      }
      for (const f of ['floatData', 'int32Data', 'int64Data', 'doubleData'] as const) {
        const arr = t[f] as unknown[] | undefined;
        if (arr && arr.length) {
          (t as Record<string, unknown>)[f] = arr.slice(0, int(r, arr.length));
          return `${f} of ${t.name} cut`;
        }
      }
      return null;
    }
    case 5:
    case 6: {
      // A node attribute.
      const withAttrs = nodes.filter((n) => (n.attribute ?? []).length > 0);
      if (!withAttrs.length) return null;
      const n = pick(r, withAttrs);
      const a = pick(r, n.attribute!);
      const what = `attribute ${a.name} of ${n.opType}`;
      switch (int(r, 7)) {
        case 0:
          a.i = smallOrEdge(r);
          return `${what}: i = ${a.i}`;
        case 1:
          if ((a.ints ?? []).length) a.ints![int(r, a.ints!.length)] = smallOrEdge(r);
          else a.ints = [smallOrEdge(r)];
          return `${what}: ints = [${a.ints!.map(Number)}]`;
        case 2:
          a.f = pick(r, EDGE_FLOATS);
          return `${what}: f = ${a.f}`;
        case 3:
          a.type = int(r, 15);
          return `${what}: type = ${a.type}`;
        case 4:
          n.attribute = n.attribute!.filter((x) => x !== a);
          return `${what} removed`;
        case 5:
          a.ints = (a.ints ?? []).slice(0, int(r, (a.ints ?? []).length + 1));
          return `${what}: ints cut to ${a.ints.length}`;
        default:
          a.s = new TextEncoder().encode(pick(r, ['', 'NOTSET', 'constant', 'reflect', '__proto__', 'x'.repeat(int(r, 40))]));
          return `${what}: s changed`;
      }
    }
    case 7: {
      // A node input: another name, an undefined name, dropped, or an extra one.
      if (!nodes.length) return null;
      const n = pick(r, nodes);
      const ins = [...(n.input ?? [])];
      const k = int(r, 4);
      if (k === 0 && ins.length && names.length) ins[int(r, ins.length)] = pick(r, names);
      else if (k === 1 && ins.length) ins[int(r, ins.length)] = r() < 0.5 ? '' : 'undefined_name';
      else if (k === 2 && ins.length) ins.splice(int(r, ins.length), 1);
      else if (names.length) ins.push(pick(r, names));
      n.input = ins;
      return `inputs of ${n.opType} = [${ins.join(',')}]`;
    }
    case 8: {
      // A node output: renamed to an existing name (duplicate / cycle) or dropped.
      if (!nodes.length) return null;
      const n = pick(r, nodes);
      const outs = [...(n.output ?? [])];
      if (!outs.length) return null;
      if (r() < 0.7 && names.length) outs[int(r, outs.length)] = pick(r, names);
      else outs.pop();
      n.output = outs;
      return `outputs of ${n.opType} = [${outs.join(',')}]`;
    }
    case 9: {
      // Op type swapped with another node's (or a non-op).
      if (!nodes.length) return null;
      const n = pick(r, nodes);
      const was = n.opType;
      n.opType = r() < 0.9 ? pick(r, nodes).opType : pick(r, ['', 'NotAnOp', 'If', 'Loop', 'Scan']);
      return `op ${was} → ${n.opType}`;
    }
    case 10: {
      // Nodes removed, duplicated or reordered; graph outputs removed.
      const k = int(r, 4);
      if (k === 0 && nodes.length) {
        g.node = nodes.filter((_, i) => i !== int(r, nodes.length));
        return 'node removed';
      }
      if (k === 1 && nodes.length) {
        g.node = [...nodes, pick(r, nodes)];
        return 'node duplicated';
      }
      if (k === 2 && nodes.length > 1) {
        g.node = [...nodes].reverse();
        return 'nodes reversed';
      }
      if ((g.output ?? []).length) {
        g.output = (g.output ?? []).slice(1);
        return 'graph output removed';
      }
      return null;
    }
    default: {
      const k = int(r, 3);
      if (k === 0) {
        const v = r() < 0.7 ? int(r, 24) : pick(r, [0, -1, 99, 2 ** 31]);
        m.opsetImport = [{ domain: '', version: v }];
        return `opset = ${v}`;
      }
      if (k === 1) {
        m.irVersion = pick(r, [0, 1, 3, 4, 7, 8, 11, 99]);
        return `ir_version = ${m.irVersion}`;
      }
      const t = inits.length ? pick(r, inits) : undefined;
      if (!t) return null;
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [{ key: 'location', value: pick(r, ['w.bin', '../w.bin', '/etc/hosts', 'C:\\w.bin', 'model.onnx']) }];
      if (r() < 0.5) t.externalData.push({ key: pick(r, ['offset', 'length', '__proto__']), value: String(smallOrEdge(r)) });
      return `initializer ${t.name} made external (${t.externalData.map((e) => `${e.key}=${e.value}`).join(', ')})`;
    }
  }
}

/** The mutant of iteration `iteration` for fuzz seed `seed`: which model, its bytes, what was done. */
export function mutantFor(models: readonly SeedModel[], seed: number, iteration: number): { model: SeedModel; bytes: Uint8Array; mutation: string } {
  const r = mulberry32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(iteration + 1, 0x85ebca6b)) >>> 0);
  const model = pick(r, models);
  let bytes = model.bytes;
  const steps: string[] = [];
  const count = 1 + int(r, 3);
  for (let s = 0; s < count; s++) {
    if (r() < 0.4) {
      const b = byteMutation(bytes, r);
      bytes = b.bytes;
      steps.push(b.what);
      continue;
    }
    let decoded: IModel;
    try {
      decoded = onnx.ModelProto.decode(bytes);
    } catch {
      steps.push('(structured mutation skipped: bytes no longer decode)');
      continue;
    }
    const what = structuredMutation(decoded, r);
    if (what === null) {
      steps.push('(nothing to mutate)');
      continue;
    }
    try {
      bytes = onnx.ModelProto.encode(decoded).finish();
      steps.push(what);
    } catch (e) {
      steps.push(`(${what}: re-encode failed: ${(e as Error).message})`);
    }
  }
  return { model, bytes, mutation: steps.join('; ') };
}

// ---------------------------------------------------------------------------------------------
// One mutant, in-process

export interface CheckResult {
  outcome: 'ok' | 'user-error' | 'internal';
  stage: 'import' | 'infer' | 'run';
  message: string;
}

/** Largest tensor (elements) the run will create for inputs or declared intermediates. */
const MAX_RUN_ELEMENTS = 1 << 20;

function symbolsOfGraph(g: Graph): string[] {
  const out = new Set<string>();
  for (const v of g.inputs) for (const d of v.shape ?? []) if (typeof d === 'string') for (const f of d.split('*')) if (isSymbolName(f)) out.add(f);
  return [...out].sort();
}

/** Import → shape inference → CPU run (inputs small and random). Never throws. */
export function checkMutant(bytes: Uint8Array, opts: { baseDir: string; seed: number }): CheckResult {
  let stage: CheckResult['stage'] = 'import';
  try {
    const registry = createCoreRegistry();
    const model = importModel(bytes, { file: 'mutant.onnx', baseDir: opts.baseDir });
    const missing = unsupportedOps(model.graph, registry);
    if (missing.length) return { outcome: 'user-error', stage, message: `unsupported ops: ${missing.map((m) => m.op).join(', ')}` };
    stage = 'infer';
    const dims = Object.fromEntries(symbolsOfGraph(model.graph).map((s, i) => [s, 1 + (i % 3)]));
    inferShapes(model.graph, registry, { bindings: dims });
    stage = 'run';
    // Skip the run when a statically known tensor is larger than a small test should allocate.
    const values = [...model.graph.inputs, ...model.graph.nodes.flatMap((n) => n.outputs)];
    for (const v of values)
      if (v.shape && v.shape.every((d) => typeof d === 'number') && numel(v.shape as number[]) > MAX_RUN_ELEMENTS)
        return { outcome: 'ok', stage, message: `run skipped: ${v.name} has ${numel(v.shape as number[])} elements` };
    const feeds = randomInputs(model.graph, { seed: opts.seed, dims });
    runGraph(model.graph, feeds, { registry });
    return { outcome: 'ok', stage, message: '' };
  } catch (e) {
    if (e instanceof UserError) return { outcome: 'user-error', stage, message: e.message };
    const err = e instanceof Error ? e : new Error(String(e));
    const at = (err.stack ?? '').split('\n').find((l) => /^\s+at /.test(l))?.trim() ?? '';
    return { outcome: 'internal', stage, message: `${err.name}: ${err.message}${at ? ` (${at})` : ''}` };
  }
}

// ---------------------------------------------------------------------------------------------
// Worker protocol

interface Request {
  id: number;
  bytes: Uint8Array;
  baseDir: string;
  seed: number;
}
interface Reply {
  id: number;
  result: CheckResult;
}

/** The worker side: answers each Request with checkMutant's result. */
export function serveFuzzWorker(): void {
  if (!parentPort) throw new Error('serveFuzzWorker runs in a worker thread');
  const port = parentPort;
  port.on('message', (req: Request) => {
    const reply: Reply = { id: req.id, result: checkMutant(req.bytes, { baseDir: req.baseDir, seed: req.seed }) };
    port.postMessage(reply);
  });
  port.postMessage('ready');
}

/** file: URL of tsx's ESM register API, found from `from` (its `import` export, not the CJS one). */
function tsxEsmApi(from: string): string {
  const pkgFile = createRequire(from).resolve('tsx/package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
}

/** A restartable worker that checks one mutant at a time under a time limit. */
class MutantRunner {
  private worker?: Worker;
  private ready?: Promise<void>;
  private nextId = 0;
  restarts = 0;

  constructor(
    private readonly workerModule: string,
    private readonly memoryMb: number,
  ) {}

  private start(): Promise<void> {
    const url = pathToFileURL(this.workerModule).href;
    // A .ts module (tests, `tsx scripts/fuzz.ts`) needs tsx's loader inside the worker too.
    const register = this.workerModule.endsWith('.ts') ? `(await import(${JSON.stringify(tsxEsmApi(this.workerModule))})).register();` : '';
    const code = `(async () => { ${register} const m = await import(${JSON.stringify(url)}); m.serveFuzzWorker(); })().catch((e) => { console.error(e); process.exit(70); });`;
    const w = new Worker(code, { eval: true, resourceLimits: { maxOldGenerationSizeMb: this.memoryMb } });
    this.worker = w;
    this.ready = new Promise((resolve, reject) => {
      const onMsg = (m: unknown): void => {
        if (m === 'ready') {
          w.off('message', onMsg);
          resolve();
        }
      };
      w.on('message', onMsg);
      w.once('error', reject);
      w.once('exit', (c) => reject(new Error(`fuzz worker exited with code ${c} while starting`)));
    });
    return this.ready;
  }

  async check(bytes: Uint8Array, baseDir: string, seed: number, timeoutMs: number): Promise<{ outcome: Outcome; stage: string; message: string }> {
    if (!this.worker) await this.start();
    else await this.ready;
    const w = this.worker!;
    const id = this.nextId++;
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: { outcome: Outcome; stage: string; message: string }, kill: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        w.off('message', onMsg);
        w.off('error', onError);
        w.off('exit', onExit);
        if (kill) {
          this.worker = undefined;
          this.restarts++;
          void w.terminate();
        }
        resolve(r);
      };
      const onMsg = (m: Reply): void => {
        if (m && m.id === id) finish(m.result, false);
      };
      const onError = (e: Error): void => finish({ outcome: 'crash', stage: '?', message: `worker error: ${e.message}` }, true);
      const onExit = (c: number): void => finish({ outcome: 'crash', stage: '?', message: `worker exited with code ${c}` }, true);
      const timer = setTimeout(() => finish({ outcome: 'timeout', stage: '?', message: `no answer within ${timeoutMs} ms` }, true), timeoutMs);
      w.on('message', onMsg);
      w.once('error', onError);
      w.once('exit', onExit);
      w.postMessage({ id, bytes, baseDir, seed } satisfies Request);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// The fuzz loop

export interface FuzzOptions {
  models: readonly SeedModel[];
  iterations: number;
  seed: number;
  /** First iteration (to resume or shard a long run); default 0. */
  start?: number;
  /** Per-mutant time limit (default 10 s). */
  timeoutMs?: number;
  /** Where failing mutants are saved (`<model>-s<seed>-i<iteration>.onnx` + failures.json). */
  outDir?: string;
  /** Module exporting serveFuzzWorker (this file: src/verify/fuzz.ts or dist/verify/fuzz.js). */
  workerModule: string;
  /** Heap limit of the worker (default 1024 MB). */
  memoryMb?: number;
  onProgress?: (done: number, counts: Record<Outcome, number>) => void;
}

export interface FuzzFailure {
  seed: number;
  iteration: number;
  model: string;
  mutation: string;
  outcome: Outcome;
  stage: string;
  message: string;
  /** Saved mutant, when outDir was given. */
  file?: string;
}

export interface FuzzSummary {
  seed: number;
  iterations: number;
  counts: Record<Outcome, number>;
  /** Per stage for user errors (how deep the mutants got). */
  userErrorsByStage: Record<string, number>;
  failures: FuzzFailure[];
  seconds: number;
  modelsPerSecond: number;
  workerRestarts: number;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  if (opts.models.length === 0) throw new UserError('no seed models to fuzz');
  const runner = new MutantRunner(opts.workerModule, opts.memoryMb ?? 1024);
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const byStage: Record<string, number> = {};
  const failures: FuzzFailure[] = [];
  const t0 = performance.now();
  const start = opts.start ?? 0;
  if (opts.outDir) fs.mkdirSync(opts.outDir, { recursive: true });
  try {
    for (let i = start; i < start + opts.iterations; i++) {
      const { model, bytes, mutation } = mutantFor(opts.models, opts.seed, i);
      const r = await runner.check(bytes, model.baseDir, i, opts.timeoutMs ?? 10_000);
      counts[r.outcome]++;
      if (r.outcome === 'user-error') byStage[r.stage] = (byStage[r.stage] ?? 0) + 1;
      if (isFailure(r.outcome)) {
        const f: FuzzFailure = { seed: opts.seed, iteration: i, model: model.name, mutation, outcome: r.outcome, stage: r.stage, message: r.message };
        if (opts.outDir) {
          f.file = path.join(opts.outDir, `${model.name}-s${opts.seed}-i${i}.onnx`);
          fs.writeFileSync(f.file, bytes);
        }
        failures.push(f);
      }
      opts.onProgress?.(i - start + 1, counts);
    }
  } finally {
    await runner.close();
  }
  if (opts.outDir) fs.writeFileSync(path.join(opts.outDir, 'failures.json'), `${JSON.stringify(failures, null, 2)}\n`);
  const seconds = (performance.now() - t0) / 1000;
  return {
    seed: opts.seed,
    iterations: opts.iterations,
    counts,
    userErrorsByStage: byStage,
    failures,
    seconds,
    modelsPerSecond: opts.iterations / Math.max(seconds, 1e-9),
    workerRestarts: runner.restarts,
  };
}

/** Reads seed models: every `*.onnx` path given (or `model.onnx` inside a folder given). */
export function loadSeedModels(paths: readonly string[]): SeedModel[] {
  return paths.map((p) => {
    const file = fs.statSync(p).isDirectory() ? path.join(p, 'model.onnx') : p;
    const name = path.basename(file) === 'model.onnx' ? path.basename(path.dirname(file)) : path.basename(file, '.onnx');
    return { name, bytes: new Uint8Array(fs.readFileSync(file)), baseDir: path.dirname(path.resolve(file)) };
  });
}

/** One line per outcome, then the rate. */
export function formatFuzzSummary(s: FuzzSummary): string[] {
  const lines = [
    `fuzz seed ${s.seed}: ${s.iterations} mutants in ${s.seconds.toFixed(1)} s (${s.modelsPerSecond.toFixed(1)} models/s, ${s.workerRestarts} worker restarts)`,
    ...OUTCOMES.map((o) => `  ${o.padEnd(10)} ${s.counts[o]}`),
    `  user errors by stage: ${Object.entries(s.userErrorsByStage).sort().map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
  ];
  for (const f of s.failures.slice(0, 20)) lines.push(`FAIL ${f.outcome} ${f.model} seed ${f.seed} iteration ${f.iteration} [${f.mutation}] ${f.stage}: ${f.message}${f.file ? ` → ${f.file}` : ''}`);
  if (s.failures.length > 20) lines.push(`... and ${s.failures.length - 20} more failures`);
  return lines;
}
