/**
 * report.json and report.html: per device the estimated peak memory, flops, parameter bytes and
 * bytes communicated; every collective with its kind, mesh axes, bytes, tensor and the reason it
 * exists; the same estimates for the unsharded program for comparison; and, when `shardc bench
 * --profile` has added one, a `profile` section. With a hardware file, per device the estimated
 * times, and of its two-stream schedule (src/passes/schedule) the critical path and the
 * communication hidden behind compute; for pipelined plans the micro-batch schedule's bubble.
 * report.html (src/bundle/report-html) adds the op graph laid out with dagre and the per-device
 * schedule timeline. A device twin (passes/sharding/lower.ts deviceTwin) has its twin's figures,
 * computed once.
 */
import type { AutoChoiceDetail } from '../passes/sharding/strategies/auto.js';
import { basename } from 'node:path';
import { COLLECTIVE_DOMAIN, type Graph } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import { type DeviceProgram, deviceTwin } from '../passes/sharding/lower.js';
import type { CollectiveRecord, ShardPlan } from '../passes/sharding/plan.js';
import type { OpSummary, ProfileEntry } from '../bench/profile.js';
import { deviceNodeFlops, estimateGraph, type GraphEstimate } from './estimate.js';
import type { Hardware } from '../hardware/hardware.js';
import { type DeviceCost, deviceCost } from '../passes/sharding/cost.js';
import { layoutOpGraph, opGraphView, renderReportHtml, type LaidOutGraph } from './report-html/index.js';
import { deviceSchedule, type DeviceSchedule, scheduleEstimate } from './schedule.js';
import { deviceTiming } from '../passes/schedule/index.js';
import { bubbleFraction } from '../passes/sharding/pipeline/schedule.js';

export interface DeviceReport {
  device: number;
  coords: number[];
  peakMemoryBytes: number;
  activationPeakBytes: number;
  paramBytes: number;
  flops: number;
  /** Sum of the bytes this device sends for its collectives. */
  commBytes: number;
  collectives: number;
  /** With a hardware file (passes/sharding/cost.ts): estimated milliseconds per run, single stream. */
  computeMs?: number;
  communicationMs?: number;
  totalMs?: number;
  /**
   * With a hardware file: the two-stream estimate of the device's schedule (schedule.json order,
   * src/passes/schedule): the critical path (its length, and its steps' nodes first to last) and
   * the communication hidden behind compute.
   */
  schedule?: DeviceScheduleReport;
}

export interface DeviceScheduleReport {
  criticalPathMs: number;
  /** Nodes of the chain of steps that sets the time, first to last. */
  criticalPath: string[];
  communicationMs: number;
  hiddenCommunicationMs: number;
  hiddenCommunicationPercent: number;
  /** One stream, no overlap (= totalMs). */
  serialMs: number;
}

export interface BundleReport {
  mesh: string;
  strategy: string;
  devices: DeviceReport[];
  collectives: CollectiveRecord[];
  unsharded: { peakMemoryBytes: number; paramBytes: number; flops: number };
  /** From `shardc bench --profile --out` (times in ms); report.html shows it when present. */
  profile?: ReportProfile;
  /** The hardware the per-device ms estimates are for (partition --hardware), and the slowest device's ms. */
  hardware?: { name: string; file?: string; device: string; memoryBytes: number; memoryLimitBytes?: number; planMs: number; scheduledPlanMs?: number };
  /**
   * Pipelined plans: the forward micro-batch schedule (GPipe fill and drain; inference has no
   * backward pass, so 1F1B reduces to this forward fill) and its bubble: the fraction of a run
   * each stage idles, (stages - 1) / (micro-batches + stages - 1).
   */
  pipeline?: { axis: string; stages: number; microBatches: number; clocks: number; schedule: 'forward fill'; bubble: number };
  /**
   * `--strategy auto`: what it weighed and why it chose its plan — every preset candidate with its
   * estimated cost (seconds: communication, compute, memory traffic) or why it was not planned, the
   * layout search's status, size and cost (and the preset its plan equals), the memory limit and
   * the chosen plan's peak, and with `devices` every mesh shape tried. Deterministic (the solver's
   * times are left out).
   */
  auto?: AutoChoiceDetail;
}

/** Options of buildReport: the hardware file and memory limit of `partition --hardware/--memory-limit`. */
export interface ReportOptions {
  hardware?: Hardware;
  memoryLimitBytes?: number;
}

export interface ReportProfile {
  timing: string;
  totalMs: number;
  byOp?: OpSummary[];
  /** Every profiled launch and collective (per device and node): the timeline uses their times. */
  entries?: ProfileEntry[];
}

/** What report.html draws besides report.json: the laid-out op graph and every device's schedule. */
export interface ReportView {
  graph: LaidOutGraph;
  schedules: DeviceSchedule[];
}

/** The plan and programs each report was built from, so reportHtml(report) can draw the graph. */
const sources = new WeakMap<BundleReport, { plan: ShardPlan; programs: readonly DeviceProgram[]; registry: OpRegistry; hardware?: Hardware }>();

/**
 * Lays out the plan's op graph with dagre (collapsed by layer above 400 nodes) and builds each
 * device's schedule; `schedules` (device order), when the caller has built them already (write.ts
 * for schedule.json), are used as they are.
 */
export function buildReportView(plan: ShardPlan, programs: readonly DeviceProgram[], schedules?: readonly DeviceSchedule[]): ReportView {
  const ordered = programs.slice().sort((a, b) => a.device - b.device);
  return {
    graph: layoutOpGraph(opGraphView(plan)),
    schedules: schedules ? schedules.slice() : ordered.map((p) => deviceSchedule(p.graph, p.device, p.coords, plan.mesh, `device-${p.device}/model.onnx`)),
  };
}

export function buildReport(plan: ShardPlan, programs: readonly DeviceProgram[], registry: OpRegistry, strategy: string, opts: ReportOptions = {}): BundleReport {
  for (const c of plan.collectives)
    if (!c.reason || c.reason.trim() === '') throw new Error(`collective ${c.node} (${c.kind} of ${c.tensor}) has no reason: a bug in the sharding pass`);
  const byNode = new Map(plan.collectives.map((c) => [c.node, c]));
  // A device twin (passes/sharding/lower.ts deviceTwin) has its twin's figures: computed once.
  const figures = new Map<Graph, { e: GraphEstimate; commBytes: number; collectives: number; cost?: DeviceCost }>();
  const devices = programs.map((p): DeviceReport => {
    const twin = deviceTwin(p.graph);
    let f = twin && figures.get(twin);
    if (!f) {
      const e = estimateGraph(p.graph, registry, { flops: deviceNodeFlops });
      let commBytes = 0;
      let collectives = 0;
      for (const n of p.graph.nodes) {
        if (n.domain !== COLLECTIVE_DOMAIN) continue;
        collectives++;
        commBytes += byNode.get(n.name)?.bytes ?? 0;
      }
      f = { e, commBytes, collectives, cost: opts.hardware && deviceCost(p.graph, p.device, plan.mesh, opts.hardware, registry, e) };
    }
    figures.set(p.graph, f);
    const r: DeviceReport = { device: p.device, coords: p.coords.slice(), ...f.e, commBytes: f.commBytes, collectives: f.collectives };
    if (opts.hardware) {
      const c = f.cost!;
      Object.assign(r, { computeMs: c.computeMs, communicationMs: c.communicationMs, totalMs: c.totalMs });
      const t = deviceTiming(p.graph, plan.mesh, opts.hardware, registry);
      const est = scheduleEstimate(t);
      r.schedule = {
        criticalPathMs: est.criticalPathMs,
        criticalPath: t.criticalPath.map((i) => p.graph.nodes[i]!.label),
        communicationMs: est.communicationMs,
        hiddenCommunicationMs: est.hiddenCommunicationMs,
        hiddenCommunicationPercent: est.hiddenCommunicationPercent,
        serialMs: est.serialMs,
      };
    }
    return r;
  });
  const u = estimateGraph(plan.graph, registry, { skipCollectives: true });
  const report: BundleReport = {
    mesh: plan.mesh.toString(),
    strategy,
    devices,
    collectives: plan.collectives.map((c) => ({ ...c, meshAxes: c.meshAxes.slice() })),
    unsharded: { peakMemoryBytes: u.peakMemoryBytes, paramBytes: u.paramBytes, flops: u.flops },
  };
  if (opts.hardware)
    report.hardware = {
      name: opts.hardware.name,
      ...(opts.hardware.file ? { file: basename(opts.hardware.file) } : {}),
      device: opts.hardware.device.name,
      memoryBytes: opts.hardware.device.memoryBytes,
      ...(opts.memoryLimitBytes !== undefined ? { memoryLimitBytes: opts.memoryLimitBytes } : {}),
      planMs: Math.max(0, ...devices.map((d) => d.totalMs ?? 0)),
      scheduledPlanMs: Math.max(0, ...devices.map((d) => d.schedule?.criticalPathMs ?? 0)),
    };
  if (plan.autoChoice) report.auto = plan.autoChoice as AutoChoiceDetail;
  if (plan.pipeline) {
    const p = plan.pipeline;
    report.pipeline = { axis: p.axis, stages: p.stages, microBatches: p.microBatches, clocks: p.clocks.length, schedule: 'forward fill', bubble: bubbleFraction(p.stages, p.microBatches) };
  }
  sources.set(report, { plan, programs, registry, hardware: opts.hardware });
  return report;
}

/**
 * The self-contained report.html (src/bundle/report-html/page.ts). `view` defaults to the one built
 * from the plan and programs this report came from (buildReport); a report read back from JSON
 * without a view renders its tables only.
 */
export function reportHtml(r: BundleReport, model: string, view?: ReportView): string {
  const src = sources.get(r);
  const v = view ?? (src ? buildReportView(src.plan, src.programs, src.hardware && estimatedSchedules(src.plan, src.programs, { hardware: src.hardware, registry: src.registry })) : undefined);
  return renderReportHtml({ model, report: r, graph: v?.graph, schedules: v?.schedules });
}

/** Every device's schedule with estimated times (device order), as schedule.json has them with a hardware file. */
function estimatedSchedules(plan: ShardPlan, programs: readonly DeviceProgram[], estimate: { hardware: Hardware; registry: OpRegistry }): DeviceSchedule[] {
  return programs
    .slice()
    .sort((a, b) => a.device - b.device)
    .map((p) => deviceSchedule(p.graph, p.device, p.coords, plan.mesh, `device-${p.device}/model.onnx`, estimate));
}
