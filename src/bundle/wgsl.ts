/**
 * The per-device files of a wgsl bundle, all from one ahead-of-time host program
 * (src/codegen/host: recordHostProgram, then planMemory):
 *   device-<r>/kernels.wgsl           exactly program.kernels, in order (first-dispatch order)
 *   device-<r>/host-program.json      the program (src/bundle/host-program.ts describes the format)
 *   device-<r>/constants.safetensors  its constant tensors that are not weights
 *   device-<r>/host.ts, host.js       the program as a readable TypeScript module and its JavaScript
 *                                     (src/codegen/host/generate.ts)
 * The program is recorded for the device graph's input shapes; a symbolic dim still left in them is
 * taken from the partition's --dim bindings, else 1 (sharding already requires bound input dims).
 * A node whose lowering needs a value computed on the device cannot be compiled ahead of time:
 * recordHostProgram rejects it with a UserError naming the node.
 *
 * In kernels.wgsl each kernel is its own shader module (entry point `main`), introduced by a
 * comment block with its identifier (the same as in host.ts `kernels`) and its first node's
 * original name escaped (commentSafe), so no model name can end a comment or inject code.
 *
 * Devices share work (a `WgslCompiler` per partition; the files are the same as compiling each
 * device on its own):
 * - a device whose graph equals an earlier device's but for constants the earlier recording never
 *   read (only bound as buffers: weights, rank offsets) reuses its recorded and fused program, with
 *   its own constants put in those buffers (`sameRecording`, which walks the two graphs side by
 *   side; record.ts RecordOptions.constantUse) — every tp rank of a transformer is recorded and
 *   fused once; a device twin of the earlier device (passes/sharding/lower.ts deviceTwin, found
 *   right after lowering: the same graph but for the data of some constants) needs no walk when
 *   that recording read none of the constants that differ and has no rank-dependent collective;
 * - fusion decisions are cached across layers and devices (src/codegen/fuse.ts FuseCache);
 * - each kernel is rendered once (memoised by kernel object), kernels.wgsl's sections once per program.
 */
import { createHash } from 'node:crypto';
import { toDeviceArray } from '../codegen/device-data.js';
import { FuseCache, fuseHostProgram } from '../codegen/fuse.js';
import { generateHostModules, kernelIdentifiers } from '../codegen/host/generate.js';
import { planMemory } from '../codegen/host/memory.js';
import type { HostProgram, HostStep } from '../codegen/host/program.js';
import { collectiveGroup, recordHostProgram } from '../codegen/host/record.js';
import type { Kernel } from '../codegen/kernel.js';
import { commentSafe, identifier } from '../codegen/names.js';
import { renderKernel } from '../codegen/wgsl/kernel.js';
import { COLLECTIVE_DOMAIN, Graph, type Value } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { LazyTensor, Tensor } from '../ir/tensor.js';
import type { DType } from '../ir/dtype.js';
import { type DeviceProgram, deviceTwin, sameConstantType, sameLocalGraph, twinDifferences } from '../passes/sharding/lower.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import { utf8 } from './canonical.js';
import { encodeHostProgram, HOST_CONSTANTS_FILE, HOST_PROGRAM_FILE } from './host-program.js';


export const DEVICE_KERNELS_FILE = 'kernels.wgsl';
export const HOST_MODULE_FILE = 'host.ts';
export const HOST_JS_FILE = 'host.js';

/** A WGSL identifier from a model name (src/codegen/names.ts). */
export function wgslIdentifier(name: string): string {
  return identifier(name, 'k');
}

export { commentSafe };

/** Rendered WGSL of a kernel, memoised by kernel object (kernels are never mutated). */
const rendered = new WeakMap<Kernel, string>();
function renderKernelOnce(k: Kernel): string {
  let text = rendered.get(k);
  if (text === undefined) rendered.set(k, (text = renderKernel(k).trimEnd()));
  return text;
}

/** The ahead-of-time program of one device: recorded, fused (unless `fuse: false`) and memory-planned. */
export function deviceHostProgram(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number>; fuse?: boolean }): HostProgram {
  return new WgslCompiler(opts).hostProgram(program);
}

/** Every wgsl file of one device, by file name. */
export function deviceWgslFiles(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number> }): Map<string, Uint8Array> {
  return new WgslCompiler(opts).files(program);
}

/** The kernels.wgsl text of a host program: section i is program.kernels[i]. */
export function hostKernelsWgsl(p: HostProgram, coords: readonly number[]): string {
  return `${kernelsHeader(p, coords)}${kernelSections(p)}`;
}

function kernelsHeader(p: HostProgram, coords: readonly number[]): string {
  return [
    `// shardc kernels for device ${p.device} (coordinates ${coords.join(',')}), in first-dispatch order.`,
    `// Each section is a separate WGSL shader module with entry point main; collectives run on the host.`,
  ].join('\n');
}

/** The kernel sections of kernels.wgsl (they depend on the kernels and steps only), memoised per kernels and steps. */
const sectionsOf = new WeakMap<readonly Kernel[], WeakMap<readonly HostStep[], string>>();
function kernelSections(p: HostProgram): string {
  let bySteps = sectionsOf.get(p.kernels);
  if (!bySteps) sectionsOf.set(p.kernels, (bySteps = new WeakMap()));
  let text = bySteps.get(p.steps);
  if (text !== undefined) return text;
  const ids = kernelIdentifiers(p);
  const first = new Map<number, { node: string; op: string }>();
  for (const s of p.steps) if (s.kind === 'dispatch' && !first.has(s.kernel)) first.set(s.kernel, s);
  const lines: string[] = [];
  p.kernels.forEach((k, i) => {
    const f = first.get(i);
    const node = f ? `// node ${commentSafe(f.node)} (${commentSafe(f.op).slice(1, -1)})` : '// not dispatched';
    lines.push('', `// ---- kernel ${i}: ${ids[i]} ----`, node, renderKernelOnce(k));
  });
  text = `${lines.map((l) => `\n${l}`).join('')}\n`; // each line after a newline: follows the header
  bySteps.set(p.steps, text);
  return text;
}

export interface WgslCompileOptions {
  registry: OpRegistry;
  mesh: DeviceMesh;
  bindings?: Record<string, number>;
  fuse?: boolean;
}

type Feed = { name: string; dtype: DType; shape: number[] };

/** A compiled program other devices may reuse (see the file header). */
interface SharedProgram {
  /** Names of the constants whose data its recording read: compared by content (sameRecording); and as a list. */
  read: Set<string>;
  readList: string[];
  /** The graph, feeds and device it was recorded for. */
  graph: Graph;
  feeds: readonly Feed[];
  device: number;
  /** The device program's graph (`graph` may be a view of it), and whether it has a rank-dependent collective. */
  origin: Graph;
  rankDependent: boolean;
  program: HostProgram;
  /** Its constants the recording never read, by tensor: the value name (another device puts its own in). */
  unread: Map<Tensor, string>;
}

/** Compiles the devices of one partition, sharing work between them (see the file header). */
export class WgslCompiler {
  private readonly fuseCache = new FuseCache();
  private readonly shared: SharedProgram[] = [];
  private readonly memo = new RecordingMemo();

  constructor(private readonly opts: WgslCompileOptions) {}

  /** The ahead-of-time program of one device: recorded, fused and memory-planned. */
  hostProgram(program: DeviceProgram): HostProgram {
    const feeds = program.graph.inputs
      .filter((v) => !v.constant)
      .map((v) => ({ name: v.name, dtype: v.dtype ?? 'float32', shape: (v.shape ?? []).map((d) => (typeof d === 'number' ? d : (this.opts.bindings?.[d] ?? 1))) }));
    return this.compileShared(program.graph, feeds, program.device, program.graph);
  }

  /** Every wgsl file of one device (kernels.wgsl, host-program.json, constants.safetensors, host.ts, host.js). */
  files(program: DeviceProgram): Map<string, Uint8Array> {
    const hp = this.hostProgram(program);
    const { json, constants } = encodeHostProgram(hp, program.graph);
    const host = generateHostModules(hp, { mesh: this.opts.mesh.toString(), device: program.device, coords: program.coords.slice(), kernelsFile: DEVICE_KERNELS_FILE });
    return new Map([
      [DEVICE_KERNELS_FILE, utf8(hostKernelsWgsl(hp, program.coords))],
      [HOST_PROGRAM_FILE, json],
      [HOST_CONSTANTS_FILE, constants],
      [HOST_MODULE_FILE, utf8(host.ts)],
      [HOST_JS_FILE, utf8(host.js)],
    ]);
  }

  /**
   * --no-weights: only kernels.wgsl. The program is recorded with every large constant (weights;
   * more than 4096 elements) bound as a device input instead of its data, so no weight is read;
   * small constants (shape tables, axes) are read as usual. The kernels are the same as with
   * weights unless a lowering would have folded a weight on the host.
   */
  kernelsOnly(p: DeviceProgram): Map<string, Uint8Array> {
    const g = p.graph;
    const weights = new Set<Value>();
    for (const v of g.initializers) if (v.constant && v.constant.size > 4096) weights.add(v);
    for (const n of g.nodes) for (const v of n.inputs) if (v?.constant && v.constant.size > 4096) weights.add(v);
    const view = new Graph(g.name);
    view.opsets = g.opsets;
    view.nodes = g.nodes;
    view.outputs = g.outputs;
    view.initializers = g.initializers.filter((v) => !weights.has(v));
    view.inputs = [...g.inputs, ...[...weights].filter((v) => !g.inputs.includes(v))];
    const feeds = view.inputs
      .filter((v) => !v.constant || weights.has(v))
      .map((v) => ({ name: v.name, dtype: v.dtype ?? 'float32', shape: (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1)) }));
    const hp = this.compileShared(view, feeds, p.device, g);
    return new Map([[DEVICE_KERNELS_FILE, utf8(hostKernelsWgsl(hp, p.coords))]]);
  }

  /**
   * Records and compiles `graph` (device program `origin`, or a view of it) for `device`, or reuses
   * an earlier device's program (see the file header).
   */
  private compileShared(graph: Graph, feeds: readonly Feed[], device: number, origin: Graph): HostProgram {
    // A twin of the recorded device records the same when the recording read none of the constants
    // whose data differ between them (and no collective depends on the rank): no walk needed.
    const twin = deviceTwin(origin);
    const differs = twinDifferences(origin);
    const twinRecords = (s: SharedProgram): boolean =>
      twin === s.origin && !s.rankDependent && sameFeeds(s.feeds, feeds) && !s.readList.some((name) => differs.has(name));
    for (const s of this.shared)
      if (twinRecords(s) || sameRecording(s, { graph, feeds, device }, this.opts.mesh, this.memo)) return withOwnConstants(s, graph, device);
    const use = new Map<Value, boolean>();
    const recorded = recordHostProgram(graph, feeds, { registry: this.opts.registry, device, mesh: this.opts.mesh, constantUse: use });
    const program = this.opts.fuse === false ? planMemory(recorded) : fuseHostProgram(recorded, {}, this.fuseCache);
    const read = new Set<string>();
    const unread = new Map<Tensor, string>();
    const names = new Set<string>();
    let shareable = true;
    for (const [v, wasRead] of use) {
      if (names.has(v.name)) shareable = false; // constants are matched by name
      names.add(v.name);
      if (wasRead) read.add(v.name);
      else {
        const t = v.constant!.load();
        if (unread.has(t)) shareable = false; // one tensor for two values: which one a buffer holds is ambiguous
        unread.set(t, v.name);
      }
    }
    const rankDependent = graph.nodes.some((n) => n.domain === COLLECTIVE_DOMAIN && RANK_DEPENDENT.has(n.op));
    if (shareable && recordable(graph, device, this.opts.mesh)) this.shared.push({ read, readList: [...read], graph, feeds, device, origin, rankDependent, program, unread });
    return program;
  }
}

const sameFeeds = (a: readonly Feed[], b: readonly Feed[]): boolean => a === b || exactJson(a) === exactJson(b);

/** The shared program for `device`, whose graph records the same (sameRecording): its own constants in the unread constants' places. */
function withOwnConstants(s: SharedProgram, graph: Graph, device: number): HostProgram {
  if (s.program.device === device) return s.program;
  const constants = new Map<string, Value>();
  for (const v of [...graph.inputs, ...graph.initializers]) if (v.constant) constants.set(v.name, v);
  for (const n of graph.nodes) for (const v of n.inputs) if (v?.constant) constants.set(v.name, v);
  const own = (t: Tensor | undefined): Tensor | undefined => {
    const name = t && s.unread.get(t);
    return name === undefined ? t : constants.get(name)!.constant!.load();
  };
  return {
    ...s.program,
    device,
    buffers: s.program.buffers.map((b) => {
      if (!b.constant) return b;
      const constant = own(b.constant)!;
      if (constant.dtype === 'int64' && constant !== b.constant) toDeviceArray(constant, b.value); // values must fit i32 (as recording checks)
      return { ...b, constant };
    }),
    outputs: s.program.outputs.map((r) => (r.host ? { ...r, host: own(r.host) } : r)),
  };
}

// ---- sharing a recording -------------------------------------------------------------------------

/** Exact JSON of a structure (every number spelled exactly, -0 and non-finite ones too). */
const exactJson = (x: unknown): string =>
  typeof x === 'string'
    ? JSON.stringify(x) // the replacer only changes numbers
    : JSON.stringify(x, (_k, v: unknown) => (typeof v === 'number' && (Object.is(v, -0) || !Number.isFinite(v)) ? `#${Object.is(v, -0) ? '-0' : String(v)}` : v));

/** Collectives whose recording depends on the device's rank, not only on its group. */
const RANK_DEPENDENT = new Set(['LocalShard', 'LocalPartial', 'Send', 'Recv']);

/**
 * Memo of the content keys of constants compared across one partition's device graphs (they share
 * replicated constants): tensors are never mutated once lowered.
 */
export class RecordingMemo {
  private readonly tensors = new WeakMap<Tensor, string>();

  /** A constant's content: dtype, shape and data (small tensors by their bytes, larger ones by SHA-256). */
  tensor(t: LazyTensor): string {
    const x = t.load();
    let key = this.tensors.get(x);
    if (key === undefined) {
      if (x.strings) key = `s${exactJson(x.strings)}`;
      else {
        const bytes = Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength);
        const content = bytes.length <= SMALL_TENSOR_BYTES ? `b${bytes.toString('base64')}` : createHash('sha256').update(bytes).digest('hex');
        key = `${x.dtype}[${x.shape.join(',')}]${content}`;
      }
      this.tensors.set(x, key);
    }
    return key;
  }
}

/** Tensors up to this many bytes are keyed by their bytes (base64) rather than by a SHA-256 of them. */
const SMALL_TENSOR_BYTES = 1024;

/** Whether a recording of `graph` on `device` can be shared at all: no subgraphs, every collective's group resolved. */
function recordable(graph: Graph, device: number, mesh: DeviceMesh): boolean {
  for (const node of graph.nodes) {
    for (const [, a] of node.attrs.entries()) if (a.kind === 'graph' || a.kind === 'graphs') return false;
    if (node.domain === COLLECTIVE_DOMAIN && node.op !== 'Send' && node.op !== 'Recv') {
      try {
        collectiveGroup(node, device, mesh);
      } catch {
        return false;
      }
    }
  }
  return true;
}

/**
 * Whether recording `b` gives the program recorded for `a` (a shared program) but for the device
 * number and the data of constants that recording did not read. The two graphs are walked side by
 * side (passes/sharding/lower.ts sameLocalGraph), values matched by first sight (graph inputs,
 * then nodes in order): equal fed inputs (names and shapes); nodes with the same op, domain,
 * label, attributes, inputs by position, outputs' names and types; constants by content where the recording read them (`a.read`) else by type;
 * each collective's resolved group, whether the device is in it, and for rank-dependent
 * collectives (LocalShard, LocalPartial, Send, Recv) the device; the same graph outputs. False for
 * a graph with subgraphs or a collective whose group cannot be resolved.
 */
export function sameRecording(
  a: { graph: Graph; feeds: readonly Feed[]; device: number; read: ReadonlySet<string> },
  b: { graph: Graph; feeds: readonly Feed[]; device: number },
  mesh: DeviceMesh,
  memo: RecordingMemo = new RecordingMemo(),
): boolean {
  if (!sameFeeds(a.feeds, b.feeds)) return false;
  return sameLocalGraph(a.graph, b.graph, {
    fed: new Set(a.feeds.map((f) => f.name)), // the same names in b
    constants: (x, cx, cy) => (a.read.has(x.name) ? cx === cy || memo.tensor(cx) === memo.tensor(cy) : sameConstantType(cx, cy)),
    collectives: (x, y) => {
      if (RANK_DEPENDENT.has(x.op) && a.device !== b.device) return false;
      if (x.op === 'Send' || x.op === 'Recv') return true;
      let groupA: number[];
      let groupB: number[];
      try {
        groupA = collectiveGroup(x, a.device, mesh);
        groupB = collectiveGroup(y, b.device, mesh);
      } catch {
        return false;
      }
      return groupA.length === groupB.length && groupA.every((r, k) => r === groupB[k]) && groupA.includes(a.device) === groupB.includes(b.device);
    },
  });
}
