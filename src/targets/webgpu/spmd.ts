/// <reference types="@webgpu/types" />
/**
 * The multi-device WebGPU runtime: one logical device per mesh device, each its own GPUDevice
 * (all from one GPU instance: Dawn gives one device per adapter object, so every extra device
 * comes from its own requestAdapter on the same instance — the same physical adapter). Every
 * device runs its local graph (from lowerPlan) through the kernel runner (codegen/run-graph.ts)
 * concurrently; collectives are staged through the host (collectives.ts) with the CPU runtime's
 * semantics, in lockstep: a collective completes once its whole group is there.
 *
 * Inputs are GLOBAL tensors scattered by the plan's input layouts; outputs are assembled back per
 * the output layouts (like the CPU simulator, src/targets/cpu/spmd.ts). Devices acquired here
 * are destroyed at the end, also on failure.
 */
import { UserError } from '../../ir/errors.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../ir/graph.js';
import type { OpDef, OpRegistry } from '../../ir/registry.js';
import { Tensor } from '../../ir/tensor.js';
import { LoweringTable, createLoweringTable } from '../../codegen/lower/index.js';
import { runGraphOnBackend } from '../../codegen/run-graph.js';
import type { DeviceProgram } from '../../passes/sharding/lower.js';
import type { DeviceMesh } from '../../passes/sharding/mesh.js';
import type { ShardPlan } from '../../passes/sharding/plan.js';
import { runCollective } from '../cpu/collectives.js';
import { assembleOutputs, scatterFeeds } from '../cpu/spmd.js';
import { WebGPUBackend } from './backend.js';
import { Rendezvous, StagingBackend, collectiveRows, describeCollective, groupOf, localCollective } from './collectives.js';
import { type WebGPUDevice, acquireDevice } from './device.js';

export interface WebGPUSpmdOptions {
  registry: OpRegistry;
  /** The plan the programs were lowered from (layouts of the global inputs and outputs). */
  plan: ShardPlan;
  /** Devices to run on, one per mesh device (kept alive); by default acquired and destroyed. */
  devices?: readonly WebGPUDevice[];
  /** Backends to reuse (pipeline caches survive between runs), one per mesh device. */
  backends?: readonly WebGPUBackend[];
  /** Lowering table (default: every family's rows); the collective rows are added to it. */
  table?: LoweringTable;
}

export interface WebGPUSpmdResult {
  outputs: Map<string, Tensor>;
  perDevice: Map<string, Tensor>[];
  /** Per device: kernel dispatches and bytes staged through the host for collectives. */
  stats: { device: number; dispatches: number; stagedBytes: number }[];
}

/**
 * `n` devices on the first adapter of one GPU instance. On failure the devices made so far are
 * destroyed.
 */
export async function acquireDevices(n: number): Promise<WebGPUDevice[]> {
  const first = await acquireDevice();
  const out: WebGPUDevice[] = [first];
  try {
    for (let r = 1; r < n; r++) {
      const adapter = await first.instance.requestAdapter();
      if (!adapter) throw new UserError(`cannot get a WebGPU adapter for logical device ${r} of ${n}`);
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
          maxBufferSize: adapter.limits.maxBufferSize,
        },
      });
      let destroyed = false;
      out.push({
        device,
        description: `${first.description} (logical device ${r})`,
        instance: first.instance,
        adapter,
        destroy: () => {
          if (!destroyed) device.destroy();
          destroyed = true;
        },
      });
    }
  } catch (e) {
    for (const d of out) d.destroy();
    throw e;
  }
  return out;
}

/** The lowering table with the collective rows (which the kernel targets run by staging). */
export function spmdLoweringTable(base: LoweringTable = createLoweringTable()): LoweringTable {
  const rows = base.list().filter((r) => r.domain !== COLLECTIVE_DOMAIN);
  return new LoweringTable([...rows, ...collectiveRows]);
}

/** The registry as device `d` sees it: a collective whose input lives on the host. */
function deviceRegistry(registry: OpRegistry, d: number, mesh: DeviceMesh): OpRegistry {
  const wrapped = Object.create(registry) as OpRegistry;
  wrapped.forNode = (node: Node): OpDef => {
    const def = registry.forNode(node);
    if (node.domain !== COLLECTIVE_DOMAIN) return def;
    return {
      ...def,
      evaluate: (ctx) => {
        const x = ctx.inputs[0];
        const group = groupOf(node, d, mesh);
        const local = x && localCollective(node, node.attrs, x, group.indexOf(d), group.length);
        if (local) return [local];
        // A group of one needs no other device (a tp=1 mesh).
        if (x && group.length === 1 && node.op !== 'Recv' && node.op !== 'Send') return runCollective(node.op, node.attrs, [x]);
        throw new UserError(`device ${d}: collective ${describeCollective(node)} on a value computed on the host is not supported on webgpu`, { node: node.label });
      },
    };
  };
  return wrapped;
}

const RECV_TOKEN = '__shardc_recv_token';

/**
 * The graph as the kernel runner runs it: a Recv without input gets a device-resident token input
 * (so it is dispatched, not folded on the host). The program's graph is not changed.
 */
function runnableGraph(g: Graph): { graph: Graph; token?: Value } {
  if (!g.nodes.some((n) => n.domain === COLLECTIVE_DOMAIN && n.op === 'Recv' && !n.inputs[0])) return { graph: g };
  const token = new Value(RECV_TOKEN, 'float32', [1]);
  const graph = Object.assign(Object.create(Object.getPrototypeOf(g) as object) as Graph, g);
  graph.inputs = [...g.inputs, token];
  graph.nodes = g.nodes.map((n) => {
    if (n.domain !== COLLECTIVE_DOMAIN || n.op !== 'Recv' || n.inputs[0]) return n;
    return Object.assign(Object.create(Object.getPrototypeOf(n) as object) as Node, n, { inputs: [token] });
  });
  return { graph, token };
}

export async function runSpmdWebGPU(
  programs: readonly DeviceProgram[],
  mesh: DeviceMesh,
  feeds: ReadonlyMap<string, Tensor>,
  opts: WebGPUSpmdOptions,
): Promise<WebGPUSpmdResult> {
  const { plan, registry } = opts;
  if (programs.length !== mesh.deviceCount)
    throw new UserError(`${programs.length} device programs for a mesh of ${mesh.deviceCount} devices (${mesh})`);
  programs.forEach((p, d) => {
    if (p.device !== d) throw new UserError(`device program ${d} is for device ${p.device}`);
  });
  // Local feeds (validated before any device is acquired).
  const localFeeds = scatterFeeds(programs, plan, mesh, feeds);

  const table = spmdLoweringTable(opts.table);
  const owned = opts.backends || opts.devices ? undefined : await acquireDevices(mesh.deviceCount);
  try {
    const backends =
      opts.backends ?? (opts.devices ?? owned)!.map((g, d) => new WebGPUBackend(g.device, `device ${d} (${g.description})`));
    if (backends.length !== mesh.deviceCount) throw new UserError(`${backends.length} WebGPU devices for a mesh of ${mesh.deviceCount} devices`);
    const rendezvous = new Rendezvous(mesh);
    const staging = backends.map((b, d) => new StagingBackend(b, d, mesh, rendezvous));
    const dispatches0 = backends.map((b) => b.stats.dispatches);
    const runs = programs.map(async (p, d) => {
      try {
        const { graph, token } = runnableGraph(p.graph);
        const f = localFeeds[d]!;
        if (token) f.set(token.name, Tensor.zeros('float32', [1]));
        const out = await runGraphOnBackend(graph, f, staging[d]!, { registry: deviceRegistry(registry, d, mesh), table });
        rendezvous.finish(d);
        return out;
      } catch (e) {
        rendezvous.finish(d, e as Error);
        throw e instanceof UserError && !/^device \d+/.test(e.reason) ? new UserError(`device ${d} failed: ${e.reason}`, e.location) : e;
      }
    });
    const settled = await Promise.allSettled(runs);
    // The first failure that is not just a consequence of another device's failure.
    const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
    if (failures.length) throw failures.find((e) => !/failed, so the devices waiting/.test(e.message)) ?? failures[0]!;
    const perDevice = settled.map((s) => (s as PromiseFulfilledResult<Map<string, Tensor>>).value);

    return {
      outputs: assembleOutputs(plan, perDevice, mesh),
      perDevice,
      stats: staging.map((s, d) => ({ device: d, dispatches: backends[d]!.stats.dispatches - dispatches0[d]!, stagedBytes: s.stagedBytes })),
    };
  } finally {
    for (const g of owned ?? []) g.destroy();
  }
}

