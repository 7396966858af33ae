/**
 * schedule.json: per device, the ordered steps of its program (kernel launches and collectives)
 * with the values each reads and writes, the steps it depends on, and its stream: `compute`
 * (kernels, LocalShard/LocalPartial) or `comm` (every other collective). Each stream runs its steps
 * in this order; a step waits for the steps it depends on. `order` is 'overlap' when the
 * scheduling pass (src/passes/schedule) reordered the programs so collectives start as soon as
 * their inputs are ready with independent compute behind them, else 'program'.
 * With a hardware file (partition --hardware) every step has its estimated start and end (ms, from
 * the cost model) and each device an `estimate`: critical path (the chain of steps that sets the
 * time), compute and communication time, and the communication hidden behind compute.
 * Pipelined plans (MPMD): each device lists its stage's steps, micro-batch by micro-batch; a step
 * carries its stage, micro-batch and clock (stage + micro-batch: GPipe/1F1B forward fill), and
 * `pipeline` holds the clock table.
 * Device twins (passes/sharding/lower.ts deviceTwin) share their steps (the same objects), and
 * scheduleJson writes each distinct steps array's text once.
 */
import { plainAttrValue } from '../ir/attrs.js';
import { COLLECTIVE_DOMAIN, type Graph, type Node, type Value } from '../ir/graph.js';
import { GROUP_ATTR } from '../ir/ops/collective.js';
import { canonicalJson } from './canonical.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import { deviceTwin } from '../passes/sharding/lower.js';
import type { OpRegistry } from '../ir/registry.js';
import type { Hardware } from '../hardware/hardware.js';
import { deviceTiming, streamOf, type Stream, type Timing, wasReordered } from '../passes/schedule/index.js';
import { PIPELINE_MICRO_BATCH_META, PIPELINE_STAGE_META, type PipelineInfo } from '../passes/sharding/plan.js';

export interface CollectiveStepInfo {
  kind: string;
  /** Mesh axis the collective runs over (absent for Send/Recv). */
  axis?: string;
  /** Devices taking part, ordered along the axis (this device included): the node's `_group`, else the mesh group. */
  group?: number[];
  /** The node's other attributes (dim, unit, reduce, peer_stage, tag, ...). */
  attributes: Record<string, number | string | number[] | string[]>;
}

export interface ScheduleStep {
  id: number;
  kind: 'kernel' | 'collective';
  node: string;
  op: string;
  /** '' = the default ONNX domain. */
  domain: string;
  /** Value names read ('' for an absent optional input). */
  inputs: string[];
  outputs: string[];
  /** Ids of the steps that produce this step's inputs (sorted). */
  dependencies: number[];
  collective?: CollectiveStepInfo;
  /** The stream that runs the step (always written; absent in schedules of older bundles: kernels compute, collectives comm). */
  stream?: Stream;
  /** With a hardware file: estimated start and end (ms from the start of a run). */
  start?: number;
  end?: number;
  /** Pipelined plans: the stage the step belongs to, its micro-batch, and its clock in the forward schedule (stage + micro-batch). */
  stage?: number;
  microBatch?: number;
  clock?: number;
}

export interface DeviceSchedule {
  device: number;
  coords: number[];
  /** The device's program (relative to the bundle). */
  program: string;
  inputs: string[];
  outputs: string[];
  steps: ScheduleStep[];
  /** With a hardware file: the two-stream estimate of this order. */
  estimate?: DeviceScheduleEstimate;
}

export interface DeviceScheduleEstimate {
  /** The run's estimated length: the end of its last step, which the critical path sets. */
  criticalPathMs: number;
  /** Step ids of the critical path, first to last. */
  criticalPath: number[];
  computeMs: number;
  communicationMs: number;
  /** Communication time during which the compute stream is busy too, and its share of communicationMs. */
  hiddenCommunicationMs: number;
  hiddenCommunicationPercent: number;
  /** One stream, no overlap: the sum of every step's time. */
  serialMs: number;
}

export interface Schedule {
  order: 'program' | 'overlap';
  /** The hardware file the estimates are for (name), when given. */
  hardware?: string;
  devices: DeviceSchedule[];
  /** Pipelined plans: the forward schedule over the stages (see passes/sharding/pipeline/schedule.ts). */
  pipeline?: PipelineSchedule;
}

export interface PipelineSchedule {
  axis: string;
  stages: number;
  microBatches: number;
  /** At each clock, which stage runs which micro-batch. */
  clocks: { clock: number; work: { stage: number; microBatch: number }[] }[];
  /** The fraction of a run each stage idles: (stages - 1) / (microBatches + stages - 1). */
  bubble: number;
  stageCosts: number[];
}

export function pipelineSchedule(p: PipelineInfo): PipelineSchedule {
  return {
    axis: p.axis,
    stages: p.stages,
    microBatches: p.microBatches,
    clocks: p.clocks.map((c) => ({ clock: c.clock, work: c.work.map((w) => ({ ...w })) })),
    bubble: (p.stages - 1) / (p.microBatches + p.stages - 1),
    stageCosts: p.stageCosts.slice(),
  };
}

/** Options of the estimated times (partition --hardware). */
export interface ScheduleEstimateOptions {
  hardware: Hardware;
  registry: OpRegistry;
}

/** Rounded to 6 significant digits: estimates, written deterministically and readably. */
const sig = (x: number): number => (x === 0 ? 0 : Number(x.toPrecision(6)));

export function deviceSchedule(
  graph: Graph,
  device: number,
  coords: number[],
  mesh: DeviceMesh,
  program: string,
  estimate?: ScheduleEstimateOptions,
): DeviceSchedule {
  const timing = estimate && deviceTiming(graph, mesh, estimate.hardware, estimate.registry);
  const out = { coords: coords.slice(), device } as DeviceSchedule;
  if (timing) out.estimate = scheduleEstimate(timing);
  out.inputs = graph.inputs.filter((v) => !v.constant).map((v) => v.name);
  out.outputs = graph.outputs.map((v) => v.name);
  out.program = program;
  // A device twin (passes/sharding/lower.ts deviceTwin) has its twin's steps: the same objects.
  const twin = deviceTwin(graph);
  const built = twin && stepsBuilt.get(twin);
  const same = built && built.nodes === twin.nodes && built.mesh === mesh && built.hardware === estimate?.hardware && built.registry === estimate?.registry;
  out.steps = same ? built.steps : scheduleSteps(graph, device, mesh, timing);
  stepsBuilt.set(graph, { nodes: graph.nodes, mesh, hardware: estimate?.hardware, registry: estimate?.registry, steps: out.steps });
  return out;
}

/** The steps deviceSchedule built per graph, and what they were built from. */
const stepsBuilt = new WeakMap<Graph, { nodes: readonly Node[]; mesh: DeviceMesh; hardware?: Hardware; registry?: OpRegistry; steps: ScheduleStep[] }>();

/** The steps of a device program in its order (`timing`: estimated times). */
function scheduleSteps(graph: Graph, device: number, mesh: DeviceMesh, timing: Timing | undefined): ScheduleStep[] {
  const producer = new Map<Value, number>();
  // Every object is built with its keys in sorted order (optional ones only when present), so
  // canonicalJson writes schedule.json, the largest file of a bundle, without sorted copies.
  return graph.nodes.map((n, id): ScheduleStep => {
    const deps = new Set<number>();
    for (const v of n.inputs) {
      const p = v ? producer.get(v) : undefined;
      if (p !== undefined) deps.add(p);
    }
    for (const o of n.outputs) producer.set(o, id);
    const kind = n.domain === COLLECTIVE_DOMAIN ? 'collective' : 'kernel';
    const stageMeta = n.meta.get(PIPELINE_STAGE_META);
    const mbMeta = n.meta.get(PIPELINE_MICRO_BATCH_META);
    const stage = stageMeta === undefined ? undefined : Number(stageMeta);
    const microBatch = mbMeta === undefined ? undefined : Number(mbMeta);
    const time = timing?.steps[id];
    const dependencies = [...deps].sort((a, b) => a - b);
    const inputs = n.inputs.map((v) => v?.name ?? '');
    const outputs = n.outputs.map((v) => v.name);
    // The common steps as literals (one object shape each, cheap for canonicalJson to check).
    if (stage === undefined && microBatch === undefined && !time) {
      if (kind === 'kernel') return { dependencies, domain: n.domain, id, inputs, kind, node: n.label, op: n.op, outputs, stream: streamOf(n) };
      const collective = collectiveInfo(n, device, mesh);
      return { collective, dependencies, domain: n.domain, id, inputs, kind, node: n.label, op: n.op, outputs, stream: streamOf(n) };
    }
    const step = {} as ScheduleStep;
    if (stage !== undefined && microBatch !== undefined) step.clock = stage + microBatch;
    if (kind === 'collective') step.collective = collectiveInfo(n, device, mesh);
    step.dependencies = dependencies;
    step.domain = n.domain;
    if (time) step.end = sig(time.end * 1e3);
    step.id = id;
    step.inputs = inputs;
    step.kind = kind;
    if (microBatch !== undefined) step.microBatch = microBatch;
    step.node = n.label;
    step.op = n.op;
    step.outputs = outputs;
    if (stage !== undefined) step.stage = stage;
    if (time) step.start = sig(time.start * 1e3);
    step.stream = streamOf(n);
    return step;
  });
}

/** A collective step's `collective` (keys in sorted order, as deviceSchedule's). */
function collectiveInfo(n: Node, device: number, mesh: DeviceMesh): CollectiveStepInfo {
  const attributes: CollectiveStepInfo['attributes'] = {};
  let axis: string | undefined;
  let group: number[] | undefined;
  for (const [k, a] of n.attrs.entries()) {
    const v = plainAttrValue(a);
    if (v === undefined) continue;
    if (k === 'axis' && typeof v === 'string') axis = v;
    else if (k === GROUP_ATTR && Array.isArray(v)) group = (v as number[]).slice();
    else attributes[k] = v;
  }
  if (!group && axis !== undefined && mesh.hasAxis(axis)) group = mesh.group(device, axis);
  const info = { attributes } as CollectiveStepInfo;
  if (axis !== undefined) info.axis = axis;
  if (group !== undefined) info.group = group;
  info.kind = n.op;
  return info;
}

/** The per-device figures of a timing (seconds → ms). */
export function scheduleEstimate(t: Timing): DeviceScheduleEstimate {
  return {
    communicationMs: sig(t.commTime * 1e3),
    computeMs: sig(t.computeTime * 1e3),
    criticalPath: t.criticalPath.slice(),
    criticalPathMs: sig(t.makespan * 1e3),
    hiddenCommunicationMs: sig(t.hiddenComm * 1e3),
    hiddenCommunicationPercent: t.commTime > 0 ? sig((100 * t.hiddenComm) / t.commTime) : 0,
    serialMs: sig(t.serial * 1e3),
  };
}

/** schedule.json of a plan's device programs (`estimate`: per-step times from a hardware file). */
export function buildSchedule(
  plan: { mesh: DeviceMesh; pipeline?: PipelineInfo },
  programs: readonly { device: number; coords: number[]; graph: Graph }[],
  programPath: (device: number) => string,
  estimate?: ScheduleEstimateOptions,
): Schedule {
  const ordered = programs.slice().sort((a, b) => a.device - b.device);
  const schedule = { devices: ordered.map((p) => deviceSchedule(p.graph, p.device, p.coords, plan.mesh, programPath(p.device), estimate)) } as Schedule;
  if (estimate) schedule.hardware = estimate.hardware.name;
  schedule.order = ordered.some((p) => wasReordered(p.graph)) ? 'overlap' : 'program';
  if (plan.pipeline) schedule.pipeline = pipelineSchedule(plan.pipeline);
  return schedule;
}


/**
 * schedule.json's text: exactly canonicalJson(schedule), with each distinct steps array rendered
 * once (device twins share theirs: deviceSchedule), which is most of the work for a 70B model's
 * 16 MB file. A device's `steps` is its last key and `devices` the schedule's first, so each device
 * is its other keys' canonical text with the steps text spliced in at its indentation; anything
 * else (another key order, no devices) is written by canonicalJson itself.
 */
export function scheduleJson(schedule: Schedule): string {
  const { devices, ...rest } = schedule;
  const restKeys = Object.keys(rest).filter((k) => (rest as Record<string, unknown>)[k] !== undefined);
  const plain = (d: DeviceSchedule): boolean => {
    const keys = Object.keys(d).filter((k) => k !== 'steps' && (d as unknown as Record<string, unknown>)[k] !== undefined);
    return Array.isArray(d.steps) && keys.length > 0 && keys.every((k) => k < 'steps');
  };
  if (!Array.isArray(devices) || !devices.length || !restKeys.every((k) => k > 'devices') || !devices.every(plain)) return canonicalJson(schedule);
  const indent = (text: string, by: string): string => text.replace(/\n/g, `\n${by}`);
  const stepsText = new Map<ScheduleStep[], string>();
  const deviceText = (d: DeviceSchedule): string => {
    const { steps, ...head } = d;
    let text = stepsText.get(steps);
    if (text === undefined) stepsText.set(steps, (text = indent(canonicalJson(steps).slice(0, -1), '      ')));
    const h = canonicalJson(head).slice(0, -3); // without the closing "\n}\n"
    return `    ${indent(h, '    ')},\n      "steps": ${text}\n    }`;
  };
  const tail = canonicalJson(rest).slice(1, -3); // the other keys' lines, without the braces
  return `{\n  "devices": [\n${devices.map(deviceText).join(',\n')}\n  ]${tail ? `,${tail}` : ''}\n}\n`;
}
