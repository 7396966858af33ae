/**
 * User strategies and pinned layouts: the two ways library code steers sharding besides the
 * built-in presets and spec files.
 *
 *  - A custom strategy is an annotation function `(ctx: StrategyContext) => AxisSeeds` (applied to
 *    every mesh axis; ctx.axis says which), a Preset object (it takes its own axis, or a mesh's only
 *    axis, exactly like a built-in preset; the mesh's other axes go to the built-in presets that own
 *    them by name), or a list of Presets. shardGraph accepts one as ShardOptions.strategy.
 *  - A pinned layout is a Value annotation `sharding.pin.<axis>` = a printed placement (`R`,
 *    `S(1)`, `S(0:8)`, `P(sum)`) that a pass writes (pinLayout); shardGraph seeds it, overriding the
 *    strategy's seed for that value and axis, with the reason `sharding.pin.why`. A pin on an axis
 *    the mesh does not have is ignored (a pass does not know the mesh it will meet).
 *
 * Seeds only start propagation: the rest of the plan (every other layout and every collective)
 * still comes from the sharding rules, so a custom strategy cannot produce a wrong program, only a
 * more or less expensive one.
 */
import { UserError } from '../../../ir/errors.js';
import type { Graph, Value } from '../../../ir/graph.js';
import { type Layout, type Placement, formatPlacement, parsePlacement } from '../../../ir/layout.js';
import type { DeviceMesh } from '../mesh.js';
import type { Seed } from '../propagate.js';
import { type AxisPreset, PRESETS } from './index.js';
import type { AxisSeeds, Preset, StrategyContext } from './types.js';

/** An annotation function: for ONE mesh axis (ctx.axis), the seeds. */
export type AnnotateFn = (ctx: StrategyContext) => AxisSeeds;

/** What ShardOptions.strategy accepts besides a name. */
export type CustomStrategy = AnnotateFn | Preset | readonly Preset[];

/** The Value.meta key prefix of pinned placements (`sharding.pin.tp` = `R`). */
export const PIN_META = 'sharding.pin.';
/** The Value.meta key of a pin's reason. */
export const PIN_WHY_META = 'sharding.pin.why';

const isPreset = (s: CustomStrategy): s is Preset => typeof s === 'object' && !Array.isArray(s);

/** The name a custom strategy is recorded under in the plan (`custom:<name>`). */
export function customStrategyName(s: CustomStrategy): string {
  if (typeof s === 'function') return `custom:${s.name || 'annotate'}`;
  if (isPreset(s)) return `custom:${s.name}`;
  return `custom:${(s as readonly Preset[]).map((p) => p.name).join('+')}`;
}

/** Which (custom or built-in) preset annotates each mesh axis, in mesh order. */
export function assignCustomStrategy(s: CustomStrategy, mesh: DeviceMesh): AxisPreset[] {
  if (typeof s === 'function') {
    const preset: Preset = { name: s.name || 'custom', axis: '*', annotate: s };
    return mesh.axes.map((a) => ({ axis: a.name, preset }));
  }
  const presets: readonly Preset[] = isPreset(s) ? [s] : (s as readonly Preset[]);
  if (presets.length === 0) throw new UserError('a custom strategy needs at least one preset');
  const byAxis = new Map<string, Preset>();
  for (const p of presets) {
    if (typeof p.annotate !== 'function' || !p.name) throw new UserError('a custom preset needs a name, an axis and an annotate function');
    if (p.mpmd) throw new UserError(`custom preset ${p.name}: MPMD (pipeline) presets are built in only`);
    const axis = mesh.hasAxis(p.axis) ? p.axis : mesh.axes.length === 1 ? mesh.axes[0]!.name : undefined;
    if (!axis) throw new UserError(`custom preset ${p.name} needs a mesh axis named ${p.axis} (the mesh ${mesh} has ${mesh.axisNames().join(', ')})`);
    const prev = byAxis.get(axis);
    if (prev && prev !== p) throw new UserError(`presets ${prev.name} and ${p.name} both want mesh axis ${axis}`);
    byAxis.set(axis, p);
  }
  return mesh.axes.map((a) => {
    const own = byAxis.get(a.name) ?? PRESETS.find((p) => p.axis === a.name && !p.mpmd);
    if (!own) throw new UserError(`mesh axis ${a.name} has no strategy: give a custom preset with axis ${JSON.stringify(a.name)}`);
    return { axis: a.name, preset: own };
  });
}

/**
 * Marks `value` to take `layout` (per mesh axis; a Layout or `{ tp: 'R' }`) whatever the strategy
 * seeds, with the reason shown by `explain`. For passes (examples/api/custom-pass.ts).
 */
export function pinLayout(value: Value, layout: Layout | Readonly<Record<string, string | Placement>>, why: string): void {
  const entries = layout instanceof Map ? [...layout.entries()] : Object.entries(layout);
  for (const [axis, p] of entries) {
    const text = typeof p === 'string' ? p : formatPlacement(p);
    try {
      parsePlacement(text);
    } catch {
      throw new UserError(`pinLayout: ${JSON.stringify(text)} is not a placement (R, S(1), S(0:8), P(sum))`, { tensor: value.name });
    }
    value.meta.set(PIN_META + axis, text);
  }
  value.meta.set(PIN_WHY_META, why);
}

/** The pinned placements of the graph on one axis, as seeds (graph order: inputs, constants, node outputs). */
export function pinnedSeeds(graph: Graph, axis: string): Map<Value, Seed> {
  const out = new Map<Value, Seed>();
  const key = PIN_META + axis;
  const values: Value[] = [...graph.inputs, ...graph.initializers, ...graph.nodes.flatMap((n) => n.outputs)];
  for (const v of values) {
    const text = v.meta.get(key);
    if (text === undefined) continue;
    let placement: Placement;
    try {
      placement = parsePlacement(text);
    } catch {
      throw new UserError(`pinned placement ${JSON.stringify(text)} on axis ${axis} does not parse`, { tensor: v.name });
    }
    out.set(v, { placement, why: `pinned: ${v.meta.get(PIN_WHY_META) ?? 'by a pass'}`, exactUnit: true });
  }
  return out;
}

/** The strategy's seeds of one axis with the pins laid over them (a pin wins). */
export function withPins(graph: Graph, axis: string, seeds: ReadonlyMap<Value, Seed>): Map<Value, Seed> {
  const out = new Map(seeds);
  for (const [v, s] of pinnedSeeds(graph, axis)) out.set(v, s);
  return out;
}
