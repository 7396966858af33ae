/**
 * The per-device timeline of schedule.json: two lanes per device, its compute stream and its
 * communication stream (a step's `stream`; schedules of older bundles: kernels and collectives).
 * Each lane runs its steps in schedule order; a step starts when its lane is free and the steps it
 * depends on (`dependencies`) have finished — the same two-stream rule as the scheduling pass
 * (passes/schedule/overlap.ts timeOrder), so a collective overlaps the kernels that do not need its
 * result. Durations: the profiled times (report.json `profile`, per device and node) when given,
 * else the estimated ones (schedule.json start/end with a hardware file), else one unit per step.
 * The critical path — the chain of steps that sets the span — is outlined.
 */
import type { DeviceSchedule, ScheduleStep } from '../schedule.js';
import type { Stream } from '../../passes/schedule/durations.js';
import { timeOrder } from '../../passes/schedule/overlap.js';
import { clip, esc, int, ms, px } from './format.js';

export interface TimedStep {
  step: ScheduleStep;
  stream: Stream;
  start: number;
  end: number;
}

export interface DeviceTimeline {
  device: number;
  steps: TimedStep[];
  /** End of the last step (the critical path's length). */
  span: number;
  /** Sum of all durations (the span of one serial stream). */
  serial: number;
  kernelTime: number;
  collectiveTime: number;
  /** Communication time during which the compute lane is busy too (hidden communication). */
  overlapped: number;
  /** Positions in `steps` of the critical path, first to last. */
  criticalPath: number[];
}

/** Duration of a step; undefined → its estimate, else one unit. */
export type DurationOf = (device: number, step: ScheduleStep) => number | undefined;

export const stepStream = (step: ScheduleStep): Stream => step.stream ?? (step.kind === 'kernel' ? 'compute' : 'comm');

/** The estimated duration of a step (ms), when schedule.json has times. */
const estimated = (step: ScheduleStep): number | undefined => (step.start !== undefined && step.end !== undefined ? step.end - step.start : undefined);

export function deviceTimeline(s: DeviceSchedule, duration: DurationOf = () => undefined): DeviceTimeline {
  const position = new Map(s.steps.map((step, i) => [step.id, i]));
  const preds = s.steps.map((step) => step.dependencies.map((d) => position.get(d) ?? -1).filter((p) => p >= 0));
  const durations = s.steps.map((step) => Math.max(0, duration(s.device, step) ?? estimated(step) ?? 1));
  const streams = s.steps.map(stepStream);
  const t = timeOrder(preds, durations, streams);
  return {
    device: s.device,
    steps: s.steps.map((step, i) => ({ step, stream: streams[i]!, start: t.steps[i]!.start, end: t.steps[i]!.end })),
    span: t.makespan,
    serial: t.serial,
    kernelTime: t.computeTime,
    collectiveTime: t.commTime,
    overlapped: t.hiddenComm,
    criticalPath: t.criticalPath,
  };
}

/**
 * Every device's timeline. Devices whose schedules share their steps (device twins: bundle/schedule.ts)
 * and have no profiled times share one timing, computed once.
 */
export function deviceTimelines(schedules: readonly DeviceSchedule[], duration?: DurationOf): DeviceTimeline[] {
  const bySteps = new Map<ScheduleStep[], DeviceTimeline>();
  return schedules.map((s) => {
    const twin = duration ? undefined : bySteps.get(s.steps);
    if (twin) return { ...twin, device: s.device };
    const t = deviceTimeline(s, duration);
    bySteps.set(s.steps, t);
    return t;
  });
}

const LABEL_W = 92;
const LANE_H = 18;
const UNIT_PX = 6;
const PROFILE_PX = 1200;

/** A short description of a critical path: its length in steps and its ops by count (most first). */
export function describePath(t: DeviceTimeline): string {
  const count = new Map<string, number>();
  for (const i of t.criticalPath) {
    const op = t.steps[i]!.step.op;
    count.set(op, (count.get(op) ?? 0) + 1);
  }
  const ops = [...count].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([op, n]) => `${op} ×${n}`);
  const first = t.steps[t.criticalPath[0] ?? -1]?.step.node;
  const last = t.steps[t.criticalPath[t.criticalPath.length - 1] ?? -1]?.step.node;
  return `${t.criticalPath.length} steps (${ops.slice(0, 6).join(', ')}${ops.length > 6 ? ', …' : ''})${first !== undefined ? ` from ${first} to ${last}` : ''}`;
}

/** SVG lanes for every device on one time scale; `unit` names the time unit ('step' or 'ms'). */
export function renderTimelines(timelines: readonly DeviceTimeline[], unit: 'step' | 'ms'): string {
  const longest = timelines.reduce((m, t) => Math.max(m, t.span), 0);
  const scale = unit === 'step' ? UNIT_PX : longest > 0 ? PROFILE_PX / longest : 1;
  // Estimates of small programs are microseconds: 4 significant digits below 1 ms.
  const fmt = (x: number): string => (unit === 'step' ? int(x) : x > 0 && x < 1 ? x.toPrecision(4) : ms(x));
  const u = unit === 'step' ? 'steps' : 'ms';
  // Timelines that share their steps (deviceTimelines) share their drawing too.
  const drawn = new Map<TimedStep[], string>();
  const draw = (t: DeviceTimeline): string => {
    let rects = drawn.get(t.steps);
    if (rects === undefined) {
      const onPath = new Set(t.criticalPath);
      rects = t.steps
        .map((s, i) => {
          const lane = s.stream === 'compute' ? 0 : 1;
          const w = Math.max(unit === 'step' ? 1 : 0.5, (s.end - s.start) * scale - (unit === 'step' ? 1 : 0));
          const title = `#${s.step.id} ${s.step.node} (${s.step.op}) ${fmt(s.start)}–${fmt(s.end)} ${u}${s.step.dependencies.length ? `, after #${s.step.dependencies.join(', #')}` : ''}${onPath.has(i) ? ', on the critical path' : ''}`;
          const cp = onPath.has(i) ? ' stroke="#c92a2a" stroke-width="1.5"' : '';
          return `<rect class="${s.stream === 'compute' ? 'tk' : 'tc'}${onPath.has(i) ? ' cp' : ''}" x="${px(LABEL_W + s.start * scale)}" y="${px(4 + lane * (LANE_H + 4))}" width="${px(w)}" height="${LANE_H}"${cp}><title>${esc(title)}</title></rect>`;
        })
        .join('');
      drawn.set(t.steps, rects);
    }
    return rects;
  };
  return timelines
    .map((t) => {
      const width = Math.ceil(LABEL_W + t.span * scale + 8);
      const hiddenPct = t.collectiveTime > 0 ? ` (${((100 * t.overlapped) / t.collectiveTime).toFixed(1)}%)` : '';
      const caption =
        `device ${t.device}: ${t.steps.filter((s) => s.stream === 'compute').length} compute steps, ${t.steps.filter((s) => s.stream === 'comm').length} communication steps; ` +
        `critical path ${fmt(t.span)} ${u} (one stream: ${fmt(t.serial)}); communication ${fmt(t.collectiveTime)} ${u}, hidden behind compute ${fmt(t.overlapped)}${hiddenPct}; ` +
        `critical path: ${describePath(t)}`;
      return (
        `<figure class="timeline" data-device="${t.device}"><figcaption>${esc(clip(caption, 600))}</figcaption>` +
        `<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${2 * LANE_H + 12}" viewBox="0 0 ${width} ${2 * LANE_H + 12}">` +
        `<text class="lane" x="4" y="${4 + LANE_H - 5}">compute</text><text class="lane" x="4" y="${4 + 2 * LANE_H - 1}">comm</text>` +
        `${draw(t)}</svg></div></figure>`
      );
    })
    .join('\n');
}
