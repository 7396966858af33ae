/**
 * What a plan decided, as plain data, and the difference between two plans: the collectives (kind,
 * axes, value, bytes) and every value's layout. For library users comparing strategies or checking
 * what a custom pass changed (examples/api/custom-pass.ts), and for tests. Deterministic: sorted
 * by value name, collectives in graph order.
 */
import { formatLayout } from '../ir/layout.js';
import type { ShardPlan } from '../passes/sharding/plan.js';

export interface PlanSummary {
  strategy: string;
  mesh: string;
  /** `<kind> <axes>: <value>` per collective, in graph order. */
  collectives: string[];
  /** Bytes each device sends, summed over the collectives (the plan's estimate). */
  bytes: number;
  /** Value name → printed layout (`{tp: S(1)}`), sorted by name; every value of the global graph. */
  layouts: Record<string, string>;
}

export interface PlanDiff {
  /** Collectives only in the first plan / only in the second (as in PlanSummary.collectives). */
  removed: string[];
  added: string[];
  /** Values whose layout differs (present in both plans), sorted by name. */
  layouts: { value: string; before: string; after: string }[];
  bytes: { before: number; after: number };
  /** Whether anything above differs. */
  changed: boolean;
}

export function summarizePlan(plan: ShardPlan): PlanSummary {
  const g = plan.graph;
  const values = [...g.inputs, ...g.initializers, ...g.nodes.flatMap((n) => n.outputs)];
  const layouts: Record<string, string> = {};
  for (const v of [...values].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) layouts[v.name] = formatLayout(v.layout ?? new Map());
  return {
    strategy: plan.strategy,
    mesh: plan.mesh.toString(),
    collectives: plan.collectives.map((c) => `${c.kind} ${c.meshAxes.join(',')}: ${c.tensor}`),
    bytes: plan.collectives.reduce((s, c) => s + c.bytes, 0),
    layouts,
  };
}

/** Multiset difference of the collectives, and the layouts that changed. */
export function diffPlans(before: ShardPlan | PlanSummary, after: ShardPlan | PlanSummary): PlanDiff {
  const a = 'graph' in before ? summarizePlan(before) : before;
  const b = 'graph' in after ? summarizePlan(after) : after;
  const minus = (x: string[], y: string[]): string[] => {
    const left = [...y];
    return x.filter((c) => {
      const i = left.indexOf(c);
      if (i < 0) return true;
      left.splice(i, 1);
      return false;
    });
  };
  const removed = minus(a.collectives, b.collectives);
  const added = minus(b.collectives, a.collectives);
  const layouts = Object.keys(a.layouts)
    .filter((k) => k in b.layouts && a.layouts[k] !== b.layouts[k])
    .map((value) => ({ value, before: a.layouts[value]!, after: b.layouts[value]! }));
  return { removed, added, layouts, bytes: { before: a.bytes, after: b.bytes }, changed: removed.length + added.length + layouts.length > 0 };
}
