/// <reference types="@webgpu/types" />
/**
 * A multi-device wgsl bundle (`shardc partition --target wgsl --mesh ...`) run in a page: every
 * logical device of the mesh on the page's one GPUDevice (WebGPUMeshSession with shareDevice, so
 * collectives are device-side copy kernels and a run is one command encoder).
 *
 * Only the ahead-of-time artefacts are fetched — manifest.json, plan.json and per device its
 * host-program.json, constants.safetensors and weights.safetensors — never the ONNX device models:
 * the host programs already hold every kernel, buffer and step. Each fetched file is checked
 * against its SHA-256 in manifest.json (crypto.subtle in the page) before it is decoded, so a page
 * runs exactly what partition wrote, as `shardc run` does (src/bundle/read.ts).
 */
import { checkManifest, checkPlan, manifestMesh, shardPlanFromRecord } from '../bundle/read.js';
import { decodeHostProgram, HOST_CONSTANTS_FILE } from '../bundle/host-program.js';
import { devicePath, MANIFEST_FILE, type Manifest, PLAN_FILE } from '../bundle/write.js';
import type { HostProgram } from '../codegen/host/program.js';
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { WebGPUMeshSession } from '../targets/webgpu/mesh-session.js';
import { type WebGPUDevice, acquireBrowserDevice } from '../targets/webgpu/gpu-device.js';

/** A tensor as plain data (the same shape as index.ts TensorData). */
interface PlainTensor {
  dtype: DType;
  shape: number[];
  data: ArrayLike<number>;
}

/** A wgsl bundle resident on the page's GPU. */
export interface BrowserBundle {
  /** The mesh (e.g. "dp=2,tp=2") and the adapter all its logical devices share. */
  readonly mesh: string;
  readonly adapter: string;
  /** The global inputs it was compiled for (symbols bound by the partition's --dim values). */
  readonly inputs: readonly { name: string; dtype: DType; shape: number[] }[];
  readonly outputs: readonly string[];
  /** GLOBAL inputs in (scattered per the plan), GLOBAL outputs back (assembled), plan order. */
  run(feeds: Readonly<Record<string, PlainTensor | Tensor>>): Promise<Record<string, PlainTensor>>;
  dispose(): void;
}

export interface FetchBundleOptions {
  /** The GPUDevice to run on (kept alive by dispose); by default navigator.gpu's, destroyed by dispose. */
  device?: WebGPUDevice;
  /** Time each step of a run (WebGPUMeshSession profile). */
  profile?: boolean;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // Web Crypto (the page's; Node 20 has it too): the lib has no DOM types here, hence the shape.
  const subtle = (globalThis as { crypto?: { subtle?: { digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer> } } }).crypto?.subtle;
  if (!subtle) throw new UserError('crypto.subtle is missing: the page must be a secure context (https or http://127.0.0.1) to check bundle files');
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Fetches bundle files by manifest path, each checked against its SHA-256. */
class BundleFetcher {
  private readonly sha = new Map<string, string>();

  constructor(
    readonly base: URL,
    manifest: Manifest,
  ) {
    for (const f of manifest.files) this.sha.set(f.path, f.sha256);
  }

  listed(path: string): boolean {
    return this.sha.has(path);
  }

  async get(path: string): Promise<Uint8Array> {
    const want = this.sha.get(path);
    if (want === undefined) throw new UserError(`${MANIFEST_FILE} does not list ${path}`, { file: String(this.base) });
    const bytes = await fetchBytes(new URL(path, this.base));
    if ((await sha256Hex(bytes)) !== want)
      throw new UserError(`bundle file ${path} does not match its SHA-256 in ${MANIFEST_FILE} (changed or corrupted)`, { file: String(this.base) });
    return bytes;
  }
}

async function fetchBytes(url: URL): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new UserError(`fetch failed: ${(e as Error).message}`, { file: String(url) });
  }
  if (!res.ok) throw new UserError(`fetch failed: HTTP ${res.status} ${res.statusText}`, { file: String(url) });
  return new Uint8Array(await res.arrayBuffer());
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new UserError(`not valid JSON`, { file });
  }
}

/**
 * Fetches the wgsl bundle at `bundleUrl` (a folder URL; a trailing '/' is added) and makes it
 * resident on one GPUDevice: all its host programs, constants and weights uploaded, pipelines
 * compiled. Any mesh runs (tp=1 included): logical devices share the one GPUDevice.
 */
export async function fetchBundle(bundleUrl: string | URL, opts: FetchBundleOptions = {}): Promise<BrowserBundle> {
  const href = String(bundleUrl);
  const base = new URL(href.endsWith('/') ? href : `${href}/`, (globalThis as { location?: { href: string } }).location?.href);
  const manifestUrl = String(new URL(MANIFEST_FILE, base));
  const manifest = checkManifest(parseJson(await fetchBytes(new URL(MANIFEST_FILE, base)), manifestUrl), manifestUrl);
  if (manifest.target !== 'wgsl') throw new UserError(`bundle is for target ${String(manifest.target)}; the browser runs wgsl bundles (partition with --target wgsl)`, { file: manifestUrl });
  const mesh = manifestMesh(manifest, manifestUrl);
  const files = new BundleFetcher(base, manifest);
  const record = checkPlan(parseJson(await files.get(PLAN_FILE), PLAN_FILE), String(new URL(PLAN_FILE, base)));
  const plan = shardPlanFromRecord(manifest, record, mesh);

  const devices = manifest.devices.slice().sort((a, b) => a.device - b.device);
  const hosts: HostProgram[] = [];
  for (const [d, entry] of devices.entries()) {
    if (entry.device !== d) throw new UserError(`${MANIFEST_FILE} has no device ${d}`, { file: manifestUrl });
    if (!entry.host || !files.listed(entry.host))
      throw new UserError(`device ${d} has no host program (partition with --target wgsl to run a bundle in the browser)`, { file: manifestUrl });
    const json = await files.get(entry.host);
    // The safetensors files a host program may refer to, fetched (and checked) up front.
    const side = new Map<string, Uint8Array>();
    for (const path of [entry.weights, devicePath(d, HOST_CONSTANTS_FILE)]) if (path && files.listed(path)) side.set(path, await files.get(path));
    hosts.push(decodeHostProgram(json, d, (path) => side.get(path), String(new URL(entry.host, base))));
  }

  const gpu = opts.device ?? (await acquireBrowserDevice());
  let session: WebGPUMeshSession;
  try {
    session = await WebGPUMeshSession.fromHostPrograms(hosts, mesh, plan, { devices: [gpu], shareDevice: true, profile: opts.profile });
  } catch (e) {
    if (!opts.device) gpu.destroy();
    throw e;
  }
  const bindings = manifest.bindings ?? {};
  const inputs = plan.graph.inputs.map((v) => ({
    name: v.name,
    dtype: v.dtype ?? 'float32',
    shape: (v.shape ?? []).map((x) => (typeof x === 'number' ? x : bindings[x as unknown as string] ?? -1)),
  }));
  const compiledWith = Object.entries(bindings).map(([k, v]) => `${k}=${v}`).join(',');
  let disposed = false;
  return {
    mesh: mesh.toString(),
    adapter: gpu.description,
    inputs,
    outputs: plan.graph.outputs.map((v) => v.name),
    async run(feeds) {
      if (disposed) throw new UserError('the bundle was disposed');
      const map = new Map<string, Tensor>();
      for (const want of inputs) {
        const t = feeds[want.name];
        if (!t) throw new UserError(`missing graph input`, { tensor: want.name });
        const x = t instanceof Tensor ? t : Tensor.from(t.dtype, t.shape, t.data);
        if (x.dtype !== want.dtype) throw new UserError(`input is ${x.dtype} but the bundle was compiled for ${want.dtype}`, { tensor: want.name });
        if (x.rank !== want.shape.length || x.shape.some((n, i) => want.shape[i] !== -1 && n !== want.shape[i]))
          throw new UserError(
            `input has shape [${x.shape.join(',')}] but the bundle was compiled for [${want.shape.join(',')}]${compiledWith ? ` (${compiledWith}; partition again with other --dim values)` : ''}`,
            { tensor: want.name },
          );
        map.set(want.name, x);
      }
      const r = await session.run(map);
      const out: Record<string, PlainTensor> = {};
      for (const v of plan.graph.outputs) {
        const t = r.outputs.get(v.name)!;
        out[v.name] = { dtype: t.dtype, shape: [...t.shape], data: t.data as ArrayLike<number> };
      }
      return out;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      session.destroy();
      if (!opts.device) gpu.destroy();
    },
  };
}
