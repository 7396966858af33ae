/// <reference types="@webgpu/types" />
/**
 * The browser entry (ESM, bundled for a page by examples/browser/server.ts): imports an ONNX model
 * from bytes — a model file, or a single-device bundle's device model with its weights, fetched
 * over HTTP — and runs it with the WebGPU runtime on navigator.gpu. Nothing here reads files:
 * Node built-ins that the importer's file paths use are stubbed out of the browser bundle, and
 * external data is inlined from fetched bytes before import. A multi-device wgsl bundle runs through
 * `fetchBundle` (bundle.ts): its ahead-of-time host programs, all logical devices on one GPUDevice.
 */
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import type { OpRegistry } from '../ir/registry.js';
import { Tensor } from '../ir/tensor.js';
import { type Model, importModel, unsupportedOps } from '../onnx/import.js';
import { decodeModelProto, onnx } from '../onnx/proto.js';
import { defaultPipeline } from '../passes/manager.js';
import { runGraphOnBackend } from '../codegen/run-graph.js';
import { WebGPUBackend } from '../targets/webgpu/backend.js';
import { type WebGPUDevice, acquireBrowserDevice } from '../targets/webgpu/gpu-device.js';
import { prepareGraph } from '../bench/prepared.js';
import type { Profile } from '../bench/profile.js';

export { Tensor, UserError, acquireBrowserDevice, type Model, type Profile, type WebGPUDevice };
export { type BrowserBundle, type FetchBundleOptions, fetchBundle } from './bundle.js';

/** A tensor as plain data (what crosses a page boundary or comes from user code). */
export interface TensorData {
  dtype: DType;
  shape: number[];
  data: ArrayLike<number>;
}

/** Imports ONNX ModelProto bytes (no external data: see `inlineExternalData`). */
export function importModelBytes(bytes: Uint8Array, name = 'model.onnx'): Model {
  return importModel(bytes, { file: name, baseDir: '.' });
}

async function fetchBytes(url: string | URL): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new UserError(`fetch failed: HTTP ${res.status} ${res.statusText}`, { file: String(url) });
  return new Uint8Array(await res.arrayBuffer());
}

/** Fetches and imports a self-contained ONNX model. */
export async function fetchModel(url: string | URL): Promise<Model> {
  return importModelBytes(await fetchBytes(url), String(url));
}

/**
 * Rewrites every initializer stored as ONNX external data into inline raw_data, taking the bytes
 * from `files` (external data location → that file's bytes); returns the re-encoded model.
 */
export function inlineExternalData(modelBytes: Uint8Array, files: Readonly<Record<string, Uint8Array>>, name = 'model.onnx'): Uint8Array {
  const proto = decodeModelProto(modelBytes, { file: name, maxDepth: 100 });
  for (const t of proto.graph?.initializer ?? []) {
    if (!(t.externalData?.length ?? 0)) continue;
    const kv = new Map(t.externalData!.map((e) => [e.key ?? '', e.value ?? '']));
    const location = kv.get('location') ?? '';
    const file = files[location];
    if (!file) throw new UserError(`external data file ${JSON.stringify(location)} was not fetched`, { file: name, tensor: t.name ?? undefined });
    const offset = Number(kv.get('offset') ?? '0');
    const length = kv.has('length') ? Number(kv.get('length')) : file.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= file.length))
      throw new UserError(`external data range ${offset}+${length} lies outside ${location} (${file.length} bytes)`, { file: name, tensor: t.name ?? undefined });
    t.rawData = file.subarray(offset, offset + length);
    t.externalData = [];
    t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  }
  return onnx.ModelProto.encode(proto).finish();
}

interface BundleManifest {
  target?: string;
  devices?: { device: number; model: string }[];
}

/**
 * Fetches a single-device bundle (`shardc partition --mesh tp=1 --target wgsl`) from `bundleUrl`
 * (a folder URL ending in '/'): its manifest, device model and the weight files it references.
 */
export async function fetchBundleModel(bundleUrl: string | URL): Promise<Model> {
  const base = new URL(String(bundleUrl), (globalThis as { location?: { href: string } }).location?.href);
  const manifest = JSON.parse(new TextDecoder().decode(await fetchBytes(new URL('manifest.json', base)))) as BundleManifest;
  const devices = manifest.devices ?? [];
  if (devices.length !== 1) throw new UserError(`the browser runs single-device bundles; this one has ${devices.length} devices`, { file: String(base) });
  const modelUrl = new URL(devices[0].model, base);
  const modelBytes = await fetchBytes(modelUrl);
  const proto = decodeModelProto(modelBytes, { file: String(modelUrl), maxDepth: 100 });
  const files: Record<string, Uint8Array> = {};
  for (const t of proto.graph?.initializer ?? [])
    for (const e of t.externalData ?? [])
      if (e.key === 'location' && e.value && !(e.value in files)) files[e.value] = await fetchBytes(new URL(e.value, modelUrl));
  return importModelBytes(inlineExternalData(modelBytes, files, String(modelUrl)), String(modelUrl));
}

/** A model prepared for running on one WebGPU device of the page (pipelines cached across runs). */
export class BrowserSession {
  private constructor(
    readonly graph: Graph,
    readonly gpu: WebGPUDevice,
    private readonly backend: WebGPUBackend,
    private readonly registry: OpRegistry,
    private readonly ownsDevice: boolean,
  ) {}

  /** Optimises `model`'s graph (the default pass pipeline) and acquires navigator.gpu's device. */
  static async create(model: Model, opts: { device?: WebGPUDevice } = {}): Promise<BrowserSession> {
    const registry = createCoreRegistry();
    const missing = unsupportedOps(model.graph, registry);
    if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: model.file });
    defaultPipeline({ registry }).run(model.graph);
    const gpu = opts.device ?? (await acquireBrowserDevice());
    return new BrowserSession(model.graph, gpu, new WebGPUBackend(gpu.device, gpu.description), registry, !opts.device);
  }

  /** Runs the graph on the device; outputs by name, in graph output order. */
  async run(feeds: Readonly<Record<string, TensorData>>): Promise<Record<string, TensorData>> {
    const map = new Map<string, Tensor>();
    for (const [name, t] of Object.entries(feeds)) map.set(name, Tensor.from(t.dtype, t.shape, t.data));
    const out = await runGraphOnBackend(this.graph, map, this.backend, { registry: this.registry });
    const result: Record<string, TensorData> = {};
    for (const [name, t] of out) result[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data as ArrayLike<number> };
    return result;
  }

  destroy(): void {
    if (this.ownsDevice) this.gpu.destroy();
  }
}

/** One-shot: runs `model` once on a fresh device of the page, destroys it. */
export async function runModel(model: Model, feeds: Readonly<Record<string, TensorData>>): Promise<Record<string, TensorData>> {
  const session = await BrowserSession.create(model);
  try {
    return await session.run(feeds);
  } finally {
    session.destroy();
  }
}

/** A model ready for timed runs on the page's GPU (see src/bench/prepared.ts). */
export interface PreparedBrowserModel {
  /** 'interpretive' (kernel runner) or 'compiled' (host program session). */
  readonly engine: string;
  readonly adapter: string;
  /** CPU inputs in, CPU outputs back (graph output order). */
  run(feeds: Readonly<Record<string, TensorData | Tensor>>): Promise<Record<string, TensorData>>;
  /** One profiled run: outputs and per-kernel times. */
  profile(feeds: Readonly<Record<string, TensorData | Tensor>>): Promise<{ outputs: Record<string, TensorData>; profile: Profile }>;
  dispose(): void;
}

/**
 * Imports ONNX bytes, optimises the graph (default pass pipeline) and prepares it on the page's
 * GPU (or `opts.device`) for repeated runs — the single entry point `shardc bench --browser` times.
 * The compiled engine (default) records a host program for the input shapes of the first run.
 */
export async function prepareModel(
  bytes: Uint8Array,
  opts: { device?: WebGPUDevice; name?: string; engine?: 'compiled' | 'interpretive'; fuse?: boolean } = {},
): Promise<PreparedBrowserModel> {
  const model = importModelBytes(bytes, opts.name);
  const registry = createCoreRegistry();
  const missing = unsupportedOps(model.graph, registry);
  if (missing.length) throw new UserError(`unsupported ops: ${missing.map((m) => m.op).join(', ')}`, { file: model.file });
  defaultPipeline({ registry }).run(model.graph);
  const gpu = opts.device ?? (await acquireBrowserDevice());
  const prepared = await prepareGraph(model.graph, gpu, { registry, ownsDevice: !opts.device, engine: opts.engine, fuse: opts.fuse });
  const toMap = (feeds: Readonly<Record<string, TensorData | Tensor>>): Map<string, Tensor> =>
    new Map(Object.entries(feeds).map(([name, t]) => [name, t instanceof Tensor ? t : Tensor.from(t.dtype, t.shape, t.data)]));
  const toRecord = (out: Map<string, Tensor>): Record<string, TensorData> =>
    Object.fromEntries([...out].map(([name, t]) => [name, { dtype: t.dtype, shape: [...t.shape], data: t.data as ArrayLike<number> }]));
  return {
    engine: prepared.engine,
    adapter: prepared.adapter,
    run: async (feeds) => toRecord(await prepared.run(toMap(feeds))),
    async profile(feeds) {
      const r = await prepared.profile(toMap(feeds));
      return { outputs: toRecord(r.outputs), profile: r.profile };
    },
    dispose: () => prepared.dispose(),
  };
}
