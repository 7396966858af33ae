/**
 * Layouts of values on a device mesh (used by the sharding passes; defined here because every
 * value of the IR may carry one). One placement per mesh axis:
 *   S(d)      the tensor's dim d is split over the axis (shard sizes may be uneven)
 *   R         replicated
 *   P(sum)    each device holds a partial result; the true value is the reduction over the axis
 * A layout prints as `{tp: S(0), dp: R}` and parses back.
 */
export type Placement =
  | { kind: 'shard'; dim: number }
  | { kind: 'replicate' }
  | { kind: 'partial'; reduce: 'sum' | 'max' | 'min' };

/** Mesh axis name → placement; axes missing from the map are replicated. */
export type Layout = ReadonlyMap<string, Placement>;

export const Shard = (dim: number): Placement => ({ kind: 'shard', dim });
export const Replicate: Placement = { kind: 'replicate' };
export const Partial = (reduce: 'sum' | 'max' | 'min' = 'sum'): Placement => ({ kind: 'partial', reduce });

export function formatPlacement(p: Placement): string {
  switch (p.kind) {
    case 'shard':
      return `S(${p.dim})`;
    case 'replicate':
      return 'R';
    case 'partial':
      return `P(${p.reduce})`;
  }
}

export function parsePlacement(s: string): Placement {
  const t = s.trim();
  if (t === 'R') return Replicate;
  let m = /^S\((\d+)\)$/.exec(t);
  if (m) return Shard(Number(m[1]));
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
    const [axis, p] = part.split(':');
    if (axis === undefined || p === undefined) throw new Error(`not a layout: ${JSON.stringify(s)}`);
    out.set(axis.trim(), parsePlacement(p));
  }
  return out;
}
