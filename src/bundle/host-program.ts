/**
 * A device's host program in a wgsl bundle (src/codegen/host/program.ts), stored as
 *   device-<r>/host-program.json        the HostProgram as canonical JSON, tensors replaced by references
 *   device-<r>/constants.safetensors    the constant tensors that are not weights
 *
 * Constant tensors (HostBuffer.constant, HostTensorRef.host) are never in the JSON. Each becomes
 *   { "weight": name }   when it is byte-for-byte the device graph's initializer `name`, which
 *                        device-<r>/weights.safetensors already holds (so weights are stored once);
 *   { "tensor": key }    otherwise (host-folded values, lookup tables): tensor `key` of
 *                        constants.safetensors, keys `buffer/<id>` and `output/<index>`;
 *   { "strings": [...], "shape": [...] }  for a string tensor computed on the host (safetensors has
 *                        no string dtype; only graph outputs can be strings, never device buffers).
 * Kernel constants that JSON cannot hold (±Infinity, NaN, -0, e.g. a max-reduction's identity) are
 * written as strings (`"-Infinity"`) in the `v` of their `{ "k": "const" }` node and read back as
 * numbers. Every other field is the HostProgram as is.
 *
 * `readHostProgram` reads both files back through readBundle (every file checked against its
 * SHA-256 in manifest.json), so a loaded program is exactly the one partition compiled.
 * `decodeHostProgram` is its pure half (bytes in, no file system), which the browser entry uses on
 * fetched files (src/browser/bundle.ts).
 */
import { join } from 'node:path';
import type { HostBuffer, HostProgram, HostTensorRef } from '../codegen/host/program.js';
import { HOST_PROGRAM_FORMAT } from '../codegen/host/program.js';
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { encodeRaw } from '../onnx/tensor-file.js';
import { readFileSync } from 'node:fs';
import { canonicalJson, utf8 } from './canonical.js';
import { DEVICE_WEIGHTS_FILE } from './device-model.js';
import { readBundle } from './read.js';
import { concatParts, encodeSafetensors, parseSafetensors, type ParsedSafetensors } from './safetensors.js';
import { devicePath, MANIFEST_FILE } from './write.js';

export const HOST_PROGRAM_FILE = 'host-program.json';
export const HOST_CONSTANTS_FILE = 'constants.safetensors';

type TensorRef = { weight: string } | { tensor: string } | { strings: string[]; shape: number[] };

/** The two files of a device's host program (constants.safetensors is always written, maybe empty). */
export function encodeHostProgram(p: HostProgram, graph: Graph): { json: Uint8Array; constants: Uint8Array } {
  const weights = new Map(graph.initializers.filter((v) => v.constant).map((v) => [v.name, v.constant!]));
  const stored: { name: string; tensor: Tensor }[] = [];
  const ref = (t: Tensor, key: string, value: string): TensorRef => {
    if (t.dtype === 'string') return { strings: t.strings!.slice(), shape: [...t.shape] };
    const w = value === '' ? undefined : weights.get(value);
    if (w && w.dtype === t.dtype && sameShape(w.shape, t.shape)) {
      const wt = w.load();
      if (wt === t || bytesEqual(encodeRaw(wt), encodeRaw(t))) return { weight: value };
    }
    stored.push({ name: key, tensor: t });
    return { tensor: key };
  };
  const doc = {
    ...p,
    kernels: p.kernels.map((k) => mapConsts(k, encodeNumber)),
    buffers: p.buffers.map((b) => (b.constant ? { ...b, constant: ref(b.constant, `buffer/${b.id}`, b.value) } : b)),
    inputs: p.inputs.map((r) => tensorRefDoc(r, `input/${r.name}`)),
    outputs: p.outputs.map((r, k) => tensorRefDoc(r, `output/${k}`)),
  };
  function tensorRefDoc(r: HostTensorRef, key: string): unknown {
    return r.host ? { ...r, host: ref(r.host, key, '') } : r;
  }
  const json = utf8(canonicalJson(doc));
  const constants = concatParts(encodeSafetensors(stored, { format: HOST_PROGRAM_FORMAT, 'shardc.device': String(p.device) }).parts);
  return { json, constants };
}

/** Loads device `device`'s host program from a wgsl bundle (files checked against the manifest). */
export function readHostProgram(bundleDir: string, device: number): HostProgram {
  const b = readBundle(bundleDir);
  const entry = b.manifest.devices.find((d) => d.device === device);
  if (!entry) throw new UserError(`the bundle has no device ${device} (its mesh ${b.manifest.mesh.spec} has ${b.manifest.devices.length} devices)`, { file: bundleDir });
  const listed = new Set(b.manifest.files.map((f) => f.path));
  const jsonPath = devicePath(device, HOST_PROGRAM_FILE);
  if (!listed.has(jsonPath))
    throw new UserError(`the bundle has no host program for device ${device} (${MANIFEST_FILE} lists no ${jsonPath}; partition with --target wgsl)`, { file: bundleDir });
  const read = (path: string): Uint8Array | undefined => (listed.has(path) ? readFileSync(join(bundleDir, ...path.split('/'))) : undefined);
  return decodeHostProgram(read(jsonPath)!, device, read, join(bundleDir, ...jsonPath.split('/')));
}

/**
 * The pure half of readHostProgram (no file system: the browser entry fetches the bytes):
 * device `device`'s host-program.json bytes decoded, its tensor references resolved through
 * `file(path)` — the bytes of a bundle file by its manifest path (`device-<r>/weights.safetensors`,
 * `device-<r>/constants.safetensors`), undefined when the manifest does not list it. The caller
 * has checked every file's SHA-256. `file` names the JSON in messages.
 */
export function decodeHostProgram(jsonBytes: Uint8Array, device: number, bundleFile: (path: string) => Uint8Array | undefined, file: string): HostProgram {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(jsonBytes)) as Record<string, unknown>;
  } catch {
    throw new UserError(`${HOST_PROGRAM_FILE} is not valid JSON`, { file });
  }
  if (doc?.['format'] !== HOST_PROGRAM_FORMAT || doc['device'] !== device)
    throw new UserError(`not the host program of device ${device} (format ${JSON.stringify(doc?.['format'])}, this shardc reads ${HOST_PROGRAM_FORMAT})`, { file });
  for (const k of ['kernels', 'buffers', 'slots', 'inputs', 'outputs', 'steps'])
    if (!Array.isArray(doc[k])) throw new UserError(`${HOST_PROGRAM_FILE} has no ${k} list`, { file });

  const opened = new Map<string, ParsedSafetensors>();
  const open = (name: string): ParsedSafetensors => {
    const path = devicePath(device, name);
    let s = opened.get(path);
    if (!s) {
      const bytes = bundleFile(path);
      if (!bytes) throw new UserError(`${HOST_PROGRAM_FILE} refers to ${path}, which ${MANIFEST_FILE} does not list`, { file });
      s = parseSafetensors(bytes, path);
      opened.set(path, s);
    }
    return s;
  };
  const tensor = (r: unknown, what: string): Tensor => {
    const x = r as Partial<{ weight: string; tensor: string; strings: string[]; shape: number[] }>;
    const has = (name: string, s: ParsedSafetensors): boolean => s.entries.some((e) => e.name === name);
    if (typeof x?.weight === 'string') {
      const s = open(DEVICE_WEIGHTS_FILE);
      if (!has(x.weight, s)) throw new UserError(`${what} refers to weight ${JSON.stringify(x.weight)}, which ${DEVICE_WEIGHTS_FILE} does not hold`, { file });
      return s.tensor(x.weight);
    }
    if (typeof x?.tensor === 'string') {
      const s = open(HOST_CONSTANTS_FILE);
      if (!has(x.tensor, s)) throw new UserError(`${what} refers to ${JSON.stringify(x.tensor)}, which ${HOST_CONSTANTS_FILE} does not hold`, { file });
      return s.tensor(x.tensor);
    }
    if (Array.isArray(x?.strings) && Array.isArray(x.shape)) return new Tensor('string', x.shape, x.strings.slice());
    throw new UserError(`${what} has no weight, tensor or strings reference`, { file });
  };

  const buffers = (doc['buffers'] as (Omit<HostBuffer, 'constant'> & { constant?: unknown })[]).map((b, i): HostBuffer => {
    if (b.id !== i) throw new UserError(`buffer ${i} has id ${String(b.id)}`, { file });
    if (b.constant === undefined) return b as HostBuffer;
    const t = tensor(b.constant, `buffer ${i}`);
    if (Math.max(1, t.size) !== b.length) throw new UserError(`buffer ${i} holds ${b.length} elements but its constant has ${t.size}`, { file });
    return { ...b, constant: t };
  });
  const refs = (list: (Omit<HostTensorRef, 'host'> & { host?: unknown })[], what: string): HostTensorRef[] =>
    list.map((r) => (r.host === undefined ? (r as HostTensorRef) : { ...r, host: tensor(r.host, `${what} ${JSON.stringify(r.name)}`) }));
  return {
    format: HOST_PROGRAM_FORMAT,
    device,
    kernels: (doc['kernels'] as HostProgram['kernels']).map((k) => mapConsts(k, decodeNumber)),
    buffers,
    slots: doc['slots'] as HostProgram['slots'],
    inputs: refs(doc['inputs'] as HostTensorRef[], 'input'),
    outputs: refs(doc['outputs'] as HostTensorRef[], 'output'),
    steps: doc['steps'] as HostProgram['steps'],
  };
}

/**
 * Refuses inputs the host program was not compiled for: the names, dtypes and device-local shapes
 * are fixed when partitioning (manifest.json `bindings` holds the symbol values used).
 */
export function checkHostInputs(p: HostProgram, given: readonly { name: string; dtype: DType; shape: readonly number[] }[], bindings: Record<string, number> = {}): void {
  const byName = new Map(given.map((g) => [g.name, g]));
  const dims = Object.keys(bindings).length ? ` (compiled with ${Object.entries(bindings).map(([k, v]) => `${k}=${v}`).join(',')}; partition again with other --dim values to run other shapes)` : '';
  for (const want of p.inputs) {
    const got = byName.get(want.name);
    if (!got) throw new UserError(`device ${p.device} needs input ${JSON.stringify(want.name)}`, { tensor: want.name });
    if (got.dtype !== want.dtype) throw new UserError(`input is ${got.dtype} but the host program of device ${p.device} was compiled for ${want.dtype}`, { tensor: want.name });
    if (!sameShape(got.shape, want.shape))
      throw new UserError(`input has shape [${got.shape.join(',')}] but the host program of device ${p.device} was compiled for [${want.shape.join(',')}]${dims}`, { tensor: want.name });
  }
}

/** A copy of a kernel (any JSON-like tree) with `f` applied to the `v` of every `{ k: 'const' }` node. */
function mapConsts<T>(x: T, f: (v: unknown) => unknown): T {
  if (Array.isArray(x)) return x.map((e) => mapConsts(e, f)) as T;
  if (x === null || typeof x !== 'object') return x;
  const o = x as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = k === 'v' && o['k'] === 'const' ? f(v) : mapConsts(v, f);
  return out as T;
}

function encodeNumber(v: unknown): unknown {
  if (typeof v !== 'number') return v;
  if (Object.is(v, -0)) return '-0';
  return Number.isFinite(v) ? v : String(v);
}

function decodeNumber(v: unknown): unknown {
  return typeof v === 'string' && ['-0', 'NaN', 'Infinity', '-Infinity'].includes(v) ? Number(v) : v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
