/**
 * Layouts of values on a device mesh (used by the sharding passes; defined here because every
 * value of the IR may carry one). One placement per mesh axis:
 *   S(d)      the tensor's dim d is split over the axis (shard sizes may be uneven: balanced,
 *             the first n mod k shards one larger)
 *   S(d:u)    the same, split in whole blocks of u elements (u = head_dim when a hidden dim
 *             splits into heads, so 6 heads on 4 devices give 2,2,1,1 heads)
 *   R         replicated
 *   P(sum)    each device holds a partial result; the true value is the reduction over the axis
 * A layout prints as `{tp: S(0), dp: R}` and parses back.
 */
export type Placement =
  | { kind: 'shard'; dim: number; unit?: number }
  | { kind: 'replicate' }
  | { kind: 'partial'; reduce: 'sum' | 'max' | 'min' };

/** Mesh axis name → placement; axes missing from the map are replicated. */
export type Layout = ReadonlyMap<string, Placement>;

export const Shard = (dim: number, unit = 1): Placement => (unit === 1 ? { kind: 'shard', dim } : { kind: 'shard', dim, unit });
export const Replicate: Placement = { kind: 'replicate' };
export const Partial = (reduce: 'sum' | 'max' | 'min' = 'sum'): Placement => ({ kind: 'partial', reduce });

export function formatPlacement(p: Placement): string {
  switch (p.kind) {
    case 'shard':
      return p.unit !== undefined && p.unit !== 1 ? `S(${p.dim}:${p.unit})` : `S(${p.dim})`;
    case 'replicate':
      return 'R';
    case 'partial':
      return `P(${p.reduce})`;
  }
}

export function parsePlacement(s: string): Placement {
  const t = s.trim();
  if (t === 'R') return Replicate;
  let m = /^S\((\d+)(?::(\d+))?\)$/.exec(t);
  if (m) return Shard(Number(m[1]), m[2] === undefined ? 1 : Number(m[2]));
  m = /^P\((sum|max|min)\)$/.exec(t);
  if (m) return Partial(m[1] as 'sum' | 'max' | 'min');
  throw new Error(`not a placement: ${JSON.stringify(s)}`);
}

export function formatLayout(l: Layout): string {
  return `{${[...l.entries()].map(([axis, p]) => `${axis}: ${formatPlacement(p)}`).join(', ')}}`;
}

export function parseLayout(s: string): Layout {
  const t = s.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new Error(`not a layout: ${JSON.stringify(s)}`);
  const body = t.slice(1, -1).trim();
  const out = new Map<string, Placement>();
  if (!body) return out;
  for (const part of body.split(',')) {
    // `tp: S(2:8)`: the axis ends at the first colon; a shard unit has its own.
    const colon = part.indexOf(':');
    if (colon < 0) throw new Error(`not a layout: ${JSON.stringify(s)}`);
    out.set(part.slice(0, colon).trim(), parsePlacement(part.slice(colon + 1)));
  }
  return out;
}

/** Structural equality of placements (a shard's unit counts; unit 1 = no unit). */
export function placementEq(a: Placement, b: Placement): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'shard' && b.kind === 'shard') return a.dim === b.dim && (a.unit ?? 1) === (b.unit ?? 1);
  if (a.kind === 'partial' && b.kind === 'partial') return a.reduce === b.reduce;
  return true;
}
