/**
 * Stage programs: the micro-batch plan (one micro-batch, sharded on the other mesh axes, stages
 * assigned) → the global MPMD graph of the whole batch (see index.ts for the design):
 *
 *   stage s:  [split of each batch input stage s reads]
 *             micro-batch 0: its nodes, Recv before the first reader of a value from an earlier
 *                            stage, Send right after the producer of a value a later stage reads
 *             micro-batch 1: ...
 *             [merge of each graph output stage s produces]
 *
 * Copies of a node for micro-batch i are named `<name>.mb<i>` (values likewise; no suffix with one
 * micro-batch); weights and other constants are shared by the copies. Every node gets node.meta
 * `pipeline.stage` (and `pipeline.micro_batch` for the copies).
 */
import { Attrs } from '../../../ir/attrs.js';
import { dtypeToOnnx } from '../../../ir/dtype.js';
import { UserError } from '../../../ir/errors.js';
import { COLLECTIVE_DOMAIN, Graph, Node, Value } from '../../../ir/graph.js';
import { type Layout, type Placement, formatLayout } from '../../../ir/layout.js';
import { LazyTensor, Tensor } from '../../../ir/tensor.js';
import { hasSubgraph } from '../../util.js';
import { formatCandidate } from '../check-rule.js';
import {
  type CollectiveRecord,
  PIPELINE_MICRO_BATCH_META,
  PIPELINE_STAGE_META,
  type PipelineInfo,
  type ShardPlan,
  isCollective,
} from '../plan.js';
import { fullLayout, localBytes } from '../reshard.js';
import type { Candidate } from '../rule.js';
import { batchFactor, viewLayout } from './micro-batches.js';
import { forwardClocks } from './schedule.js';
import type { StageAssignment } from './stages.js';

export interface StageProgramsInput {
  /** The plan of one micro-batch (every value replicated on `axis`). */
  inner: ShardPlan;
  axis: string;
  assignment: StageAssignment;
  microBatches: number;
  /** The batch split into micro-batches (absent with one micro-batch and no batch symbol). */
  batch?: { symbol: string; size: number; microBatchSize: number };
  /** Names of the inner graph's inputs whose dim 0 is the batch. */
  batchInputs: ReadonlySet<string>;
  /** Per graph output name: whether its declared dim 0 is the batch symbol ('unknown': not declared). */
  outputDims: ReadonlyMap<string, 'batch' | 'other' | 'unknown'>;
  /** Bindings with the global batch (recorded in the plan). */
  bindings: Record<string, number>;
}

const int = (value: number) => ({ kind: 'int' as const, value });
const ints = (value: number[]) => ({ kind: 'ints' as const, value });
const str = (value: string) => ({ kind: 'string' as const, value });

export function buildStagePrograms(input: StageProgramsInput): ShardPlan {
  const { inner, axis, assignment, microBatches: M } = input;
  const G = inner.graph;
  const mesh = inner.mesh;
  const P = assignment.stages;
  const stageOf = (n: Node): number => assignment.stageOf.get(n)!;
  for (const n of G.nodes)
    if (hasSubgraph(n)) throw new UserError(`strategy pipeline does not support nodes with subgraphs (If, Loop, Scan) yet`, { node: n.label });

  const NG = new Graph(G.name);
  NG.opsets = { ...G.opsets };
  for (const [k, v] of G.meta) NG.meta.set(k, v);
  NG.initializers = G.initializers.slice();

  const valueNames = new Set<string>();
  const nodeNames = new Set<string>();
  const fresh = (set: Set<string>, hint: string): string => {
    let n = hint;
    for (let k = 1; set.has(n); k++) n = `${hint}_${k}`;
    set.add(n);
    return n;
  };
  const freshValue = (hint: string): string => fresh(valueNames, hint);
  const freshNode = (hint: string): string => fresh(nodeNames, hint);
  const sfx = (name: string, i: number): string => (M === 1 ? name : `${name}.mb${i}`);
  for (const v of G.initializers) valueNames.add(v.name);
  if (M > 1) for (const o of G.outputs) valueNames.add(o.name);

  // Graph inputs: the batch inputs get their global batch; the others are shared as they are.
  const split = new Set(G.inputs.filter((v) => !v.constant && M > 1 && input.batchInputs.has(v.name)));
  // F: the blocks a data-parallel layout splits the batch inputs into. Micro-batch i takes the
  // i-th slice of every block, for every batch input and output alike (the same rows).
  const F = Math.max(1, ...[...split].map((v) => batchFactor(v, mesh, v.shape![0] as number)));
  for (const v of split) {
    const f = batchFactor(v, mesh, v.shape![0] as number);
    if (f !== 1 && f !== F) throw new UserError(`strategy pipeline: batch inputs split into ${f} and ${F} blocks; micro-batches need one split`, { tensor: v.name });
    if ((v.shape![0] as number) % F !== 0)
      throw new UserError(`strategy pipeline: a micro-batch of ${v.shape![0]} rows does not split into ${F} blocks; choose micro-batches so that batch/micro-batches is a multiple of ${F}`, { tensor: v.name });
  }
  const globalInput = new Map<Value, Value>();
  for (const v of G.inputs) {
    let gv = v;
    if (split.has(v)) {
      gv = new Value(v.name, v.dtype, [input.batch!.size, ...v.shape!.slice(1)]);
      gv.layout = v.layout;
      for (const [k, m] of v.meta) gv.meta.set(k, m);
    }
    valueNames.add(gv.name);
    globalInput.set(v, gv);
    NG.inputs.push(gv);
  }

  const head: Node[][] = Array.from({ length: P }, () => []);
  const body: Node[][][] = Array.from({ length: P }, () => Array.from({ length: M }, () => []));
  const tail: Node[][] = Array.from({ length: P }, () => []);
  const sendsAfter = new Map<Node, Node[]>();
  const copies: Map<Value, Value>[] = Array.from({ length: M }, () => new Map());
  const records = new Map<Node, CollectiveRecord>();
  const candidates = new Map<Node, Map<string, Candidate>>();
  const innerRecords = new Map(inner.collectives.map((r) => [r.node, r]));

  const layoutOf = (v: Value | null): Map<string, Placement> => fullLayout(v?.layout, mesh);
  const annotate = (n: Node, stage: number, mb?: number): Node => {
    n.meta.set(PIPELINE_STAGE_META, String(stage));
    if (mb !== undefined) n.meta.set(PIPELINE_MICRO_BATCH_META, String(mb));
    return n;
  };
  /** A node the pipeline adds (split, merge): its candidate per axis from its values' layouts. */
  const added = (op: string, inputs: Value[], outputs: Value[], attrs: Attrs, hint: string, stage: number): Node => {
    const n = annotate(new Node(op, inputs, outputs, attrs, freshNode(hint)), stage);
    for (const a of mesh.axes) {
      const c: Candidate = {
        inputs: inputs.map((v) => layoutOf(v).get(a.name)!),
        outputs: outputs.map((v) => layoutOf(v).get(a.name)!),
      };
      n.meta.set(`sharding.${a.name}`, formatCandidate(c));
    }
    return n;
  };
  const constant = (hint: string, xs: number[]): Value => {
    const v = new Value(freshValue(hint), 'int64', [xs.length]);
    v.constant = LazyTensor.of(Tensor.from('int64', [xs.length], xs));
    v.layout = fullLayout(undefined, mesh);
    NG.initializers.push(v);
    return v;
  };
  const newValue = (hint: string, like: Value, shape: number[], layout: Layout | undefined): Value => {
    const v = new Value(freshValue(hint), like.dtype, shape);
    v.layout = fullLayout(layout, mesh);
    return v;
  };

  // Splitting a batch input into micro-batches on one stage (each stage that reads it splits it).
  const splits = new Map<string, Value[]>();
  const splitValues = (v: Value, t: number): Value[] => {
    const key = `${v.name}\u0000${t}`;
    const hit = splits.get(key);
    if (hit) return hit;
    const gv = globalInput.get(v)!;
    const shape = v.shape as number[];
    const b = shape[0]!;
    const rest = shape.slice(1);
    const out: Value[] = [];
    const attrs = (a: number): Attrs => new Attrs([['axis', int(a)]]);
    if (F === 1) {
      for (let i = 0; i < M; i++) out.push(newValue(`${sfx(v.name, i)}.s${t}`, v, shape, v.layout));
      const sizes = constant(`${v.name}.micro_batch_sizes`, new Array<number>(M).fill(b));
      head[t]!.push(added('Split', [gv, sizes], out, attrs(0), `split_micro_batches.${v.name}.s${t}`, t));
    } else {
      // Micro-batch i takes rows [i·b/F, (i+1)·b/F) of each of the F blocks of dim 0, so the
      // split stays local to every device: [B, ...] → [F, M·b/F, ...] → M × [F, b/F, ...] → [b, ...].
      const n = b / F;
      const view = viewLayout(v.layout, mesh);
      const whole = newValue(`${v.name}.blocks.s${t}`, v, [F, M * n, ...rest], view);
      head[t]!.push(added('Reshape', [gv, constant(`${v.name}.blocks_shape`, [F, M * n, ...rest])], [whole], new Attrs(), `micro_batch_view.${v.name}.s${t}`, t));
      const parts = Array.from({ length: M }, (_, i) => newValue(`${sfx(v.name, i)}.blocks.s${t}`, v, [F, n, ...rest], view));
      head[t]!.push(added('Split', [whole, constant(`${v.name}.micro_batch_sizes`, new Array<number>(M).fill(n))], parts, attrs(1), `split_micro_batches.${v.name}.s${t}`, t));
      const back = constant(`${v.name}.micro_batch_shape`, shape);
      parts.forEach((p, i) => {
        const o = newValue(`${sfx(v.name, i)}.s${t}`, v, shape, v.layout);
        head[t]!.push(added('Reshape', [p, back], [o], new Attrs(), `micro_batch_rows.${sfx(v.name, i)}.s${t}`, t));
        out.push(o);
      });
    }
    splits.set(key, out);
    return out;
  };

  // Send/Recv of a value from its producer's stage to a later stage, once per micro-batch and stage.
  const received = new Map<string, Value>();
  let tags = 0;
  const transfer = (v: Value, cv: Value, i: number, s: number, t: number, reader: string): Value => {
    const key = `${cv.name}\u0000${t}`;
    const hit = received.get(key);
    if (hit) return hit;
    const tag = tags++;
    const shape = (cv.shape ?? []) as number[];
    const lay = formatLayout(layoutOf(cv));
    const producer = v.producer!;
    const mbText = M > 1 ? ` (micro-batch ${i})` : '';
    const token = newValue(`${cv.name}.sent_s${t}`, cv, shape.slice(), cv.layout);
    const sendAttrs = new Attrs([
      ['axis', str(axis)],
      ['peer_stage', int(t)],
      ['tag', int(tag)],
    ]);
    const send = annotate(new Node('Send', [cv], [token], sendAttrs, freshNode(`Send_${cv.name}_s${s}_to_s${t}`), COLLECTIVE_DOMAIN), s, i);
    const sendWhy = `pipeline: ${v.name}${mbText} is computed on stage ${s} by ${producer.op} ${producer.label} and read on stage ${t} by ${reader}`;
    const out = newValue(`${cv.name}.s${t}`, cv, shape.slice(), cv.layout);
    const recvAttrs = new Attrs([
      ['axis', str(axis)],
      ['peer_stage', int(s)],
      ['tag', int(tag)],
      ['dtype', int(dtypeToOnnx(cv.dtype ?? 'float32'))],
      ['shape', ints(shape.slice())],
    ]);
    const recv = annotate(new Node('Recv', [], [out], recvAttrs, freshNode(`Recv_${cv.name}_s${s}_to_s${t}`), COLLECTIVE_DOMAIN), t, i);
    const recvWhy = `pipeline: stage ${t} reads ${v.name}${mbText} (for ${reader}), which stage ${s} computes (${producer.op} ${producer.label})`;
    const from = `stage ${s} ${lay}`;
    const to = `stage ${t} ${lay}`;
    for (const [n, why, bytes] of [
      [send, sendWhy, localBytes(shape, cv.dtype, cv.layout, mesh)],
      [recv, recvWhy, 0],
    ] as [Node, string, number][]) {
      n.meta.set('reason', why);
      n.meta.set('from', from);
      n.meta.set('to', to);
      records.set(n, { node: n.name, kind: n.op as 'Send' | 'Recv', meshAxes: [axis], tensor: v.name, bytes: Math.round(bytes), reason: why, from, to });
    }
    const after = sendsAfter.get(cv.producer!) ?? [];
    after.push(send);
    sendsAfter.set(cv.producer!, after);
    body[t]![i]!.push(recv);
    received.set(key, out);
    return out;
  };

  const isNodeOutput = (v: Value): boolean => !!v.producer && assignment.stageOf.has(v.producer);
  /** The value micro-batch i's copy on stage t reads for `v` of the inner graph. */
  const valueFor = (v: Value, i: number, t: number, reader: string): Value => {
    if (!isNodeOutput(v)) {
      const gv = globalInput.get(v);
      if (!gv) return v; // a constant: shared by the copies
      return split.has(v) ? splitValues(v, t)[i]! : gv;
    }
    const s = stageOf(v.producer!);
    const cv = copies[i]!.get(v)!;
    if (s === t) return cv;
    if (s > t) throw new Error(`pipeline: ${v.name} is produced on stage ${s} but read on the earlier stage ${t}`);
    return transfer(v, cv, i, s, t, reader);
  };

  for (let i = 0; i < M; i++)
    for (const n of G.nodes) {
      const t = stageOf(n);
      const inputs = n.inputs.map((v) => (v ? valueFor(v, i, t, `${n.op} ${n.label}`) : null));
      const outputs = n.outputs.map((o) => {
        const c = new Value(o.name === '' ? '' : freshValue(sfx(o.name, i)), o.dtype, o.shape?.slice());
        if (o.layout) c.layout = o.layout;
        for (const [k, m] of o.meta) c.meta.set(k, m);
        copies[i]!.set(o, c);
        return c;
      });
      const c = new Node(n.op, inputs, outputs, n.attrs.clone(), n.name ? freshNode(sfx(n.name, i)) : '', n.domain);
      for (const [k, m] of n.meta) c.meta.set(k, m);
      annotate(c, t, i);
      const cand = inner.candidates?.get(n);
      if (cand) candidates.set(c, cand);
      if (isCollective(n)) {
        const r = innerRecords.get(n.name);
        if (r) {
          const reason = M > 1 ? `${r.reason} (micro-batch ${i})` : r.reason;
          c.meta.set('reason', reason);
          records.set(c, { ...r, meshAxes: r.meshAxes.slice(), node: c.name, reason });
        }
      }
      body[t]![i]!.push(c);
    }

  // Graph outputs: merged on the stage that produces them.
  const reachable = batchDependent(G, split);
  for (const o of G.outputs) {
    const s = isNodeOutput(o) ? stageOf(o.producer!) : 0;
    const parts = Array.from({ length: M }, (_, i) => valueFor(o, i, s, `graph output ${o.name}`));
    if (M === 1 || parts[0] === o) {
      NG.outputs.push(parts[0]!);
      continue;
    }
    const shape = o.shape as number[];
    const final = new Value(o.name, o.dtype, shape.slice());
    final.layout = fullLayout(o.layout, mesh);
    if (!reachable.has(o)) {
      // Does not depend on the batch: every micro-batch computes the same value; take the first.
      tail[s]!.push(added('Identity', [parts[0]!], [final], new Attrs(), `micro_batch_0.${o.name}`, s));
      NG.outputs.push(final);
      continue;
    }
    const decl = input.outputDims.get(o.name) ?? 'unknown';
    const b = input.batch!.microBatchSize;
    if (decl === 'other' || shape[0] !== b)
      throw new UserError(
        `strategy pipeline: graph output ${o.name} depends on the batch but its dim 0 is not the batch (${decl === 'other' ? 'declared otherwise' : `${shape[0]} per micro-batch of ${b}`}); use 1 micro-batch`,
        { tensor: o.name },
      );
    final.shape = [input.batch!.size, ...shape.slice(1)];
    const rest = shape.slice(1);
    const Fo = batchFactor(o, mesh, b);
    if (Fo !== 1 && Fo !== F)
      throw new UserError(`strategy pipeline: graph output ${o.name} splits its batch into ${Fo} blocks but the inputs into ${F}`, { tensor: o.name });
    if (F === 1) {
      tail[s]!.push(added('Concat', parts, [final], new Attrs([['axis', int(0)]]), `merge_micro_batches.${o.name}`, s));
    } else {
      const n = b / F;
      const view = viewLayout(o.layout, mesh);
      const blocks = parts.map((p, i) => {
        const x = newValue(`${sfx(o.name, i)}.blocks`, o, [F, n, ...rest], view);
        tail[s]!.push(added('Reshape', [p, constant(`${o.name}.blocks_shape`, [F, n, ...rest])], [x], new Attrs(), `micro_batch_view.${sfx(o.name, i)}`, s));
        return x;
      });
      const whole = newValue(`${o.name}.blocks`, o, [F, M * n, ...rest], view);
      tail[s]!.push(added('Concat', blocks, [whole], new Attrs([['axis', int(1)]]), `merge_micro_batches.${o.name}`, s));
      tail[s]!.push(added('Reshape', [whole, constant(`${o.name}.batch_shape`, final.shape as number[])], [final], new Attrs(), `micro_batch_rows.${o.name}`, s));
    }
    NG.outputs.push(final);
  }

  for (let s = 0; s < P; s++) {
    NG.nodes.push(...head[s]!);
    for (let i = 0; i < M; i++)
      for (const n of body[s]![i]!) {
        NG.nodes.push(n);
        NG.nodes.push(...(sendsAfter.get(n) ?? []));
      }
    NG.nodes.push(...tail[s]!);
  }
  const collectives = NG.nodes.filter((n) => records.has(n)).map((n) => records.get(n)!);

  const info: PipelineInfo = {
    axis,
    stages: P,
    microBatches: M,
    batch: input.batch && M > 1 ? { ...input.batch } : undefined,
    stageCosts: assignment.costs.slice(),
    balance: assignment.balance,
    stageNodes: Array.from({ length: P }, (_, s) => {
      const nodes = G.nodes.filter((n) => stageOf(n) === s);
      return { count: nodes.length, first: nodes[0]?.label ?? '', last: nodes[nodes.length - 1]?.label ?? '' };
    }),
    cuts: assignment.cuts.map((k, j) => ({ after: G.nodes[k - 1]!.label, values: assignment.crossing[j]!.map((v) => v.name) })),
    clocks: forwardClocks(P, M),
  };
  return {
    graph: NG,
    mesh,
    strategy: inner.strategy,
    bindings: { ...input.bindings },
    collectives,
    seeds: inner.seeds,
    candidates,
    pipeline: info,
  };
}

/** Values of the graph that depend on a batch input. */
function batchDependent(g: Graph, split: ReadonlySet<Value>): Set<Value> {
  const dep = new Set<Value>(split);
  for (const n of g.nodes) if (n.inputs.some((v) => v && dep.has(v))) for (const o of n.outputs) dep.add(o);
  return dep;
}
