/**
 * The lockstep order of several devices' host programs, decided ahead of time: each device runs
 * its steps up to its next collective; a collective runs once every member of its group waits at
 * the same collective (same node label and op); Send deposits for its peer and goes on, Recv waits
 * for the message. Steps a device does alone — kernels, LocalShard, LocalPartial, collectives over
 * a group of one — run in its `local` stretches. The same rules as the CPU simulator
 * (targets/cpu/spmd.ts), so a mismatch (a device reaching a different collective) is found before
 * a run starts, with an error naming each waiting device, its collective and the member missing.
 *
 * Also: the runtime attributes of a collective step and its host semantics (runCollective).
 */
import { Attrs } from '../../ir/attrs.js';
import { UserError } from '../../ir/errors.js';
import type { Tensor } from '../../ir/tensor.js';
import { block, runCollective } from '../../targets/cpu/collectives.js';
import type { CollectiveStep, HostProgram } from './program.js';

export type LockstepEvent =
  /** Device runs its steps [from, to) (kernels and local collectives). */
  | { kind: 'local'; device: number; from: number; to: number }
  /** A collective over `members` (group order): each member's step index. */
  | { kind: 'collective'; node: string; op: string; members: { device: number; step: number }[] }
  /** Send: the message leaves `device` at `step`. */
  | { kind: 'send'; device: number; step: number }
  /** Recv at `device`/`step` of the message sent at `from`. */
  | { kind: 'recv'; device: number; step: number; from: { device: number; step: number } };

const q = (s: string): string => JSON.stringify(s);

export function describeStep(s: CollectiveStep): string {
  return `${s.op}${s.axis !== undefined ? ` over ${s.axis}` : ''} ${q(s.node)}`;
}

/** A collective step its device does alone. */
export function isLocalCollective(s: CollectiveStep): boolean {
  return s.op === 'LocalShard' || s.op === 'LocalPartial' || (s.group.length === 1 && s.op !== 'Send' && s.op !== 'Recv');
}

const mailKey = (from: number, to: number, s: CollectiveStep): string => `${from}>${to}#${Number(s.attributes['tag'] ?? 0)}`;

/** The peer of a Send/Recv step (group is [sender, receiver]). */
export function peerOf(s: CollectiveStep): number {
  return s.op === 'Send' ? s.group[1]! : s.group[0]!;
}

/** Programs indexed by mesh rank (programs[d].device === d). */
export function lockstepSchedule(programs: readonly HostProgram[]): LockstepEvent[] {
  programs.forEach((p, d) => {
    if (p.device !== d) throw new UserError(`host program ${d} is for device ${p.device}`);
  });
  const pcs = programs.map(() => 0);
  const events: LockstepEvent[] = [];
  const mailbox = new Map<string, { device: number; step: number }>();
  const at = (d: number): CollectiveStep | undefined => {
    const s = programs[d]!.steps[pcs[d]!];
    return s?.kind === 'collective' ? s : undefined;
  };
  /** Runs device d until it waits at a collective or ends; true when it moved. */
  const advance = (d: number): boolean => {
    const steps = programs[d]!.steps;
    let from = pcs[d]!;
    let moved = false;
    const flush = (): void => {
      if (pcs[d]! > from) events.push({ kind: 'local', device: d, from, to: pcs[d]! });
      if (pcs[d]! > from) moved = true;
    };
    for (;;) {
      const s = steps[pcs[d]!];
      if (!s) break;
      if (s.kind === 'dispatch' || isLocalCollective(s)) {
        pcs[d]!++;
        continue;
      }
      if (s.op === 'Send') {
        flush();
        mailbox.set(mailKey(d, peerOf(s), s), { device: d, step: pcs[d]! });
        events.push({ kind: 'send', device: d, step: pcs[d]! });
      } else if (s.op === 'Recv') {
        const key = mailKey(peerOf(s), d, s);
        const m = mailbox.get(key);
        if (!m) break;
        flush();
        mailbox.delete(key);
        events.push({ kind: 'recv', device: d, step: pcs[d]!, from: m });
      } else break;
      from = ++pcs[d]!;
      moved = true;
    }
    flush();
    return moved;
  };
  const tryCollective = (d: number): boolean => {
    const s = at(d);
    if (!s || s.op === 'Recv' || s.op === 'Send') return false;
    const members = s.group.map((r) => ({ r, m: r >= 0 && r < programs.length ? at(r) : undefined }));
    if (members.some(({ m }) => !m || m.node !== s.node || m.op !== s.op)) return false;
    events.push({ kind: 'collective', node: s.node, op: s.op, members: members.map(({ r }) => ({ device: r, step: pcs[r]! })) });
    for (const { r } of members) pcs[r]!++;
    return true;
  };
  for (;;) {
    let progress = false;
    for (let d = 0; d < programs.length; d++) if (advance(d)) progress = true;
    for (let d = 0; d < programs.length; d++) if (tryCollective(d)) progress = true;
    if (programs.every((p, d) => pcs[d]! >= p.steps.length)) return events;
    if (!progress) throw new UserError(`the devices are stuck: ${stuckReport(programs, pcs)}`);
  }
}

function stuckReport(programs: readonly HostProgram[], pcs: number[]): string {
  const parts: string[] = [];
  programs.forEach((p, d) => {
    const s = p.steps[pcs[d]!];
    if (!s || s.kind !== 'collective') return;
    if (s.op === 'Recv') {
      parts.push(`device ${d} waits at Recv ${q(s.node)} for a message that is never sent`);
      return;
    }
    const missing: string[] = [];
    for (const r of s.group) {
      const o = programs[r];
      const os = o?.steps[pcs[r]!];
      if (!o) missing.push(`device ${r} does not exist`);
      else if (!os) missing.push(`device ${r} never reaches it (its program ended)`);
      else if (os.kind === 'collective' && (os.node !== s.node || os.op !== s.op)) missing.push(`device ${r} waits at collective ${describeStep(os)} instead`);
    }
    parts.push(`device ${d} waits at collective ${describeStep(s)}: ${missing.join(', ') || 'its group is incomplete'}`);
  });
  return parts.join('; ');
}

/** The step's attributes as node attributes (for runCollective and the collective ops). */
export function collectiveAttrs(s: CollectiveStep): Attrs {
  const a = new Attrs([], s.node);
  for (const [k, v] of Object.entries(s.attributes)) {
    if (typeof v === 'string') a.set(k, { kind: 'string', value: v });
    else if (typeof v === 'number') a.set(k, Number.isInteger(v) ? { kind: 'int', value: v } : { kind: 'float', value: v });
    else if (v.every((x) => typeof x === 'string')) a.set(k, { kind: 'strings', value: v as string[] });
    else a.set(k, (v as number[]).every(Number.isInteger) ? { kind: 'ints', value: v as number[] } : { kind: 'floats', value: v as number[] });
  }
  if (s.axis !== undefined) a.set('axis', { kind: 'string', value: s.axis });
  return a;
}

/** A local collective's output on the host (device index `index` in its group). */
export function localCollectiveHost(s: CollectiveStep, x: Tensor, device: number): Tensor {
  const index = s.group.indexOf(device);
  const attrs = collectiveAttrs(s);
  if (s.op === 'LocalShard') return block(x, attrs.int('dim'), s.group.length, index, attrs.int('unit', 1));
  return runCollective(s.op, attrs, new Array<Tensor>(s.group.length).fill(x))[index]!;
}

/** Every member's output of a group collective on the host (runCollective), shapes checked. */
export function groupCollectiveHost(steps: readonly CollectiveStep[], devices: readonly number[], inputs: readonly Tensor[]): Tensor[] {
  const s = steps[0]!;
  let outs: Tensor[];
  try {
    outs = runCollective(s.op, collectiveAttrs(s), inputs);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`collective ${describeStep(s)} over devices ${s.group.join(',')} failed: ${e.reason}`, { node: s.node });
    throw e;
  }
  outs.forEach((t, k) => checkShape(steps[k]!, t, devices[k]!));
  return outs;
}

export function checkShape(s: CollectiveStep, t: Tensor, device: number): void {
  const want = s.outputShape;
  if (want.length !== t.rank || want.some((n, i) => n !== t.shape[i]))
    throw new UserError(`collective ${describeStep(s)} gives device ${device} shape [${t.shape.join(',')}] but its program expects [${want.join(',')}]`, { node: s.node });
}

