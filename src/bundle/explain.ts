/**
 * `shardc explain`: from a bundle alone, why each collective exists (kind, mesh axes, tensor, bytes,
 * the layouts it converts, the reason recorded when it was inserted) and why each value has its
 * layout (see plan-record.ts for how the reason is chosen).
 */
import { UserError } from '../ir/errors.js';
import type { CollectiveRecord } from '../passes/sharding/plan.js';
import { formatLayoutRecord, type ValueRecord } from './plan-record.js';
import { readBundle } from './read.js';

export interface Explanation {
  model: string;
  mesh: string;
  strategy: string;
  collectives: CollectiveRecord[];
  values: (ValueRecord & { layoutText: string })[];
}

export interface ExplainOptions {
  /** Only this value, and the collectives that move it, read it or produce it. */
  tensor?: string;
  /** Only this collective (node name), and the values it reads and writes. */
  collective?: string;
}

export function explainBundle(dir: string, opts: ExplainOptions = {}): Explanation {
  // explain reads plan.json only; a bundle whose weights changed can still be explained.
  const b = readBundle(dir, { verify: false });
  const axes = b.plan.mesh.axes;
  let collectives = b.plan.collectives;
  let values = b.plan.values;
  const byName = new Map(values.map((v) => [v.name, v]));
  if (opts.tensor !== undefined) {
    const v = byName.get(opts.tensor);
    if (!v) throw new UserError(`no value named ${JSON.stringify(opts.tensor)} in the bundle's plan`, { file: dir, tensor: opts.tensor });
    collectives = collectives.filter((c) => c.tensor === v.name || (v.kind === 'collective' && v.producer === c.node));
    values = [v];
  }
  if (opts.collective !== undefined) {
    const c = collectives.find((x) => x.node === opts.collective);
    if (!c) {
      const known = b.plan.collectives.map((x) => x.node);
      throw new UserError(
        `no collective named ${JSON.stringify(opts.collective)}${known.length ? ` (collectives: ${known.slice(0, 8).join(', ')}${known.length > 8 ? ', ...' : ''})` : ' (the plan has no collectives)'}`,
        { file: dir },
      );
    }
    collectives = [c];
    values = values.filter((v) => v.name === c.tensor || (v.kind === 'collective' && v.producer === c.node));
  }
  return {
    model: b.plan.model ?? b.manifest.model.file,
    mesh: b.plan.mesh.spec,
    strategy: b.plan.strategy,
    collectives,
    values: values.map((v) => ({ ...v, layoutText: formatLayoutRecord(v.layout, axes) })),
  };
}

export function formatExplanation(e: Explanation): string[] {
  const lines = [`${e.model} on ${e.mesh}, strategy ${e.strategy}`];
  lines.push(`collectives (${e.collectives.length}):`);
  for (const c of e.collectives)
    lines.push(`  ${c.node}: ${c.kind} over ${c.meshAxes.join(',')} of ${JSON.stringify(c.tensor)}, ${c.bytes} bytes per device, ${c.from} -> ${c.to}`, `    why: ${c.reason}`);
  lines.push(`values (${e.values.length}):`);
  for (const v of e.values) lines.push(`  ${v.name} ${v.layoutText}: ${v.why}`);
  return lines;
}
