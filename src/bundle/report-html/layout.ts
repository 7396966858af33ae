/**
 * Lays the op graph out with dagre (npm @dagrejs/dagre) at partition time, in Node, so the page
 * needs no script to draw it. Node sizes come from their (clipped) labels; coordinates are rounded
 * to 0.1 px. dagre is deterministic for a given insertion order (no randomness), and nodes and
 * edges are inserted in the view's order (program order), so the same plan gives the same picture.
 *
 * dagre's optimal-order heuristic (repeated barycenter sweeps to cut edge crossings) is off: on the
 * example models (gpt/llama/bert tp=2, gpt dp=2×tp=2) it took 2-3× the time of the whole rest of the
 * layout (50-150 ms of a 0.3-0.5 s partition) and removed no crossing but in bert (3 → 1): these
 * graphs are near-chains whose initial depth-first order is already planar or nearly so.
 */
import { graphlib, layout } from '@dagrejs/dagre';
import { clip } from './format.js';
import type { OpGraphView, ViewNode } from './graph-model.js';

export const LABEL_CHARS = 34;

export interface PlacedNode {
  id: string;
  /** Centre. */
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  points: { x: number; y: number }[];
}

export interface LaidOutGraph {
  view: OpGraphView;
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const round = (n: number): number => Math.round(n * 10) / 10;

export function nodeSize(n: ViewNode): { width: number; height: number } {
  const label = clip(n.label, LABEL_CHARS).length * 7.4;
  const sub = clip(n.sub, LABEL_CHARS).length * 6.3;
  const width = Math.min(280, Math.max(n.kind === 'input' || n.kind === 'output' ? 60 : 80, Math.ceil(Math.max(label, sub) + 22)));
  const height = n.kind === 'group' ? 44 : n.kind === 'collective' ? 42 : n.kind === 'op' ? 36 : 32;
  return { width, height };
}

export function layoutOpGraph(view: OpGraphView): LaidOutGraph {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 18, edgesep: 8, ranksep: 26, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of view.nodes) g.setNode(n.id, nodeSize(n));
  view.edges.forEach((e, i) => g.setEdge(e.from, e.to, { minlen: 1, weight: 1 }, `e${i}`));
  layout(g, { disableOptimalOrderHeuristic: true });
  const graph = g.graph() as { width?: number; height?: number };
  const nodes = view.nodes.map((n): PlacedNode => {
    const l = g.node(n.id) as { x: number; y: number; width: number; height: number };
    return { id: n.id, x: round(l.x), y: round(l.y), width: l.width, height: l.height };
  });
  const edges = view.edges.map((e, i): PlacedEdge => {
    const l = g.edge({ v: e.from, w: e.to, name: `e${i}` }) as { points?: { x: number; y: number }[] };
    return { from: e.from, to: e.to, points: (l.points ?? []).map((p) => ({ x: round(p.x), y: round(p.y) })) };
  });
  return { view, width: Math.ceil(graph.width ?? 0), height: Math.ceil(graph.height ?? 0), nodes, edges };
}
