/**
 * shardGraph: a graph + a device mesh + a strategy → a ShardPlan (plan.ts).
 *
 *  1. bind symbolic dims (`bindings`, the CLI's --dim) and run the default pass pipeline, so every
 *     shape is static and shape computations are folded into constants; a dim still symbolic is a
 *     UserError naming the value and the symbol;
 *  2. resolve the strategy: presets per mesh axis (strategies/index.ts), a spec file
 *     (spec-file.ts), or `auto` (strategies/auto.ts: each applicable preset is planned and the
 *     cheapest estimated total wins; a placeholder for the real search);
 *     a strategy with the `pipeline` preset is MPMD and goes to pipeline/index.ts (stages,
 *     micro-batches, Send/Recv), which plans one micro-batch through this same path with
 *     ShardOptions.stageAxis set (every value replicated on the stage axis, no propagation there);
 *  3. per mesh axis, independently: the nodes' candidates (rules + all-R), the unit analysis
 *     (units.ts), the seeds (units reconciled with the analysis), and propagation (propagate.ts);
 *  4. assemble the plan: each value's layout (Value.layout, every axis explicit, mesh order), each
 *     node's chosen candidate (node.meta `sharding.<axis>`, plan.candidates), free constants cloned
 *     when consumers need them in different layouts, and the collectives (reshard.ts) before each
 *     consumer that needs another layout, after a seeded value whose producer makes another one,
 *     and at the end so that every graph output is replicated (the output keeps its name; the
 *     value before the gather is renamed `<name>.sharded`), except outputs seeded `resident`
 *     (a head-sharded KV cache), which keep their seeded layout.
 */
import { UserError } from '../../ir/errors.js';
import { type Graph, type Node, Value } from '../../ir/graph.js';
import { type Layout, type Placement, Replicate, Shard, formatPlacement } from '../../ir/layout.js';
import type { OpRegistry } from '../../ir/registry.js';
import { symbolsOf } from '../../ir/shape.js';
import { type PipelineFactory, defaultPipeline } from '../manager.js';
import { annotatePatterns } from '../patterns.js';
import { namer } from '../util.js';
import { formatCandidate } from './check-rule.js';
import type { DeviceMesh } from './mesh.js';
import type { ShardPlan } from './plan.js';
import { type AxisPropagation, type CostModel, type Seed, propagateAxis } from './propagate.js';
import { Resharder, fullLayout, layoutEq, layoutKey } from './reshard.js';
import type { Candidate, ShardingRuleRegistry } from './rule.js';
import { readSpecFile, specSeeds } from './spec-file.js';
import { type AutoSearchOptions, planAuto } from './strategies/auto.js';
import { type AxisPreset, assignPresets } from './strategies/index.js';
import { type CustomStrategy, assignCustomStrategy, customStrategyName, withPins } from './strategies/custom.js';
import { type UnitAnalysis, analyseUnits, nodeCandidates } from './units.js';
import { replicatedAxis, shardPipeline } from './pipeline/index.js';

export interface ShardOptions extends AutoSearchOptions {
  /**
   * A preset name (`megatron`, `data`, `data+megatron`), `auto`, `spec`, or a path to a spec file
   * (`*.json`); or a custom strategy (strategies/custom.ts): an annotation function, a Preset, or
   * a list of Presets.
   */
  strategy: string | CustomStrategy;
  /**
   * The graph passes run before sharding (default: defaultPipeline). A factory, so that the
   * pipeline gets this call's registry and bindings: `(o) => defaultPipeline(o).insertAfter(...)`.
   */
  pipeline?: PipelineFactory;
  registry: OpRegistry;
  rules: ShardingRuleRegistry;
  /** Values of symbolic dims (--dim batch=1,sequence=128). */
  bindings?: Record<string, number>;
  /** Spec file for strategy `spec` (or when the strategy itself is a path). */
  specFile?: string;
  cost?: CostModel;
  /** Strategy `pipeline`: micro-batches per run (default and checks in pipeline/index.ts). */
  microBatches?: number;
  /**
   * Internal (pipeline/index.ts): the stage axis of a pipeline whose micro-batch graph is being
   * planned; every value is replicated on it and no propagation runs there.
   */
  stageAxis?: string;
}

export { printPlan } from './print-plan.js';

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/** Every graph input's symbols must be bound, every value static after the passes. */
function checkBound(graph: Graph, bindings: Record<string, number>): void {
  for (const v of graph.inputs)
    for (const d of v.shape ?? [])
      for (const s of symbolsOf(d))
        if (!(s in bindings))
          throw new UserError(`input ${v.name} has the symbolic dim ${JSON.stringify(s)}; sharding needs static shapes: bind it with --dim ${s}=N`, {
            tensor: v.name,
          });
}

function checkStatic(graph: Graph): void {
  const all: Value[] = [...graph.inputs, ...graph.initializers, ...graph.nodes.flatMap((n) => n.outputs)];
  for (const v of all) {
    if (!v.shape) throw new UserError(`the shape of ${v.name} is unknown after shape inference; sharding needs static shapes`, { tensor: v.name });
    const syms = v.shape.flatMap((d) => symbolsOf(d));
    if (syms.length)
      throw new UserError(`${v.name} has the symbolic dim ${JSON.stringify(syms[0])} after shape inference; bind it with --dim ${syms[0]}=N`, {
        tensor: v.name,
      });
  }
}

interface Resolved {
  /** Preset per axis, or spec seeds per axis. */
  presets?: AxisPreset[];
  spec?: Map<string, Map<Value, Seed>>;
}

function isSpecPath(s: string): boolean {
  return /\.json$/i.test(s);
}

/** Seeds with units reconciled with the unit analysis (presets) or checked (spec). */
function finalSeeds(seeds: ReadonlyMap<Value, Seed>, units: UnitAnalysis): Map<Value, Seed> {
  const out = new Map<Value, Seed>();
  for (const [v, s] of seeds) {
    const p = s.placement;
    const shape = (v.shape ?? []) as number[];
    if (p.kind === 'shard' && p.dim >= shape.length)
      throw new UserError(`seed ${formatPlacement(p)} of ${v.name} names dim ${p.dim}, but it has rank ${shape.length}`, { tensor: v.name });
    if (p.kind !== 'shard' || s.exactUnit) {
      out.set(v, s);
      continue;
    }
    const u = p.unit ?? 1;
    const a = units.unit(v, p.dim);
    const l = (u / gcd(u, a)) * a;
    const n = shape[p.dim]!;
    const unit = n % l === 0 ? l : n % u === 0 ? u : 1;
    const why = unit === u ? s.why : `${s.why}; unit ${unit} from the unit analysis`;
    out.set(v, { ...s, why, placement: Shard(p.dim, unit) });
  }
  return out;
}

interface AxisRun {
  prop: AxisPropagation;
  seeds: Map<Value, Seed>;
}

function runAxes(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, seedsFor: (axis: string) => Map<Value, Seed>): AxisRun[] {
  return mesh.axes.map((axis) => {
    if (axis.name === opts.stageAxis) return { prop: replicatedAxis(graph, axis.name), seeds: new Map() };
    const candidates = new Map<Node, Candidate[]>();
    for (const n of graph.nodes) candidates.set(n, nodeCandidates(n, opts.rules, axis.size));
    const units = analyseUnits(graph, candidates);
    // Layouts pinned by passes (strategies/custom.ts) override the strategy's seeds.
    const seeds = finalSeeds(withPins(graph, axis.name, seedsFor(axis.name)), units);
    const prop = propagateAxis(graph, axis, { registry: opts.registry, candidates, units, seeds, cost: opts.cost });
    return { prop, seeds };
  });
}

function presetSeeds(graph: Graph, mesh: DeviceMesh, registry: OpRegistry, presets: AxisPreset[]): (axis: string) => Map<Value, Seed> {
  const patterns = annotatePatterns(graph, registry);
  const cache = new Map<string, Map<Value, Seed>>();
  for (const { axis, preset } of presets) cache.set(axis, preset.annotate({ graph, mesh, axis: mesh.axis(axis), registry, patterns }));
  return (axis) => cache.get(axis) ?? new Map();
}

export function shardGraph(graph: Graph, mesh: DeviceMesh, opts: ShardOptions): ShardPlan {
  if (typeof opts.strategy !== 'string') return shardCustom(graph, mesh, opts, opts.strategy);
  const staged = opts.stageAxis === undefined && opts.strategy !== 'auto' && opts.strategy !== 'spec' && !isSpecPath(opts.strategy)
    ? assignPresets(opts.strategy, mesh)
    : undefined;
  if (staged?.some((p) => p.preset.mpmd)) return shardPipeline(graph, mesh, opts, staged, (o) => shardGraph(graph, mesh, o));
  const bindings = { ...(opts.bindings ?? {}) };
  checkBound(graph, bindings);
  // auto plans copies of the graph as it is (each binds and runs the passes, so that a pipeline
  // candidate still sees the symbolic batch it splits into micro-batches; strategies/auto.ts).
  if (opts.strategy === 'auto') return planAuto(graph, mesh, { ...opts, bindings }, shardGraph);
  (opts.pipeline ?? defaultPipeline)({ registry: opts.registry, bindings }).run(graph);
  checkStatic(graph);

  let resolved: Resolved;
  const strategyName = opts.strategy;
  if (opts.strategy === 'spec' || isSpecPath(opts.strategy)) {
    const file = opts.strategy === 'spec' ? opts.specFile : opts.strategy;
    if (!file) throw new UserError('strategy spec needs a spec file');
    resolved = { spec: specSeeds(readSpecFile(file), graph, mesh) };
  } else {
    resolved = { presets: assignPresets(opts.strategy, mesh) };
  }

  if (resolved.presets) return planWithPresets(graph, mesh, opts, resolved.presets, strategyName, bindings);
  const spec = resolved.spec!;
  const runs = runAxes(graph, mesh, opts, (axis) => spec.get(axis) ?? new Map());
  return assemble(graph, mesh, runs, strategyName, bindings);
}

/** shardGraph with a custom strategy (strategies/custom.ts): bind, run the passes, plan with its presets. */
function shardCustom(graph: Graph, mesh: DeviceMesh, opts: ShardOptions, strategy: CustomStrategy): ShardPlan {
  const presets = assignCustomStrategy(strategy, mesh);
  const bindings = { ...(opts.bindings ?? {}) };
  checkBound(graph, bindings);
  (opts.pipeline ?? defaultPipeline)({ registry: opts.registry, bindings }).run(graph);
  checkStatic(graph);
  return planWithPresets(graph, mesh, opts, presets, customStrategyName(strategy), bindings);
}

/** The plan of a graph (bound, passes run) under one preset per axis: prepare, seed, propagate, assemble. */
function planWithPresets(
  graph: Graph,
  mesh: DeviceMesh,
  opts: ShardOptions,
  presets: AxisPreset[],
  strategyName: string,
  bindings: Record<string, number>,
): ShardPlan {
  for (const p of new Set(presets.map((x) => x.preset))) p.prepare?.(graph);
  const runs = runAxes(graph, mesh, opts, presetSeeds(graph, mesh, opts.registry, presets));
  return assemble(graph, mesh, runs, strategyName, bindings);
}

const tag = (l: Layout, mesh: DeviceMesh): string =>
  mesh.axes.map((a) => `${a.name}_${formatPlacement(l.get(a.name) ?? Replicate).replace(/[^A-Za-z0-9]/g, '')}`).join('_');

function assemble(graph: Graph, mesh: DeviceMesh, runs: AxisRun[], strategy: string, bindings: Record<string, number>): ShardPlan {
  const axes = mesh.axisNames();
  const props = new Map(runs.map((r, i) => [axes[i]!, r.prop]));
  const graphInputs = new Set(graph.inputs);
  const newName = namer(graph);
  const resharder = new Resharder(graph, mesh, newName);
  const R = Replicate;
  const allR = new Map(axes.map((a) => [a, R] as [string, Placement]));
  const isFreeOn = (v: Value, axis: string): boolean => !!v.constant && !graphInputs.has(v) && !props.get(axis)!.seeded.has(v);
  const placedLayout = (v: Value): Map<string, Placement> => new Map(axes.map((a) => [a, props.get(a)!.placement.get(v) ?? R]));

  for (const v of graph.inputs) v.layout = placedLayout(v);
  const instances = new Map<Value, Map<string, Value>>();
  const freeAny = (v: Value): boolean => axes.some((a) => isFreeOn(v, a));
  for (const v of graph.initializers) if (!freeAny(v)) v.layout = placedLayout(v);

  const instanceOf = (v: Value, layout: Map<string, Placement>): Value => {
    const key = layoutKey(layout, mesh);
    let m = instances.get(v);
    if (!m) {
      v.layout = layout;
      instances.set(v, (m = new Map([[key, v]])));
      return v;
    }
    const hit = m.get(key);
    if (hit) return hit;
    const clone = new Value(newName(`${v.name}.${tag(layout, mesh)}`), v.dtype, v.shape?.slice());
    clone.constant = v.constant;
    clone.layout = layout;
    graph.initializers.push(clone);
    m.set(key, clone);
    return clone;
  };

  const canonical = new Map<Value, Value>();
  const nodes: Node[] = [];
  const emit = (n: Node): void => void nodes.push(n);
  const candidates = new Map<Node, Map<string, Candidate>>();
  for (const n of graph.nodes) {
    const chosen = new Map(axes.map((a) => [a, props.get(a)!.chosen.get(n)!]));
    candidates.set(n, chosen);
    for (const a of axes) n.meta.set(`sharding.${a}`, formatCandidate(chosen.get(a)!));
    n.inputs.forEach((v, i) => {
      if (!v) return;
      const wanted = new Map(axes.map((a) => [a, chosen.get(a)!.inputs[i] ?? R]));
      let src = canonical.get(v) ?? v;
      if (freeAny(v)) src = instanceOf(v, new Map(axes.map((a) => [a, isFreeOn(v, a) ? wanted.get(a)! : (props.get(a)!.placement.get(v) ?? R)])));
      n.inputs[i] = layoutEq(src.layout, wanted, mesh) ? src : resharder.get(src, wanted, { consumer: `${n.op} ${n.label}` }, emit);
    });
    nodes.push(n);
    n.outputs.forEach((o, j) => {
      o.layout = new Map(axes.map((a) => [a, chosen.get(a)!.outputs[j] ?? R]));
      const target = placedLayout(o);
      if (!layoutEq(o.layout, target, mesh)) canonical.set(o, resharder.get(o, target, { consumer: `the seed of ${o.name}` }, emit));
    });
  }
  graph.outputs.forEach((o, j) => {
    const src = canonical.get(o) ?? o;
    // Graph outputs end R on every axis, except where their seed keeps them resident (propagate.ts Seed.resident).
    const end = new Map(axes.map((a, i) => [a, runs[i]!.seeds.get(o)?.resident ? runs[i]!.seeds.get(o)!.placement : R]));
    const final = layoutEq(src.layout, end, mesh) ? src : resharder.get(src, end, { consumer: `graph output ${o.name}` }, emit);
    if (final !== o) {
      const name = o.name;
      o.name = newName(`${name}.sharded`);
      final.name = name;
      graph.outputs[j] = final;
    }
  });
  graph.nodes = nodes;
  for (const v of graph.initializers) v.layout ??= fullLayout(undefined, mesh);

  const seeds = new Map<string, string>();
  runs.forEach((r, i) => {
    for (const [v, s] of r.seeds) {
      const line = `${axes[i]}: ${formatPlacement(s.placement)} (${s.why})`;
      const prev = seeds.get(v.name);
      seeds.set(v.name, prev ? `${prev}; ${line}` : line);
    }
  });
  return { graph, mesh, strategy, bindings, collectives: resharder.records, seeds, candidates };
}
