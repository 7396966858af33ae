/**
 * The scheduling pass on the example GPT (src/passes/schedule): megatron at tp=2 with the H100
 * hardware file through `partition` (schedule.json streams, estimates and critical path,
 * report.json and report.html), micro-batched tensor parallelism whose collectives interleave and
 * hide behind the other micro-batch's compute, and the reordered programs run on the simulated
 * devices equal to the unsharded model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partitionModel } from '../../src/bundle/partition.js';
import type { BundleReport } from '../../src/bundle/report.js';
import type { Schedule } from '../../src/bundle/schedule.js';
import { deviceTimeline } from '../../src/bundle/report-html/index.js';
import { loadHardware, meshWithHardware } from '../../src/hardware/hardware.js';
import { COLLECTIVE_DOMAIN } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { checkCollectiveOrder, deviceTiming, scheduleDevicePrograms, wasReordered } from '../../src/passes/schedule/index.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { GPT_TINY } from '../bundle/cli-helper.js';
import { expectSpmdMatchesUnsharded, loadTransformer } from '../helpers/transformers.js';

const registry = createCoreRegistry();
const rules = createCoreShardingRules();
const H100 = join(__dirname, '..', '..', 'examples', 'hardware', 'h100-8x-nvlink.json');
const hw = loadHardware(H100);

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-schedule-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const readJson = <T>(dir: string, file: string): T => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T;

describe('megatron GPT at tp=2 with the H100 hardware file', () => {
  let out = '';
  beforeAll(() => {
    out = join(tmp, 'gpt-tp2');
    partitionModel(GPT_TINY, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out, shardcVersion: '0.0.0', hardware: H100 });
  });

  test('schedule.json: both streams, estimated times, critical path and hidden communication per device', () => {
    const s = readJson<Schedule>(out, 'schedule.json');
    expect(s.hardware).toBe(hw.name);
    // Megatron's collectives sit on one chain (every AllReduce feeds the next layer): nothing to reorder.
    expect(s.order).toBe('program');
    for (const d of s.devices) {
      const streams = new Set(d.steps.map((x) => x.stream));
      expect([...streams].sort()).toEqual(['comm', 'compute']);
      for (const x of d.steps) expect(x.stream).toBe(x.kind === 'kernel' ? 'compute' : 'comm');
      const e = d.estimate!;
      const last = Math.max(...d.steps.map((x) => x.end!));
      expect(e.criticalPathMs).toBe(last);
      // A pure chain: the critical path is every step, and no communication can hide.
      expect(e.criticalPath).toEqual(d.steps.map((x) => x.id));
      expect(e.hiddenCommunicationMs).toBe(0);
      expect(e.hiddenCommunicationPercent).toBe(0);
      expect(e.communicationMs).toBeGreaterThan(0);
      expect(e.criticalPathMs).toBeCloseTo(e.serialMs, 6);
      expect(e.computeMs + e.communicationMs).toBeCloseTo(e.serialMs, 6); // each rounded to 6 significant digits
      // Each step starts when its stream is free and its dependencies are done (no gaps on a chain).
      for (const x of d.steps) for (const dep of x.dependencies) expect(x.start!).toBeGreaterThanOrEqual(d.steps[dep]!.end! - 1e-9);
    }
  });

  test('report.json and report.html: critical path and hidden communication per device', () => {
    const r = readJson<BundleReport>(out, 'report.json');
    const s = readJson<Schedule>(out, 'schedule.json');
    for (const d of r.devices) {
      const sd = s.devices.find((x) => x.device === d.device)!;
      expect(d.schedule!.criticalPathMs).toBe(sd.estimate!.criticalPathMs);
      expect(d.schedule!.criticalPath).toEqual(sd.estimate!.criticalPath.map((i) => sd.steps[i]!.node));
      expect(d.schedule!.hiddenCommunicationPercent).toBe(0);
      expect(d.schedule!.serialMs).toBeCloseTo(d.totalMs!, 5);
    }
    expect(r.hardware!.scheduledPlanMs).toBe(Math.max(...r.devices.map((d) => d.schedule!.criticalPathMs)));
    // The timeline re-times schedule.json's steps with their estimated widths: the same times and critical path.
    for (const sd of s.devices) {
      const t = deviceTimeline(sd);
      expect(t.span).toBeCloseTo(sd.estimate!.criticalPathMs, 6);
      expect(t.criticalPath).toEqual(sd.estimate!.criticalPath);
      expect(t.steps.map((x) => x.stream)).toEqual(sd.steps.map((x) => x.stream));
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain(`Widths are the estimated times (ms) on ${hw.name}`);
    expect(html).toContain('hidden behind compute 0.000 (0.0%)'); // 0 of 0.03301 ms
    expect(html).toMatch(/critical path: \d+ steps \(/);
    expect(html).toContain('stroke="#c92a2a"');
  });

  test('the scheduled programs still compute the unsharded result', () => {
    const mesh = meshWithHardware(DeviceMesh.parse('tp=2'), hw);
    const dims = { batch: 1, sequence: 8 };
    const plan = shardGraph(loadTransformer('gpt'), mesh, { strategy: 'megatron', registry, rules, bindings: dims });
    const programs = lowerPlan(plan, { registry, rules });
    scheduleDevicePrograms(programs, mesh, { registry, hardware: hw });
    expectSpmdMatchesUnsharded(loadTransformer('gpt'), plan, programs, { registry, seed: 5, dims, atol: 1e-5 });
  });
});

describe('micro-batched tensor parallelism: collectives of one micro-batch hide behind the other', () => {
  const dims = { batch: 2, sequence: 8 };
  const build = (meshSpec: string) => {
    const mesh = meshWithHardware(DeviceMesh.parse(meshSpec), hw);
    const plan = shardGraph(loadTransformer('gpt'), mesh, { strategy: 'pipeline', registry, rules, bindings: dims, microBatches: 2 });
    return { mesh, plan, programs: lowerPlan(plan, { registry, rules }) };
  };

  test('pp=1,tp=2 (megatron per micro-batch): reordered, interleaved, faster, same numbers', () => {
    const { mesh, plan, programs } = build('pp=1,tp=2');
    const before = programs.map((p) => deviceTiming(p.graph, mesh, hw, registry));
    const commBefore = programs[0]!.graph.nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN).map((n) => n.label);
    const summary = scheduleDevicePrograms(programs, mesh, { registry, hardware: hw });
    expect(summary).toEqual({ reordered: true, reorderedDevices: [0, 1], keptCommOrder: false });
    for (const p of programs) expect(wasReordered(p.graph)).toBe(true);
    // In program order micro-batch 1's collectives all come after micro-batch 0's; scheduled, they alternate.
    const mbOf = (label: string) => (/\.mb1\b/.test(label) ? 1 : 0);
    expect(commBefore.map(mbOf).slice(0, commBefore.length / 2).every((m) => m === 0)).toBe(true);
    const commAfter = programs[0]!.graph.nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN).map((n) => mbOf(n.label));
    expect(commAfter.slice(0, 4)).toEqual([0, 1, 0, 1]);
    programs.forEach((p, i) => {
      const after = deviceTiming(p.graph, mesh, hw, registry);
      expect(after.serial).toBeCloseTo(before[i]!.serial, 12); // the same work
      expect(after.makespan).toBeLessThan(before[i]!.makespan);
      expect(after.hiddenComm).toBeGreaterThan(before[i]!.hiddenComm);
      // Compute is what can hide communication: nearly all of it does here (the tiny model is latency-bound).
      expect(after.hiddenComm).toBeGreaterThan(0.9 * after.computeTime);
      expect(after.hiddenComm).toBeLessThanOrEqual(after.computeTime + 1e-15);
    });
    expect(() => checkCollectiveOrder(programs, mesh, { fifo: true })).not.toThrow();
    expectSpmdMatchesUnsharded(loadTransformer('gpt'), plan, programs, { registry, seed: 7, dims, atol: 1e-5 });
  });

  test('pp=2,tp=2: stages with Send/Recv keep matching messages in order, same numbers', () => {
    const { mesh, plan, programs } = build('pp=2,tp=2');
    const summary = scheduleDevicePrograms(programs, mesh, { registry, hardware: hw });
    expect(summary.reordered).toBe(true);
    expect(() => checkCollectiveOrder(programs, mesh, { fifo: true })).not.toThrow();
    expectSpmdMatchesUnsharded(loadTransformer('gpt'), plan, programs, { registry, seed: 9, dims, atol: 1e-5 });
  });
});

test('pipelined bundle: report.json and report.html show the bubble of the forward fill', () => {
  const out = join(tmp, 'gpt-pp2');
  partitionModel(GPT_TINY, { mesh: 'pp=2', strategy: 'pipeline', target: 'cpu', bindings: { batch: 2, sequence: 8 }, out, shardcVersion: '0.0.0', hardware: H100 });
  const r = readJson<BundleReport>(out, 'report.json');
  // 2 stages, 2 micro-batches (default): 3 clocks, each stage idles 1 of them.
  expect(r.pipeline).toEqual({ axis: 'pp', stages: 2, microBatches: 2, clocks: 3, schedule: 'forward fill', bubble: 1 / 3 });
  expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('Bubble: 33.3% of a run each stage idles.');
  const s = readJson<Schedule>(out, 'schedule.json');
  expect(s.pipeline!.bubble).toBe(1 / 3);
  expect(s.devices.every((d) => d.estimate !== undefined)).toBe(true);
});
