/**
 * The text form of a ShardPlan, for golden tests and `explain`: a header (mesh, strategy,
 * bindings), the seeds with their reasons (sorted by value name), the collectives counted by kind
 * and axis and listed with bytes and reasons (graph order), then the global graph printed by
 * src/ir/text.ts (every value's layout, each node's chosen candidate per axis in its meta, and the
 * collective nodes with their reason/from/to meta). Deterministic: nothing depends on Map order
 * that the plan did not fix itself.
 */
import { printGraph } from '../../ir/text.js';
import type { ShardPlan } from './plan.js';

export function collectiveCounts(plan: ShardPlan): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of plan.collectives) {
    const k = `${c.kind} ${c.meshAxes.join(',')}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function printPlan(plan: ShardPlan, opts: { maxInlineElements?: number } = {}): string {
  const lines: string[] = [];
  lines.push(`// mesh ${plan.mesh} (${plan.mesh.axes.map((a) => `${a.name}: ${a.link.bandwidth / 1e9} GB/s, ${a.link.latency * 1e6} us`).join('; ')})`);
  lines.push(`// strategy ${plan.strategy}`);
  const b = Object.entries(plan.bindings).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  lines.push(`// bindings ${b.length ? b.map(([k, v]) => `${k}=${v}`).join(', ') : '(none)'}`);
  lines.push('// seeds:');
  for (const [name, why] of [...plan.seeds].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) lines.push(`//   ${name}: ${why}`);
  const counts = collectiveCounts(plan);
  lines.push(`// collectives: ${counts.size ? [...counts].map(([k, n]) => `${n} ${k}`).join(', ') : 'none'}`);
  for (const c of plan.collectives) lines.push(`//   ${c.node}: ${c.kind} on ${c.meshAxes.join(',')} of ${c.tensor}, ${c.bytes} bytes: ${c.reason}`);
  return `${lines.join('\n')}\n${printGraph(plan.graph, { maxInlineElements: opts.maxInlineElements ?? 8 })}`;
}
