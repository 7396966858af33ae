/**
 * The op graph that report.html draws, built from a ShardPlan's global graph (collectives
 * included): nodes are ops, graph inputs and graph outputs; an edge is a value from its producer
 * to each consumer, keyed by its layout class (`R`, `S(1)`, `P(sum)`; per axis on N-D meshes) for
 * the colour. Constants (weights) are not nodes: their layouts appear in their consumer's hover text.
 *
 * Large graphs are collapsed so the picture stays readable: above `maxNodes` nodes, ops are grouped
 * by layer — the first `<word><digits>` path segment of the node's name or, failing that, of the
 * weights it reads (`h3.attn.c_attn.weight` → `h3`, `/model/layers.3/...` → `model.layers.3`);
 * ops with no such name join the group of the op before them in program order. Collectives stay
 * nodes of their own and split a layer into parts, so the picture shows where each layer
 * communicates. If that is still too many nodes, collectives are folded into their layer's group.
 * A collapsed view describes only what it draws: the hover texts of single ops (collectives) and of
 * one value per edge between groups, not of the thousands of ops and values grouped away.
 */
import { formatPlacement, type Layout, type Placement } from '../../ir/layout.js';
import { COLLECTIVE_DOMAIN, type Node, type Value } from '../../ir/graph.js';
import type { CollectiveRecord, ShardPlan } from '../../passes/sharding/plan.js';

export type ViewNodeKind = 'op' | 'collective' | 'input' | 'output' | 'group';

export interface ViewNode {
  id: string;
  kind: ViewNodeKind;
  /** First line: op type (or the group's name). */
  label: string;
  /** Second line: node name (or the group's op count). */
  sub: string;
  /** Hover text (plain text; escaped when rendered). */
  title: string;
  /** Lower-case text the page's filter matches against. */
  search: string;
  /** Groups: how many collectives were folded into this group. */
  collectives?: number;
}

export interface ViewEdge {
  from: string;
  to: string;
  /** Layout class for the colour (see layoutClass). */
  layoutClass: string;
  title: string;
}

export interface OpGraphView {
  nodes: ViewNode[];
  edges: ViewEdge[];
  /** Ops (collectives included) in the plan's graph. */
  opCount: number;
  /** Set when the graph was collapsed: what was grouped and why. */
  collapsed?: string;
  /** Collective node label → view node id (the side table links to it). */
  collectiveIds: Record<string, string>;
}

export const DEFAULT_MAX_NODES = 400;

/** `S(2:8)` → `S(2)`: the colour ignores the shard unit. */
function placementClass(p: Placement | undefined): string {
  if (!p || p.kind === 'replicate') return 'R';
  if (p.kind === 'partial') return `P(${p.reduce})`;
  return `S(${p.dim})`;
}

/** The colour class of a layout: `R`, `S(1)`, `P(sum)` on a 1-D mesh; `dp:S(0) tp:S(1)` on N-D meshes. */
export function layoutClass(layout: Layout | undefined, axes: readonly string[]): string {
  if (axes.length === 1) return placementClass(layout?.get(axes[0]!));
  const parts = axes.map((a) => [a, placementClass(layout?.get(a))] as const).filter(([, p]) => p !== 'R');
  return parts.length ? parts.map(([a, p]) => `${a}:${p}`).join(' ') : 'R';
}

/** `{tp: S(2:8)}` with every axis. */
export function layoutText(layout: Layout | undefined, axes: readonly string[]): string {
  return `{${axes.map((a) => `${a}: ${formatPlacement(layout?.get(a) ?? { kind: 'replicate' })}`).join(', ')}}`;
}

function valueText(v: Value, axes: readonly string[]): string {
  const shape = v.shape ? `[${v.shape.join(',')}]` : '[?]';
  return `${v.name} ${v.dtype ?? '?'}${shape} ${layoutText(v.layout, axes)}`;
}

const LAYER_SEGMENT = /^[A-Za-z]*_?\d+$/;

/** `h3.attn.c_attn.weight` → `h3`; `/model/layers.3/attn/MatMul` → `model.layers.3`; else undefined. */
export function layerKey(name: string): string | undefined {
  const parts = name.split(/[./]/);
  for (let i = 0; i < parts.length - 1; i++) if (LAYER_SEGMENT.test(parts[i]!)) return parts.slice(0, i + 1).filter(Boolean).join('.');
  return undefined;
}

/** A weight's scope when it has no layer: `ln_f.weight` → `ln_f`. */
function scopeKey(name: string): string | undefined {
  const parts = name.split(/[./]/).filter(Boolean);
  return parts.length > 1 ? parts[0] : undefined;
}

function nodeKey(n: Node): string | undefined {
  const own = layerKey(n.name);
  if (own) return own;
  const weights = n.inputs.filter((v): v is Value => !!v?.constant && !v.producer).map((v) => v.name);
  for (const w of weights) {
    const k = layerKey(w);
    if (k) return k;
  }
  for (const w of weights) {
    const k = scopeKey(w);
    if (k) return k;
  }
  return undefined;
}

export function opGraphView(plan: ShardPlan, maxNodes = DEFAULT_MAX_NODES): OpGraphView {
  const g = plan.graph;
  const count = g.inputs.filter((v) => !v.constant).length + g.nodes.length + g.outputs.length;
  if (count <= maxNodes) {
    const full = buildFull(plan, () => true);
    const axes = plan.mesh.axes.map((a) => a.name);
    return { nodes: full.nodes, edges: full.edges.map((e) => viewEdge(e, axes)), opCount: full.opCount, collectiveIds: full.collectiveIds };
  }
  // Collapsed: of the ops only the collectives may be drawn one by one (hover texts for those only).
  const full = buildFull(plan, (n) => n.domain === COLLECTIVE_DOMAIN);
  const split = collapse(plan, full, true, maxNodes);
  if (split.nodes.length <= maxNodes) return split;
  return collapse(plan, full, false, maxNodes);
}

/** An edge of the full view: its value, whose layout class and text are made when it is drawn. */
interface FullEdge {
  from: string;
  to: string;
  value: Value;
}

const viewEdge = (e: FullEdge, axes: readonly string[]): ViewEdge => ({ from: e.from, to: e.to, layoutClass: layoutClass(e.value.layout, axes), title: valueText(e.value, axes) });

interface Built {
  /** Every node; op nodes that `described` refused have no title and search text (collapse does not draw them). */
  nodes: ViewNode[];
  edges: FullEdge[];
  opCount: number;
  collectiveIds: Record<string, string>;
}

function buildFull(plan: ShardPlan, described: (n: Node) => boolean): Built {
  const g = plan.graph;
  const axes = plan.mesh.axes.map((a) => a.name);
  const collectiveByNode = new Map<string, CollectiveRecord>(plan.collectives.map((c) => [c.node, c]));
  const nodes: ViewNode[] = [];
  const edges: FullEdge[] = [];
  const source = new Map<Value, string>();
  const collectiveIds: Record<string, string> = {};

  g.inputs.forEach((v, i) => {
    if (v.constant) return;
    const id = `i${i}`;
    nodes.push({ id, kind: 'input', label: 'input', sub: v.name, title: `graph input ${valueText(v, axes)}`, search: `input ${v.name}`.toLowerCase() });
    source.set(v, id);
  });
  g.nodes.forEach((n, i) => {
    const id = `n${i}`;
    const collective = n.domain === COLLECTIVE_DOMAIN;
    if (collective) collectiveIds[n.label] = id;
    for (const o of n.outputs) source.set(o, id);
    if (!described(n)) {
      nodes.push({ id, kind: collective ? 'collective' : 'op', label: n.op, sub: n.label, title: '', search: '' });
      return;
    }
    const lines = [`${n.label} (${collective ? `${n.domain}.` : n.domain ? `${n.domain}.` : ''}${n.op})`];
    if (collective) {
      const c = collectiveByNode.get(n.label) ?? collectiveByNode.get(n.name);
      if (c) lines.push(`${c.kind} over ${c.meshAxes.join(',')} of ${c.tensor}: ${c.bytes} bytes per device, ${c.from} -> ${c.to}`, `why: ${c.reason}`);
      else if (n.meta.get('reason')) lines.push(`why: ${n.meta.get('reason')}`);
    } else {
      for (const a of axes) {
        const s = n.meta.get(`sharding.${a}`);
        if (s !== undefined) lines.push(`runs on ${a}: ${s}`);
      }
    }
    for (const v of n.inputs) if (v) lines.push(`in${v.constant && !v.producer ? ' (weight)' : ''}: ${valueText(v, axes)}`);
    for (const v of n.outputs) if (v.name) lines.push(`out: ${valueText(v, axes)}`);
    nodes.push({ id, kind: collective ? 'collective' : 'op', label: n.op, sub: n.label, title: lines.join('\n'), search: `${n.op} ${n.label}`.toLowerCase() });
  });
  g.outputs.forEach((v, i) => {
    const id = `o${i}`;
    nodes.push({ id, kind: 'output', label: 'output', sub: v.name, title: `graph output ${valueText(v, axes)}`, search: `output ${v.name}`.toLowerCase() });
  });

  const edge = (v: Value, to: string): void => {
    const from = source.get(v);
    if (from === undefined || from === to) return;
    edges.push({ from, to, value: v });
  };
  g.nodes.forEach((n, i) => {
    const seen = new Set<Value>();
    for (const v of n.inputs)
      if (v && !seen.has(v)) {
        seen.add(v);
        edge(v, `n${i}`);
      }
  });
  g.outputs.forEach((v, i) => edge(v, `o${i}`));
  return { nodes, edges, opCount: g.nodes.length, collectiveIds };
}

/**
 * Groups the op nodes of `full` by layer. `splitAtCollectives`: collectives stay nodes and each
 * starts a new part of the layer; otherwise they fold into the group.
 */
function collapse(plan: ShardPlan, full: Built, splitAtCollectives: boolean, maxNodes: number): OpGraphView {
  const order = plan.graph.nodes;
  const keys: (string | undefined)[] = order.map(nodeKey);
  // Forward fill (an op joins the layer of the op before it), then back-fill the leading ops.
  for (let i = 1; i < keys.length; i++) keys[i] ??= keys[i - 1];
  const first = keys.find((k) => k !== undefined) ?? 'graph';
  for (let i = 0; i < keys.length && keys[i] === undefined; i++) keys[i] = first;

  const groupOf = new Map<string, string>(); // op node id → group id (or itself for a kept collective)
  const groups = new Map<string, { key: string; part: number; ops: Node[]; collectives: number }>();
  const parts = new Map<string, number>();
  const groupIds: string[] = [];
  const groupIndex = new Map<string, number>();
  let segment = 0;
  const collectiveIds: Record<string, string> = {};
  order.forEach((n, i) => {
    const id = `n${i}`;
    const key = keys[i]!;
    const collective = n.domain === COLLECTIVE_DOMAIN;
    if (collective && splitAtCollectives) {
      segment++;
      groupOf.set(id, id);
      collectiveIds[n.label] = id;
      return;
    }
    const gk = splitAtCollectives ? `${key}#${segment}` : key;
    let gr = groups.get(gk);
    if (!gr) {
      const part = (parts.get(key) ?? 0) + 1;
      parts.set(key, part);
      gr = { key, part, ops: [], collectives: 0 };
      groups.set(gk, gr);
      groupIndex.set(gk, groupIds.length);
      groupIds.push(gk);
    }
    gr.ops.push(n);
    if (collective) gr.collectives++;
    groupOf.set(id, `g${groupIndex.get(gk)!}`);
    if (collective) collectiveIds[n.label] = `g${groupIndex.get(gk)!}`;
  });

  const nodes: ViewNode[] = [];
  for (const v of full.nodes) if (v.kind === 'input') nodes.push(v);
  const fullById = new Map(full.nodes.map((v) => [v.id, v]));
  const emitted = new Set<string>();
  order.forEach((n, i) => {
    const gid = groupOf.get(`n${i}`)!;
    if (emitted.has(gid)) return;
    emitted.add(gid);
    if (!gid.startsWith('g')) {
      nodes.push(fullById.get(gid)!);
      return;
    }
    const gk = groupIds[Number(gid.slice(1))]!;
    const gr = groups.get(gk)!;
    const many = (parts.get(gr.key) ?? 1) > 1;
    const name = many ? `${gr.key} · part ${gr.part}` : gr.key;
    const ops = new Map<string, number>();
    for (const o of gr.ops) ops.set(o.op, (ops.get(o.op) ?? 0) + 1);
    const opList = [...ops].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([op, c]) => `${op}×${c}`);
    const names = gr.ops.map((o) => o.label);
    const shown = names.slice(0, 40);
    const title = [
      `${name}: ${gr.ops.length} ops${gr.collectives ? `, ${gr.collectives} collectives` : ''}`,
      opList.join(', '),
      ...shown,
      ...(names.length > shown.length ? [`… and ${names.length - shown.length} more`] : []),
    ].join('\n');
    nodes.push({
      id: gid,
      kind: 'group',
      label: name,
      sub: `${gr.ops.length} ops${gr.collectives ? `, ${gr.collectives} collectives` : ''}`,
      title,
      search: `${name} ${names.join(' ')}`.toLowerCase(),
      ...(gr.collectives ? { collectives: gr.collectives } : {}),
    });
  });
  for (const v of full.nodes) if (v.kind === 'output') nodes.push(v);

  // One edge per (from, to) pair of groups, drawn as its first value (and a count of the others).
  const axes = plan.mesh.axes.map((a) => a.name);
  const edges: { from: string; to: string; value: Value; count: number }[] = [];
  const pair = new Map<string, { count: number }>();
  for (const e of full.edges) {
    const from = groupOf.get(e.from) ?? e.from;
    const to = groupOf.get(e.to) ?? e.to;
    if (from === to) continue;
    const k = `${from}>${to}`;
    const have = pair.get(k);
    if (have) {
      have.count++;
      continue;
    }
    const x = { from, to, value: e.value, count: 1 };
    pair.set(k, x);
    edges.push(x);
  }
  const out = edges.map((e) => {
    const v = viewEdge(e, axes);
    return e.count > 1 ? { ...v, title: `${v.title} (and ${e.count - 1} more values)` } : v;
  });
  const groupsCount = groupIds.length;
  return {
    nodes,
    edges: out,
    opCount: full.opCount,
    collapsed: `${full.nodes.length} nodes (${full.opCount} ops with collectives) are more than ${maxNodes} drawn one by one: ops are grouped by layer (name prefix) into ${groupsCount} groups${splitAtCollectives ? ', split at each collective' : ', collectives folded into their layer'}; hover a group for its ops.`,
    collectiveIds,
  };
}
