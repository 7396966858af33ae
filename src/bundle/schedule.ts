/**
 * schedule.json: per device, the ordered steps of its program (kernel launches and collectives)
 * with the values each reads and writes and the steps it depends on. For now the order is the
 * local graph's program order (one stream, no overlap); `dependencies` already allow a runtime to
 * overlap a collective with independent kernels.
 * Pipelined plans (MPMD): each device lists its stage's steps, micro-batch by micro-batch; a step
 * carries its stage, micro-batch and clock (stage + micro-batch: GPipe/1F1B forward fill), and
 * `pipeline` holds the clock table.
 */
import { plainAttrValue } from '../ir/attrs.js';
import { COLLECTIVE_DOMAIN, type Graph, type Value } from '../ir/graph.js';
import { GROUP_ATTR } from '../ir/ops/collective.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
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
}

export interface Schedule {
  order: 'program';
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

export function deviceSchedule(graph: Graph, device: number, coords: number[], mesh: DeviceMesh, program: string): DeviceSchedule {
  const producer = new Map<Value, number>();
  const steps: ScheduleStep[] = graph.nodes.map((n, id) => {
    const deps = new Set<number>();
    for (const v of n.inputs) {
      const p = v ? producer.get(v) : undefined;
      if (p !== undefined) deps.add(p);
    }
    for (const o of n.outputs) producer.set(o, id);
    const step: ScheduleStep = {
      id,
      kind: n.domain === COLLECTIVE_DOMAIN ? 'collective' : 'kernel',
      node: n.label,
      op: n.op,
      domain: n.domain,
      inputs: n.inputs.map((v) => v?.name ?? ''),
      outputs: n.outputs.map((v) => v.name),
      dependencies: [...deps].sort((a, b) => a - b),
    };
    const stage = n.meta.get(PIPELINE_STAGE_META);
    const mb = n.meta.get(PIPELINE_MICRO_BATCH_META);
    if (stage !== undefined) step.stage = Number(stage);
    if (mb !== undefined) step.microBatch = Number(mb);
    if (stage !== undefined && mb !== undefined) step.clock = Number(stage) + Number(mb);
    if (step.kind === 'collective') {
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
      step.collective = { kind: n.op, axis, group, attributes };
    }
    return step;
  });
  return {
    device,
    coords: coords.slice(),
    program,
    inputs: graph.inputs.filter((v) => !v.constant).map((v) => v.name),
    outputs: graph.outputs.map((v) => v.name),
    steps,
  };
}

