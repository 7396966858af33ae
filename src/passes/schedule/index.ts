/**
 * The scheduling pass on the lowered device programs (DESIGN.md: passes/schedule holds "pipeline
 * stages, overlap, liveness and memory plan"): every device graph's nodes are put in the overlap
 * order of overlap.ts — collectives issued as soon as their inputs are ready, independent compute
 * placed behind in-flight collectives — so the device models, host programs (record.ts walks
 * graph.nodes in order) and schedule.json written after it follow that order.
 *
 * Lockstep: collectives must stay in the same relative order on every member of a group. The
 * scheduler is deterministic, so devices with the same program shape and durations get the same
 * order; `checkCollectiveOrder` replays the programs' collectives the way the runtimes do (a group
 * collective runs when every member waits at it; a Recv takes its link's oldest message) and, when
 * some device would wait forever, every device is rescheduled with its collectives in the lowered
 * order (always lockstep-safe; only compute moves then), which is checked again.
 *
 * Durations: the cost model on the hardware file when given, else DEFAULT_HARDWARE (durations.ts).
 * Devices that share one graph object are scheduled once, and so are devices whose programs give the
 * scheduler equal inputs (producers, durations and streams per position: overlap.ts sameOverlapInput).
 * A device twin (passes/sharding/lower.ts deviceTwin: the same program but for the data of
 * constants no duration reads) takes its twin's input without timing its own nodes, gets the same
 * order, and stays a twin; its timing (deviceTiming) is its twin's.
 */
import { COLLECTIVE_DOMAIN, type Graph, type Node } from '../../ir/graph.js';
import { GROUP_ATTR } from '../../ir/ops/collective.js';
import type { OpRegistry } from '../../ir/registry.js';
import type { Hardware } from '../../hardware/hardware.js';
import { PEER_ATTR, deviceTwin, renewTwin } from '../sharding/lower.js';
import type { DeviceMesh } from '../sharding/mesh.js';
import { deviceNodeFlops } from '../../bundle/estimate.js';
import { DEFAULT_HARDWARE, nodeSeconds, streamOf } from './durations.js';
import { type OverlapInput, overlapInput, overlapPositions, sameOverlapInput, type Timing, timeSteps } from './overlap.js';

export { DEFAULT_HARDWARE, nodeSeconds, streamOf, type Stream } from './durations.js';
export { overlapOrder, producersOf, timeOrder, timeSteps, type StepTime, type Timing } from './overlap.js';

export interface ScheduleOptions {
  registry: OpRegistry;
  /** Durations from this hardware file (else DEFAULT_HARDWARE). */
  hardware?: Hardware;
}

export interface ScheduleSummary {
  /** True when at least one device program's node order changed. */
  reordered: boolean;
  /** Per device (by rank) whose graph changed order. */
  reorderedDevices: number[];
  /** True when the free collective order disagreed between group members and the lowered order was kept. */
  keptCommOrder: boolean;
}

/** Graphs whose node order this pass changed (for schedule.json's `order`). */
const reorderedGraphs = new WeakSet<Graph>();

/** Whether the scheduling pass changed this graph's node order. */
export function wasReordered(graph: Graph): boolean {
  return reorderedGraphs.has(graph);
}

/**
 * Puts every device graph's nodes in overlap order (in place). First with collectives issued as
 * soon as their inputs are ready; if the members of some group would then meet their collectives
 * in different orders (devices whose durations differ, e.g. uneven shards), every device is
 * scheduled again with its collectives kept in the lowered order, which is lockstep-safe. Either
 * way the result is checked (checkCollectiveOrder).
 */
export function scheduleDevicePrograms(
  programs: readonly { device: number; graph: Graph }[],
  mesh: DeviceMesh,
  opts: ScheduleOptions,
): ScheduleSummary {
  const hw = opts.hardware ?? DEFAULT_HARDWARE;
  const original = new Map<Graph, Node[]>();
  for (const p of programs) if (!original.has(p.graph)) original.set(p.graph, p.graph.nodes.slice());
  const durations = durationsOn(mesh, hw, opts.registry);
  const inputs = new Map<Graph, OverlapInput>();
  const twins = new Map<Graph, Graph>();
  for (const [g, nodes] of original) {
    const twin = deviceTwin(g);
    const shared = twin && inputs.get(twin);
    if (shared) twins.set(g, twin);
    inputs.set(g, shared || overlapInput(nodes, durations, streamOf));
  }
  const orderOf = new Map<Graph, number[]>();
  const apply = (keepCommOrder: boolean): void => {
    // Devices whose scheduler inputs are equal (every tp rank of a transformer) get the same order: computed once.
    const orders: { input: OverlapInput; order: number[] }[] = [];
    for (const [g, nodes] of original) {
      const input = inputs.get(g)!;
      let order = orders.find((o) => o.input === input || sameOverlapInput(o.input, input))?.order;
      if (!order) orders.push({ input, order: (order = overlapPositions(input, { keepCommOrder }, g.name)) });
      g.nodes = order.map((i) => nodes[i]!);
      orderOf.set(g, order);
    }
    // Twins put in the same order by position are twins still.
    for (const [g, twin] of twins) if (orderOf.get(g) === orderOf.get(twin)) renewTwin(g, twin);
  };
  apply(false);
  let keptCommOrder = false;
  try {
    checkCollectiveOrder(programs, mesh, { fifo: true });
  } catch {
    keptCommOrder = true;
    apply(true);
    for (const p of programs) {
      const before = original.get(p.graph)!.filter((n) => streamOf(n) === 'comm');
      const after = commSequence(p.graph);
      if (after.length !== before.length || after.some((n, j) => n !== before[j]))
        throw new Error(`scheduling changed the collective order of device ${p.device}: a bug in passes/schedule`);
    }
    checkCollectiveOrder(programs, mesh);
  }
  const reorderedDevices: number[] = [];
  for (const p of programs) {
    const before = original.get(p.graph)!;
    const changed = p.graph.nodes.some((n, i) => n !== before[i]);
    if (changed) reorderedGraphs.add(p.graph);
    else reorderedGraphs.delete(p.graph);
    if (changed) reorderedDevices.push(p.device);
  }
  return { reordered: reorderedDevices.length > 0, reorderedDevices: reorderedDevices.sort((a, b) => a - b), keptCommOrder };
}

/** The device graph's timing on `hw` (seconds) in its current order (cached until its node list changes). */
export function deviceTiming(graph: Graph, mesh: DeviceMesh, hw: Hardware, registry: OpRegistry): Timing {
  const twin = deviceTwin(graph);
  if (twin) return deviceTiming(twin, mesh, hw, registry);
  const c = timingCache.get(graph);
  if (c && c.nodes === graph.nodes && c.length === graph.nodes.length && c.mesh === mesh && c.hw === hw && c.registry === registry) return c.timing;
  const timing = timeSteps(graph.nodes, durationsOn(mesh, hw, registry), streamOf);
  timingCache.set(graph, { nodes: graph.nodes, length: graph.nodes.length, mesh, hw, registry, timing });
  return timing;
}

/**
 * Node durations on (mesh, hardware, registry), memoised per node: the pass, schedule.json and
 * report.json time the same programs (device graphs are not changed after lowering but for their
 * order).
 */
function durationsOn(mesh: DeviceMesh, hw: Hardware, registry: OpRegistry): (n: Node) => number {
  let byHw = durationCache.get(mesh);
  if (!byHw) durationCache.set(mesh, (byHw = new WeakMap()));
  let byRegistry = byHw.get(hw);
  if (!byRegistry) byHw.set(hw, (byRegistry = new WeakMap()));
  let memo = byRegistry.get(registry);
  if (!memo) byRegistry.set(registry, (memo = new WeakMap()));
  const m = memo;
  return (n) => {
    let d = m.get(n);
    if (d === undefined) m.set(n, (d = nodeSeconds(n, mesh, hw, registry, deviceNodeFlops)));
    return d;
  };
}

const durationCache = new WeakMap<DeviceMesh, WeakMap<Hardware, WeakMap<OpRegistry, WeakMap<Node, number>>>>();
const timingCache = new WeakMap<Graph, { nodes: Node[]; length: number; mesh: DeviceMesh; hw: Hardware; registry: OpRegistry; timing: Timing }>();

const commSequence = (g: Graph): Node[] => g.nodes.filter((n) => streamOf(n) === 'comm');

interface CommStep {
  node: Node;
  /** Group members (sorted by their order along the axis); Send: [self, peer], Recv: [peer, self]. */
  group: number[];
}

/** The group of a communication node on `device` (node `_group`, else the mesh group of its axis, else the Send/Recv peer). */
function commGroup(n: Node, device: number, mesh: DeviceMesh): number[] {
  if (n.op === 'Send' || n.op === 'Recv') {
    const peer = n.attrs.maybeInt(PEER_ATTR);
    if (peer === undefined) return [device];
    return n.op === 'Send' ? [device, peer] : [peer, device];
  }
  const g = n.attrs.get(GROUP_ATTR);
  if (g?.kind === 'ints') return g.value.map(Number);
  const axis = n.attrs.get('axis');
  if (axis?.kind === 'string' && mesh.hasAxis(axis.value)) return mesh.group(device, axis.value);
  return [device];
}

/**
 * Replays every device's communication steps in program order, the way the runtimes meet (a group
 * collective when each member waits at the same node and op; Send deposits, Recv takes the message
 * with its tag), and throws when the devices would be stuck — a collective order that differs
 * between members. `fifo`: a Recv must also take the oldest message of its link (NCCL-style
 * point-to-point matching by order), required of orders the scheduler changed.
 */
export function checkCollectiveOrder(programs: readonly { device: number; graph: Graph }[], mesh: DeviceMesh, opts: { fifo?: boolean } = {}): void {
  const byDevice = new Map<number, CommStep[]>();
  for (const p of programs)
    byDevice.set(
      p.device,
      p.graph.nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN && streamOf(n) === 'comm').map((n) => ({ node: n, group: commGroup(n, p.device, mesh) })),
    );
  const devices = [...byDevice.keys()].sort((a, b) => a - b);
  const pc = new Map(devices.map((d) => [d, 0]));
  // Per sender>receiver link, the tags of the messages in flight, oldest first.
  const mail = new Map<string, number[]>();
  const tag = (s: CommStep): number => s.node.attrs.maybeInt('tag') ?? 0;
  const at = (d: number): CommStep | undefined => byDevice.get(d)?.[pc.get(d)!];
  for (;;) {
    let moved = false;
    for (const d of devices) {
      for (let s = at(d); s; s = at(d)) {
        const p2p = s.node.op === 'Send' || s.node.op === 'Recv';
        if (!p2p && s.group.length > 1) {
          // Members without a program here (a partial list) are not waited for.
          const present = s.group.filter((r) => byDevice.has(r));
          if (present.some((r) => at(r)?.node.label !== s!.node.label || at(r)?.node.op !== s!.node.op)) break;
          for (const r of present) pc.set(r, pc.get(r)! + 1);
        } else if (s.node.op === 'Send' && s.group.length === 2) {
          const key = `${s.group[0]}>${s.group[1]}`;
          const queue = mail.get(key);
          if (queue) queue.push(tag(s));
          else mail.set(key, [tag(s)]);
          pc.set(d, pc.get(d)! + 1);
        } else if (s.node.op === 'Recv' && s.group.length === 2) {
          const queue = mail.get(`${s.group[0]}>${s.group[1]}`) ?? [];
          const pos = opts.fifo ? (queue[0] === tag(s) ? 0 : -1) : queue.indexOf(tag(s));
          if (pos < 0) break;
          queue.splice(pos, 1);
          pc.set(d, pc.get(d)! + 1);
        } else pc.set(d, pc.get(d)! + 1); // a collective over a group of one
        moved = true;
      }
    }
    if (devices.every((d) => pc.get(d)! >= byDevice.get(d)!.length)) return;
    if (!moved) {
      const waits = devices
        .filter((d) => at(d))
        .map((d) => `device ${d} waits at ${at(d)!.node.op} ${JSON.stringify(at(d)!.node.label)}`)
        .join('; ');
      throw new Error(`collective order differs between devices (they would wait forever): ${waits}`);
    }
  }
}
