/**
 * The op graph as static SVG: ops as boxes, collectives as orange hexagons, layer groups as
 * double-bordered boxes, graph inputs and outputs as pills; edges coloured by the layout class of
 * the value they carry, with a legend. Hover text (<title>) gives each op's sharding and values
 * with layouts, and each collective's kind, bytes, layouts and the reason it exists.
 */
import { clip, esc, px } from './format.js';
import { LABEL_CHARS, type LaidOutGraph, type PlacedNode } from './layout.js';
import type { ViewNode } from './graph-model.js';

const REPLICATED = '#8c939d';
const SHARD_COLOURS = ['#1c7ed6', '#2f9e44', '#7048e8', '#0c8599', '#5c940d', '#1864ab', '#9c36b5', '#087f5b'];
const PARTIAL_COLOURS = ['#e03131', '#c2255c', '#f08c00', '#a61e4d'];

/** Layout class → colour: R grey, partial sums warm, shards cool; assigned in sorted order. */
export function layoutColours(classes: readonly string[]): Map<string, string> {
  const sorted = [...new Set(classes)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const out = new Map<string, string>();
  let s = 0;
  let p = 0;
  for (const c of sorted) {
    if (c === 'R') out.set(c, REPLICATED);
    else if (c.includes('P(')) out.set(c, PARTIAL_COLOURS[p++ % PARTIAL_COLOURS.length]!);
    else out.set(c, SHARD_COLOURS[s++ % SHARD_COLOURS.length]!);
  }
  return out;
}

const rank = (c: string): number => (c === 'R' ? 0 : c.includes('P(') ? 2 : 1);

/** What each colour means, in words (for the legend). */
function describe(c: string): string {
  if (c === 'R') return 'replicated on every device';
  return c
    .split(' ')
    .map((part) => {
      const [axis, p] = part.includes(':') ? part.split(':') : ['', part];
      const where = axis ? ` over ${axis}` : '';
      const m = /^S\((\d+)\)$/.exec(p!);
      if (m) return `split along dim ${m[1]}${where}`;
      const q = /^P\((\w+)\)$/.exec(p!);
      return q ? `partial ${q[1]}${where} (needs a reduction)` : `${p}${where}`;
    })
    .join(', ');
}

export function renderLegend(colours: ReadonlyMap<string, string>): string {
  const items = [...colours].map(
    ([c, colour], i) =>
      `<li><label><input type="checkbox" checked data-layout-toggle="k${i}"><span class="swatch" style="background:${colour}"></span><code>${esc(c)}</code> ${esc(describe(c))}</label></li>`,
  );
  items.push('<li><span class="swatch hex"></span>collective (hover for why it exists)</li>');
  return `<ul class="legend">${items.join('')}</ul>`;
}

function hexagon(n: PlacedNode): string {
  const hw = n.width / 2;
  const hh = n.height / 2;
  const c = Math.min(12, hw / 3);
  const pts = [
    [n.x - hw + c, n.y - hh],
    [n.x + hw - c, n.y - hh],
    [n.x + hw, n.y],
    [n.x + hw - c, n.y + hh],
    [n.x - hw + c, n.y + hh],
    [n.x - hw, n.y],
  ];
  return `<polygon points="${pts.map(([x, y]) => `${px(x!)},${px(y!)}`).join(' ')}"/>`;
}

function shape(v: ViewNode, n: PlacedNode): string {
  const x = px(n.x - n.width / 2);
  const y = px(n.y - n.height / 2);
  const w = px(n.width);
  const h = px(n.height);
  switch (v.kind) {
    case 'collective':
      return hexagon(n);
    case 'input':
    case 'output':
      return `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="${px(n.height / 2)}"/>`;
    case 'group':
      return `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="6"/><rect class="inner" x="${px(n.x - n.width / 2 + 3)}" y="${px(n.y - n.height / 2 + 3)}" width="${px(n.width - 6)}" height="${px(n.height - 6)}" rx="4"/>`;
    default:
      return `<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="5"/>`;
  }
}

export function renderGraphSvg(g: LaidOutGraph, colours: ReadonlyMap<string, string>): string {
  const classIndex = new Map([...colours.keys()].map((c, i) => [c, i]));
  const markers = [...colours.values()]
    .map((colour, i) => `<marker id="arrow-k${i}" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L8,4L0,8z" fill="${colour}"/></marker>`)
    .join('');
  const edges = g.edges.map((e, i) => {
    const ve = g.view.edges[i]!;
    const k = classIndex.get(ve.layoutClass) ?? 0;
    const d = e.points.map((p, j) => `${j ? 'L' : 'M'}${px(p.x)},${px(p.y)}`).join('');
    return `<path class="edge k${k}" d="${d}" stroke="${colours.get(ve.layoutClass) ?? REPLICATED}" marker-end="url(#arrow-k${k})" data-from="${ve.from}" data-to="${ve.to}"><title>${esc(ve.title)}</title></path>`;
  });
  const byId = new Map(g.view.nodes.map((v) => [v.id, v]));
  const nodes = g.nodes.map((n) => {
    const v = byId.get(n.id)!;
    const folded = v.collectives ? ` folded` : '';
    return (
      `<g class="node ${v.kind}${folded}" id="${n.id}" data-search="${esc(v.search)}"><title>${esc(v.title)}</title>${shape(v, n)}` +
      `<text class="l" x="${px(n.x)}" y="${px(n.y - 3)}">${esc(clip(v.label, LABEL_CHARS))}</text>` +
      `<text class="s" x="${px(n.x)}" y="${px(n.y + 11)}">${esc(clip(v.sub, LABEL_CHARS))}</text></g>`
    );
  });
  return (
    `<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" role="img" aria-label="op graph">` +
    `<defs>${markers}</defs><g class="edges">\n${edges.join('\n')}\n</g><g class="nodes">\n${nodes.join('\n')}\n</g></svg>`
  );
}
