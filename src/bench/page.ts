/**
 * The benchmark as it runs inside the page (bundled with esbuild by browser.ts, together with the
 * browser entry): shardc's `prepareModel` and onnxruntime-web — its default build (wasm execution
 * provider) and its WebGPU build (webgpu execution provider), loaded from the same local server —
 * each run the same model on the same CPU inputs: warm-up runs, then timed runs, CPU inputs in to
 * CPU outputs back, timed with performance.now(). The outputs of the last run come back for the
 * agreement check in Node. An engine that fails records its error instead of a time.
 */
import type * as OrtModule from 'onnxruntime-web';
import type { DType } from '../ir/dtype.js';
import { Tensor, prepareModel } from '../browser/index.js';
import type { Profile } from './profile.js';
import { median, timeRuns } from './stats.js';

export type PageEngine = 'shardc' | 'ort-wasm' | 'ort-webgpu';

/** A tensor as JSON (what crosses the page boundary). */
export interface PageTensor {
  name: string;
  dtype: DType;
  shape: number[];
  data: number[];
}

export interface PageBenchArgs {
  /** URL of the ONNX model (self-contained: no external data). */
  modelUrl: string;
  /** URL folder holding onnxruntime-web's dist files (ending in '/'). */
  ortBase: string;
  feeds: PageTensor[];
  warmup: number;
  runs: number;
  /** ort.env.wasm.numThreads. */
  numThreads: number;
  /** Also record one profiled shardc run after the timed runs. */
  profile: boolean;
  engines: PageEngine[];
  /** shardc's engine (default compiled) and kernel fusion (default on). */
  shardcEngine?: 'compiled' | 'interpretive';
  fuse?: boolean;
}

export interface EngineResult {
  engine: PageEngine;
  /** Milliseconds per timed run, in run order. */
  times: number[];
  medianMs: number | null;
  /** Outputs of the last timed run (graph output order). */
  outputs: PageTensor[];
  error?: string;
}

export interface PageBenchResult {
  /** shardc's adapter, in words. */
  adapter: string;
  /** shardc's runtime ('interpretive' or 'compiled'). */
  shardcEngine: string;
  numThreads: number;
  hardwareConcurrency: number;
  crossOriginIsolated: boolean;
  userAgent: string;
  engines: EngineResult[];
  profile?: Profile;
}

/** The page globals used here (typed locally: the project does not compile with the DOM library). */
const page = globalThis as unknown as {
  location: { href: string };
  navigator: { hardwareConcurrency: number; userAgent: string };
  crossOriginIsolated?: boolean;
};

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`fetch ${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

function ortTensor(ort: typeof OrtModule, t: PageTensor): OrtModule.Tensor {
  switch (t.dtype) {
    case 'float32':
      return new ort.Tensor('float32', Float32Array.from(t.data), t.shape);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(t.data), t.shape);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.shape);
    case 'bool':
      return new ort.Tensor('bool', Uint8Array.from(t.data, (v) => (v ? 1 : 0)), t.shape);
    default:
      throw new Error(`input ${t.name}: dtype ${t.dtype} is not fed to onnxruntime-web by the bench`);
  }
}

function fromOrt(name: string, t: OrtModule.Tensor): PageTensor {
  const data = t.data as ArrayLike<number | bigint>;
  return { name, dtype: t.type as DType, shape: t.dims.map(Number), data: Array.from(data, (v) => Number(v)) };
}

async function benchOrt(args: PageBenchArgs, engine: 'ort-wasm' | 'ort-webgpu', bytes: Uint8Array): Promise<EngineResult> {
  const file = engine === 'ort-wasm' ? 'ort.min.mjs' : 'ort.webgpu.min.mjs';
  const url = new URL(file, new URL(args.ortBase, page.location.href)).href;
  const ort = (await import(url)) as typeof OrtModule;
  ort.env.wasm.wasmPaths = new URL(args.ortBase, page.location.href).href;
  ort.env.wasm.numThreads = args.numThreads;
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [engine === 'ort-wasm' ? 'wasm' : 'webgpu'] });
  try {
    const feeds = Object.fromEntries(args.feeds.map((t) => [t.name, ortTensor(ort, t)]));
    const { times, last } = await timeRuns(() => session.run(feeds), args.warmup, args.runs);
    return { engine, times, medianMs: median(times), outputs: session.outputNames.map((n) => fromOrt(n, last[n]!)) };
  } finally {
    await session.release();
  }
}

/** Runs the engines in turn (shardc first); each on its own device or wasm instance. */
export async function runPageBench(args: PageBenchArgs): Promise<PageBenchResult> {
  const bytes = await fetchBytes(args.modelUrl);
  const result: PageBenchResult = {
    adapter: '',
    shardcEngine: '',
    numThreads: args.numThreads,
    hardwareConcurrency: page.navigator.hardwareConcurrency,
    crossOriginIsolated: page.crossOriginIsolated === true,
    userAgent: page.navigator.userAgent,
    engines: [],
  };
  const fail = (engine: PageEngine, e: unknown): EngineResult => ({ engine, times: [], medianMs: null, outputs: [], error: e instanceof Error ? e.message : String(e) });
  for (const engine of args.engines) {
    if (engine === 'shardc') {
      try {
        const model = await prepareModel(bytes, { name: args.modelUrl, engine: args.shardcEngine, fuse: args.fuse });
        result.adapter = model.adapter;
        result.shardcEngine = model.engine;
        try {
          // Tensors are built once, outside the timed runs (as the ORT feeds are).
          const feeds = Object.fromEntries(args.feeds.map((t) => [t.name, Tensor.from(t.dtype, t.shape, t.data)]));
          const { times, last } = await timeRuns(() => model.run(feeds), args.warmup, args.runs);
          const outputs = Object.entries(last).map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape], data: Array.from(t.data) }));
          result.engines.push({ engine, times, medianMs: median(times), outputs });
          if (args.profile) result.profile = (await model.profile(feeds)).profile;
        } finally {
          model.dispose();
        }
      } catch (e) {
        result.engines.push(fail(engine, e));
      }
    } else {
      try {
        result.engines.push(await benchOrt(args, engine, bytes));
      } catch (e) {
        result.engines.push(fail(engine, e));
      }
    }
  }
  return result;
}
