/**
 * The memory plan of a host program: temporaries whose lifetimes do not overlap share one
 * physical slot, so a run allocates (and a GPU keeps resident) far less than one buffer per value.
 *
 * Liveness is over step indices: a temp buffer lives from its first use (the step that writes it)
 * to its last use (the step that last reads it); a graph output lives to the end of the run (it
 * is read back after the last step). Intervals are closed, so a step's inputs and outputs never
 * share a slot (a kernel may not read and write one buffer). Views share their source's buffer id,
 * so they need no special case. Inputs and constants get their own slots (written each run / once
 * at load).
 *
 * Assignment is greedy in order of first use (ties by buffer id, so the plan is deterministic):
 * the free slot that fits best (smallest at least as large); when none fits, the largest free slot
 * grows; when none is free, a new slot.
 */
import type { HostBuffer, HostProgram, HostSlot } from './program.js';

/** Bytes a buffer needs (4-byte words, at least one). */
export const bufferBytes = (b: HostBuffer): number => Math.max(1, b.length) * 4;

/** Every temp buffer's live interval [start, end] in step indices (undefined when never used). */
export function liveIntervals(p: HostProgram): Map<number, { start: number; end: number }> {
  const out = new Map<number, { start: number; end: number }>();
  const use = (id: number | undefined, at: number): void => {
    if (id === undefined) return;
    const r = out.get(id);
    if (r) {
      r.start = Math.min(r.start, at);
      r.end = Math.max(r.end, at);
    } else out.set(id, { start: at, end: at });
  };
  p.steps.forEach((s, i) => {
    if (s.kind === 'dispatch') for (const id of Object.values(s.bindings)) use(id, i);
    else {
      use(s.input, i);
      use(s.output, i);
    }
  });
  const end = p.steps.length;
  for (const o of p.outputs) if (o.buffer !== undefined) use(o.buffer, end);
  for (const id of [...out.keys()]) if (p.buffers[id]!.role !== 'temp') out.delete(id);
  return out;
}

export function planMemory(p: HostProgram): HostProgram {
  const buffers = p.buffers.map((b) => ({ ...b }));
  const slots: HostSlot[] = [];
  // Inputs and constants: their own slots, in buffer order.
  for (const b of buffers)
    if (b.role !== 'temp') {
      b.slot = slots.length;
      slots.push({ bytes: bufferBytes(b) });
    }
  const live = liveIntervals(p);
  const temps = buffers
    .filter((b) => b.role === 'temp')
    .map((b) => ({ b, r: live.get(b.id) ?? { start: p.steps.length, end: p.steps.length } }))
    .sort((x, y) => x.r.start - y.r.start || x.b.id - y.b.id);
  /** Temp slot → the step after which it is free again. */
  const busyUntil = new Map<number, number>();
  for (const { b, r } of temps) {
    const need = bufferBytes(b);
    const free = [...busyUntil].filter(([, end]) => end < r.start).map(([s]) => s);
    let slot: number | undefined;
    for (const s of free) {
      const bytes = slots[s]!.bytes;
      if (bytes >= need && (slot === undefined || bytes < slots[slot]!.bytes || (bytes === slots[slot]!.bytes && s < slot))) slot = s;
    }
    if (slot === undefined && free.length) {
      for (const s of free) if (slot === undefined || slots[s]!.bytes > slots[slot]!.bytes || (slots[s]!.bytes === slots[slot]!.bytes && s < slot)) slot = s;
      slots[slot!]!.bytes = need;
    }
    if (slot === undefined) {
      slot = slots.length;
      slots.push({ bytes: need });
    }
    b.slot = slot;
    busyUntil.set(slot, r.end);
  }
  return { ...p, buffers, slots };
}

export interface MemoryStats {
  /** Bytes of the slots holding temporaries (what the plan allocates for them). */
  peakBytes: number;
  /** Bytes the temporaries would take with one buffer each. */
  totalTempBytes: number;
  /** Most temporary bytes live at one step (a lower bound for any plan). */
  liveBytes: number;
  constantBytes: number;
  inputBytes: number;
  slots: number;
}

export function memoryStats(p: HostProgram): MemoryStats {
  const tempSlots = new Set<number>();
  let totalTempBytes = 0;
  let constantBytes = 0;
  let inputBytes = 0;
  for (const b of p.buffers) {
    if (b.role === 'temp') {
      tempSlots.add(b.slot);
      totalTempBytes += bufferBytes(b);
    } else if (b.role === 'constant') constantBytes += bufferBytes(b);
    else inputBytes += bufferBytes(b);
  }
  const live = liveIntervals(p);
  let liveBytes = 0;
  for (let i = 0; i <= p.steps.length; i++) {
    let n = 0;
    for (const [id, r] of live) if (r.start <= i && i <= r.end) n += bufferBytes(p.buffers[id]!);
    liveBytes = Math.max(liveBytes, n);
  }
  return {
    peakBytes: [...tempSlots].reduce((a, s) => a + p.slots[s]!.bytes, 0),
    totalTempBytes,
    liveBytes,
    constantBytes,
    inputBytes,
    slots: p.slots.length,
  };
}
