/**
 * Overlap of communication with compute on one device: a list scheduler over the device graph's
 * node DAG with two in-order streams (compute and communication; durations.ts), and the timing of
 * any order on those streams (start/end per step, the critical path, hidden communication).
 *
 * Model. Each stream runs its steps in program order; a step starts when its stream is free and
 * every producer of its inputs has finished (a consumer waits for its producer, across streams).
 *
 * The list scheduler (deterministic; ties by original position):
 *  - A collective is issued as soon as its inputs are scheduled: it lands in program order right
 *    after its last producer, and starts when the comm stream is free and its inputs are ready.
 *    Collectives of independent work (micro-batches) so interleave. With `keepCommOrder` they
 *    keep their original relative order instead (lowering emits the same collective sequence on
 *    every member of a group, so that order is always lockstep-safe); index.ts uses it when the
 *    free order would differ between the members of a group.
 *  - The compute stream picks, among the ready compute nodes that can start now (inputs done),
 *    first those that feed the earliest not-yet-issued collective (k = that collective's position
 *    in the comm order; nodes that feed none have k = ∞), then by original position. Work that does
 *    not feed the next collective is held back until it is issued, so it runs while the collective
 *    is in flight. When nothing can start now the stream idles until the earliest ready node can
 *    (a collective it waits for finishes).
 * O((n + e) log n).
 *
 * Timing of a given order (`timeSteps`): the same two-stream rule over the order as it is, so the
 * scheduler's order re-timed gives the scheduler's times. The critical path is the chain that sets
 * the end time: from the last step to finish, repeatedly the predecessor (a producer or the
 * previous step on the same stream) whose end is this step's start.
 */
import type { Graph, Node } from '../../ir/graph.js';
import type { Stream } from './durations.js';

export interface StepTime {
  stream: Stream;
  /** Seconds from the start of the run. */
  start: number;
  end: number;
}

export interface Timing {
  /** Per node of the order, its stream and estimated start and end. */
  steps: StepTime[];
  /** End of the last step (the critical path's length). */
  makespan: number;
  /** Sum of all durations: one stream, no overlap. */
  serial: number;
  computeTime: number;
  commTime: number;
  /** Communication time during which the compute stream is busy too. */
  hiddenComm: number;
  /** Positions (in the order) of the steps on the critical path, first to last. */
  criticalPath: number[];
}

/** Producer positions of each node of `nodes` (unique, ascending), for nodes in a topological order. */
export function producersOf(nodes: readonly Node[]): number[][] {
  const pos = new Map<Node, number>();
  nodes.forEach((n, i) => pos.set(n, i));
  return nodes.map((n) => {
    const ps = new Set<number>();
    for (const v of n.inputs) {
      const p = v?.producer ? pos.get(v.producer) : undefined;
      if (p !== undefined) ps.add(p);
    }
    return [...ps].sort((a, b) => a - b);
  });
}

/** Times `nodes` (a topological order) on the two streams; see the file comment. */
export function timeSteps(nodes: readonly Node[], duration: (n: Node) => number, streamOf: (n: Node) => Stream): Timing {
  return timeOrder(producersOf(nodes), nodes.map(duration), nodes.map(streamOf));
}

/**
 * The two-stream timing of steps 0..n-1 in this order, given each step's producers (positions
 * before it), duration and stream. Shared with report.html's timeline (over schedule.json steps).
 */
export function timeOrder(preds: readonly (readonly number[])[], durations: readonly number[], streams: readonly Stream[]): Timing {
  const free: Record<Stream, number> = { compute: 0, comm: 0 };
  const last: Record<Stream, number> = { compute: -1, comm: -1 };
  const prevOnStream: number[] = [];
  const steps: StepTime[] = [];
  let serial = 0;
  let computeTime = 0;
  let commTime = 0;
  streams.forEach((stream, i) => {
    const d = Math.max(0, durations[i] ?? 0);
    let start = free[stream];
    for (const p of preds[i] ?? []) if (p < i) start = Math.max(start, steps[p]!.end);
    steps.push({ stream, start, end: start + d });
    prevOnStream.push(last[stream]);
    last[stream] = i;
    free[stream] = start + d;
    serial += d;
    if (stream === 'comm') commTime += d;
    else computeTime += d;
  });
  let makespan = 0;
  let tail = -1;
  steps.forEach((s, i) => {
    if (s.end >= makespan) {
      makespan = s.end;
      tail = i;
    }
  });
  const criticalPath: number[] = [];
  for (let i = tail; i >= 0; ) {
    criticalPath.push(i);
    const start = steps[i]!.start;
    if (start <= 0) break;
    // The binding predecessor: a producer ending at this start (the latest-positioned), else the stream's previous step.
    let next = -1;
    for (const p of preds[i] ?? []) if (p < i && steps[p]!.end === start) next = Math.max(next, p);
    if (next < 0 && prevOnStream[i]! >= 0 && steps[prevOnStream[i]!]!.end === start) next = prevOnStream[i]!;
    i = next;
  }
  criticalPath.reverse();
  return { steps, makespan, serial, computeTime, commTime, hiddenComm: hiddenTime(steps), criticalPath };
}

/** Length of comm intervals covered by compute intervals (each stream's intervals are disjoint and in order). */
function hiddenTime(steps: readonly StepTime[]): number {
  const comp = steps.filter((s) => s.stream === 'compute' && s.end > s.start);
  const comm = steps.filter((s) => s.stream === 'comm' && s.end > s.start);
  let total = 0;
  let j = 0;
  for (const c of comm) {
    while (j < comp.length && comp[j]!.end <= c.start) j++;
    for (let k = j; k < comp.length && comp[k]!.start < c.end; k++) total += Math.min(c.end, comp[k]!.end) - Math.max(c.start, comp[k]!.start);
  }
  return total;
}

/** A binary heap ordered by `less`. */
class Heap<T> {
  private readonly a: T[] = [];
  constructor(private readonly less: (x: T, y: T) => boolean) {}
  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(x: T): void {
    const a = this.a;
    a.push(x);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T {
    const a = this.a;
    const top = a[0]!;
    const end = a.pop()!;
    if (a.length) {
      a[0] = end;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export interface OverlapOptions {
  /**
   * Keep the collectives in their original relative order (the comm stream issues them in program
   * order). Otherwise a collective is issued as soon as its inputs are scheduled, so collectives of
   * independent work (micro-batches) interleave; the caller must then check that the members of
   * every group still agree on the order (index.ts does).
   */
  keepCommOrder?: boolean;
}

/** What the list scheduler reads of a device program: per node (position), its producers, duration, stream and whether it is a Recv. */
export interface OverlapInput {
  preds: number[][];
  durations: number[];
  streams: Stream[];
  /** Recv nodes on the comm stream: issued where the compute order reaches them (see overlapPositions). */
  recv: boolean[];
}

/** The scheduler's input for `nodes` (a topological order). */
export function overlapInput(nodes: readonly Node[], duration: (n: Node) => number, streamOf: (n: Node) => Stream): OverlapInput {
  const streams = nodes.map(streamOf);
  return {
    preds: producersOf(nodes),
    durations: nodes.map((n) => Math.max(0, duration(n))),
    streams,
    recv: nodes.map((n, i) => streams[i] === 'comm' && n.op === 'Recv'),
  };
}

/** Whether two scheduler inputs are equal (then so are their overlap orders: the scheduler is deterministic). */
export function sameOverlapInput(a: OverlapInput, b: OverlapInput): boolean {
  const n = a.streams.length;
  if (b.streams.length !== n) return false;
  for (let i = 0; i < n; i++) {
    if (a.streams[i] !== b.streams[i] || a.durations[i] !== b.durations[i] || a.recv[i] !== b.recv[i]) return false;
    const pa = a.preds[i]!;
    const pb = b.preds[i]!;
    if (pa.length !== pb.length) return false;
    for (let j = 0; j < pa.length; j++) if (pa[j] !== pb[j]) return false;
  }
  return true;
}

/**
 * The overlap order of `graph.nodes` (which must be topologically ordered): a new array of the
 * same nodes, and its timing. The graph is not changed.
 */
export function overlapOrder(
  graph: Graph,
  duration: (n: Node) => number,
  streamOf: (n: Node) => Stream,
  opts: OverlapOptions = {},
): { nodes: Node[]; timing: Timing } {
  const nodes = graph.nodes;
  const input = overlapInput(nodes, duration, streamOf);
  const ordered = overlapPositions(input, opts, graph.name).map((i) => nodes[i]!);
  return {
    nodes: ordered,
    // Timed on demand (the pass itself needs the order only).
    get timing(): Timing {
      const durOf = new Map(nodes.map((n, i) => [n, input.durations[i]!]));
      return timeSteps(ordered, (n) => durOf.get(n)!, streamOf);
    },
  };
}

/** The list scheduler of the file comment on a scheduler input: the overlap order as positions of the input's nodes. */
export function overlapPositions(input: OverlapInput, opts: OverlapOptions = {}, name = 'graph'): number[] {
  const { preds, durations: dur, streams: stream, recv: lazy } = input;
  const count = stream.length;
  const succs: number[][] = stream.map(() => []);
  preds.forEach((ps, i) => ps.forEach((p) => succs[p]!.push(i)));

  // Comm order = original order of the comm nodes; k = earliest comm position a compute node feeds.
  const commPos = new Array<number>(count).fill(-1);
  const comms: number[] = [];
  for (let i = 0; i < count; i++) if (stream[i] === 'comm') commPos[i] = comms.push(i) - 1;
  const k = new Array<number>(count).fill(Infinity);
  for (let i = count - 1; i >= 0; i--)
    for (const s of succs[i]!) k[i] = Math.min(k[i]!, stream[s] === 'comm' ? commPos[s]! : k[s]!);

  const remaining = preds.map((ps) => ps.length);
  const readyAt = new Array<number>(count).fill(0); // max end of the producers scheduled so far
  const end = new Array<number>(count).fill(0);
  const order: number[] = [];
  const byPriority = (x: number, y: number): boolean => k[x]! < k[y]! || (k[x] === k[y] && x < y);
  const byReadiness = (x: number, y: number): boolean => readyAt[x]! < readyAt[y]! || (readyAt[x] === readyAt[y] && byPriority(x, y));
  const waiting = new Heap<number>(byReadiness); // ready compute nodes, by when their inputs are done
  const startable = new Heap<number>(byPriority); // ready compute nodes whose inputs are done by `free.compute`
  const readyComms = new Heap<number>((x, y) => x < y); // comm nodes whose inputs are scheduled (free comm order)
  const free = { compute: 0, comm: 0 };
  let nextComm = 0;
  // A Recv waits for its peer's Send, not for anything on this device: rather than at time 0 it is
  // issued where the compute order reaches it (by the same priority as compute), so a runtime that
  // blocks on it does not wait for a later micro-batch before computing this one.
  const released = new Array<boolean>(count).fill(false);

  const place = (i: number, start: number): void => {
    end[i] = start + dur[i]!;
    order.push(i);
    for (const s of succs[i]!) {
      readyAt[s] = Math.max(readyAt[s]!, end[i]!);
      if (--remaining[s]! > 0) continue;
      if (stream[s] === 'compute') waiting.push(s);
      else readyComms.push(s);
    }
  };
  const issue = (c: number): void => {
    place(c, Math.max(free.comm, readyAt[c]!));
    free.comm = end[c]!;
  };
  const issueComms = (): void => {
    if (opts.keepCommOrder) {
      for (let c = comms[nextComm]; c !== undefined && remaining[c] === 0 && (!lazy[c] || released[c]); c = comms[nextComm]) {
        nextComm++;
        issue(c);
      }
      return;
    }
    while (readyComms.size) issue(readyComms.pop());
  };
  for (let i = 0; i < count; i++) {
    if (remaining[i] !== 0) continue;
    if (stream[i] === 'compute' || lazy[i]) waiting.push(i);
    else readyComms.push(i);
  }
  issueComms();
  while (order.length < count) {
    while (waiting.size && readyAt[waiting.peek()!]! <= free.compute) startable.push(waiting.pop());
    if (!startable.size) {
      if (!waiting.size) throw new Error(`overlap scheduler stuck after ${order.length} of ${count} nodes of ${name}: the node list is not topologically ordered`);
      free.compute = readyAt[waiting.peek()!]!; // idle until the earliest ready node can start
      continue;
    }
    const i = startable.pop();
    if (lazy[i]) {
      released[i] = true;
      if (!opts.keepCommOrder) issue(i);
      issueComms();
      continue;
    }
    place(i, free.compute);
    free.compute = end[i]!;
    issueComms();
  }
  return order;
}
