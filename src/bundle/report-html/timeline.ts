/**
 * The per-device timeline of schedule.json: two lanes per device, kernels and collectives. Each
 * lane runs its steps in program order; a step starts when its lane is free and the steps it
 * depends on (`dependencies`) have finished, so a collective overlaps the kernels that do not need
 * its result — the overlap the schedule's dependencies allow with one compute and one
 * communication stream. Durations are the profiled times (report.json `profile`, per device and
 * node) when present, else one unit per step.
 */
import type { DeviceSchedule, ScheduleStep } from '../schedule.js';
import { clip, esc, int, ms, px } from './format.js';

export interface TimedStep {
  step: ScheduleStep;
  start: number;
  end: number;
}

export interface DeviceTimeline {
  device: number;
  steps: TimedStep[];
  /** End of the last step. */
  span: number;
  /** Sum of all durations (the span of one serial stream). */
  serial: number;
  kernelTime: number;
  collectiveTime: number;
  /** Collective time during which the kernel lane is busy too. */
  overlapped: number;
}

/** Duration of a step; undefined → one unit. */
export type DurationOf = (device: number, step: ScheduleStep) => number | undefined;

export function deviceTimeline(s: DeviceSchedule, duration: DurationOf = () => undefined): DeviceTimeline {
  const end = new Map<number, number>();
  const free = { kernel: 0, collective: 0 };
  const steps: TimedStep[] = [];
  let serial = 0;
  let kernelTime = 0;
  let collectiveTime = 0;
  for (const step of s.steps) {
    const d = Math.max(0, duration(s.device, step) ?? 1);
    let start = free[step.kind];
    for (const dep of step.dependencies) start = Math.max(start, end.get(dep) ?? 0);
    end.set(step.id, start + d);
    free[step.kind] = start + d;
    steps.push({ step, start, end: start + d });
    serial += d;
    if (step.kind === 'kernel') kernelTime += d;
    else collectiveTime += d;
  }
  const span = steps.reduce((m, t) => Math.max(m, t.end), 0);
  return { device: s.device, steps, span, serial, kernelTime, collectiveTime, overlapped: overlap(steps) };
}

/** Total length of collective intervals covered by kernel intervals (each lane's intervals are disjoint). */
function overlap(steps: readonly TimedStep[]): number {
  const k = steps.filter((t) => t.step.kind === 'kernel' && t.end > t.start);
  let total = 0;
  for (const c of steps) {
    if (c.step.kind !== 'collective') continue;
    for (const x of k) total += Math.max(0, Math.min(c.end, x.end) - Math.max(c.start, x.start));
  }
  return total;
}

const LABEL_W = 92;
const LANE_H = 18;
const UNIT_PX = 6;
const PROFILE_PX = 1200;

/** SVG lanes for every device on one time scale; `unit` names the time unit ('step' or 'ms'). */
export function renderTimelines(timelines: readonly DeviceTimeline[], unit: 'step' | 'ms'): string {
  const longest = timelines.reduce((m, t) => Math.max(m, t.span), 0);
  const scale = unit === 'step' ? UNIT_PX : longest > 0 ? PROFILE_PX / longest : 1;
  const fmt = (x: number): string => (unit === 'step' ? int(x) : ms(x));
  return timelines
    .map((t) => {
      const width = Math.ceil(LABEL_W + t.span * scale + 8);
      const rects = t.steps.map((s) => {
        const lane = s.step.kind === 'kernel' ? 0 : 1;
        const w = Math.max(unit === 'step' ? 1 : 0.5, (s.end - s.start) * scale - (unit === 'step' ? 1 : 0));
        const title = `#${s.step.id} ${s.step.node} (${s.step.op}) ${fmt(s.start)}–${fmt(s.end)} ${unit === 'step' ? 'steps' : 'ms'}${s.step.dependencies.length ? `, after #${s.step.dependencies.join(', #')}` : ''}`;
        return `<rect class="${s.step.kind === 'kernel' ? 'tk' : 'tc'}" x="${px(LABEL_W + s.start * scale)}" y="${px(4 + lane * (LANE_H + 4))}" width="${px(w)}" height="${LANE_H}"><title>${esc(title)}</title></rect>`;
      });
      const caption =
        `device ${t.device}: ${t.steps.filter((s) => s.step.kind === 'kernel').length} kernels, ${t.steps.filter((s) => s.step.kind === 'collective').length} collectives; ` +
        `span ${fmt(t.span)} ${unit === 'step' ? 'steps' : 'ms'} (one stream: ${fmt(t.serial)}); collective time overlapping kernels: ${fmt(t.overlapped)} of ${fmt(t.collectiveTime)}`;
      return (
        `<figure class="timeline" data-device="${t.device}"><figcaption>${esc(clip(caption, 400))}</figcaption>` +
        `<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${2 * LANE_H + 12}" viewBox="0 0 ${width} ${2 * LANE_H + 12}">` +
        `<text class="lane" x="4" y="${4 + LANE_H - 5}">kernels</text><text class="lane" x="4" y="${4 + 2 * LANE_H - 1}">collectives</text>` +
        `${rects.join('')}</svg></div></figure>`
      );
    })
    .join('\n');
}
