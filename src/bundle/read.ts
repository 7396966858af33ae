/**
 * Reading a bundle back (for `shardc run <bundle>` and `shardc explain`): the manifest, with every
 * listed file checked against its SHA-256; plan.json; the device programs (each device-<r>/model.onnx
 * imported with its weights from device-<r>/weights.safetensors through ONNX external data); and a
 * ShardPlan stand-in holding the global inputs and outputs with their layouts, which is what the
 * simulated runtime needs to scatter inputs and assemble outputs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../ir/errors.js';
import { Graph, Value } from '../ir/graph.js';
import { loadModel } from '../onnx/import.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import { DeviceMesh } from '../passes/sharding/mesh.js';
import type { ShardPlan } from '../passes/sharding/plan.js';
import { sha256Hex } from './canonical.js';
import { layoutFromRecord, type PlanRecord } from './plan-record.js';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, MANIFEST_FILE, type Manifest, PLAN_FILE } from './write.js';

export interface LoadedBundle {
  dir: string;
  manifest: Manifest;
  plan: PlanRecord & { model?: string };
  mesh: DeviceMesh;
}

function plainRelative(p: unknown): p is string {
  return typeof p === 'string' && p !== '' && !p.startsWith('/') && !p.includes('\\') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`cannot read the bundle's ${what}`, { file });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`the bundle's ${what} is not valid JSON`, { file });
  }
}

/** Checks parsed manifest.json (pure: the browser entry uses it on fetched JSON); `file` names it in messages. */
export function checkManifest(doc: unknown, file: string): Manifest {
  const manifest = doc as Manifest;
  if (manifest === null || typeof manifest !== 'object' || manifest.format !== BUNDLE_FORMAT)
    throw new UserError(`not a shardc bundle (${MANIFEST_FILE} does not say format "${BUNDLE_FORMAT}")`, { file });
  if (manifest.formatVersion !== BUNDLE_FORMAT_VERSION)
    throw new UserError(`bundle format version ${String(manifest.formatVersion)} is not supported (this shardc reads version ${BUNDLE_FORMAT_VERSION})`, { file });
  if (!Array.isArray(manifest.files) || !Array.isArray(manifest.devices) || !manifest.mesh || !Array.isArray(manifest.mesh.axes))
    throw new UserError(`${MANIFEST_FILE} is missing files, devices or mesh`, { file });
  for (const f of manifest.files) if (!plainRelative(f.path)) throw new UserError(`${MANIFEST_FILE} lists a file outside the bundle: ${JSON.stringify(f.path)}`, { file });
  return manifest;
}

/** The mesh of a checked manifest (one device entry per mesh device). */
export function manifestMesh(manifest: Manifest, file: string): DeviceMesh {
  const mesh = new DeviceMesh(manifest.mesh.axes.map((a) => ({ name: a.name, size: a.size })));
  if (manifest.devices.length !== mesh.deviceCount) throw new UserError(`${MANIFEST_FILE} lists ${manifest.devices.length} devices for mesh ${mesh}`, { file });
  return mesh;
}

/** Checks parsed plan.json (pure). */
export function checkPlan(doc: unknown, file: string): LoadedBundle['plan'] {
  const plan = doc as LoadedBundle['plan'];
  if (!plan || !Array.isArray(plan.values) || !Array.isArray(plan.collectives) || !Array.isArray(plan.inputs) || !Array.isArray(plan.outputs))
    throw new UserError(`${PLAN_FILE} is missing values, collectives, inputs or outputs`, { file });
  return plan;
}

/** Reads and checks a bundle directory (`verify`: compare every file with its SHA-256). */
export function readBundle(dir: string, opts: { verify?: boolean } = {}): LoadedBundle {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError('bundle directory does not exist', { file: dir });
  const mfile = join(dir, MANIFEST_FILE);
  if (!existsSync(mfile)) throw new UserError(`not a shardc bundle (no ${MANIFEST_FILE}; write one with shardc partition)`, { file: dir });
  const manifest = checkManifest(readJson(mfile, MANIFEST_FILE), mfile);
  if (opts.verify !== false)
    for (const f of manifest.files) {
      const p = join(dir, ...f.path.split('/'));
      if (!existsSync(p)) throw new UserError(`bundle file ${f.path} is missing`, { file: dir });
      if (sha256Hex(readFileSync(p)) !== f.sha256) throw new UserError(`bundle file ${f.path} does not match its SHA-256 in ${MANIFEST_FILE} (changed or corrupted)`, { file: dir });
    }
  const mesh = manifestMesh(manifest, mfile);
  const plan = checkPlan(readJson(join(dir, PLAN_FILE), PLAN_FILE), join(dir, PLAN_FILE));
  return { dir, manifest, plan, mesh };
}

/** Imports every device's program (weights load lazily from its safetensors file). */
export function loadBundlePrograms(b: LoadedBundle): DeviceProgram[] {
  if ((b.manifest as { noWeights?: boolean }).noWeights)
    throw new UserError('the bundle was written with --no-weights: it has no device models or weights to run (partition again without --no-weights)', { file: b.dir });
  return b.manifest.devices
    .slice()
    .sort((x, y) => x.device - y.device)
    .map((d) => {
      if (!plainRelative(d.model)) throw new UserError(`${MANIFEST_FILE} names a device model outside the bundle: ${JSON.stringify(d.model)}`, { file: b.dir });
      return { device: d.device, coords: d.coords.slice(), graph: loadModel(join(b.dir, ...d.model.split('/'))).graph };
    });
}

/** A ShardPlan holding only what running needs: the global inputs and outputs with their layouts. */
export function bundleShardPlan(b: LoadedBundle): ShardPlan {
  return shardPlanFromRecord(b.manifest, b.plan, b.mesh);
}

/** bundleShardPlan from parsed manifest.json and plan.json (pure: the browser entry uses it). */
export function shardPlanFromRecord(manifest: Pick<Manifest, 'strategy' | 'bindings'>, record: PlanRecord, mesh: DeviceMesh): ShardPlan {
  const graph = new Graph('bundle');
  const value = (r: PlanRecord['inputs'][number]): Value => {
    const v = new Value(r.name, r.dtype ?? undefined, r.shape ? r.shape.slice() : undefined);
    v.layout = layoutFromRecord(r.layout, mesh);
    return v;
  };
  graph.inputs = record.inputs.map(value);
  graph.outputs = record.outputs.map(value);
  return {
    graph,
    mesh,
    strategy: manifest.strategy,
    bindings: { ...manifest.bindings },
    collectives: record.collectives,
    seeds: new Map(),
  };
}
