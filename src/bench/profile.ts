/**
 * Profiles of a shardc run (`shardc bench --profile`): one entry per executed kernel launch or
 * collective, with its time in milliseconds, and a summary per op type. Times come from the
 * session's own profile (GPU timestamp queries where the adapter has them) or, on the
 * interpretive runner, from host timing: each launch is submitted alone and awaited
 * (queue.onSubmittedWorkDone), so the figure includes the submit and the wait — slower than an
 * unprofiled run, but it ranks kernels correctly. Free of Node built-ins (the page uses it too).
 */

export interface ProfileEntry {
  /** 'kernel' (a compute dispatch) or 'collective' (host-staged exchange). */
  kind: 'kernel' | 'collective';
  /** The IR node (label) the launch comes from. */
  node: string;
  op: string;
  /** Kernel name (or the collective). */
  name: string;
  /** Mesh device (rank); 0 on one device. */
  device: number;
  ms: number;
}

export interface Profile {
  /** How the times were taken. */
  timing: 'timestamp-query' | 'host';
  entries: ProfileEntry[];
}

export interface OpSummary {
  op: string;
  kind: 'kernel' | 'collective';
  count: number;
  totalMs: number;
  /** Share of the summed time, 0..1. */
  share: number;
}

/** Per op type, largest total first (ties by op name, so the order is deterministic). */
export function summarizeProfile(p: Profile): OpSummary[] {
  const by = new Map<string, OpSummary>();
  let total = 0;
  for (const e of p.entries) {
    const key = `${e.kind}:${e.op}`;
    const s = by.get(key) ?? { op: e.op, kind: e.kind, count: 0, totalMs: 0, share: 0 };
    s.count++;
    s.totalMs += e.ms;
    total += e.ms;
    by.set(key, s);
  }
  const out = [...by.values()];
  for (const s of out) s.share = total > 0 ? s.totalMs / total : 0;
  return out.sort((a, b) => b.totalMs - a.totalMs || (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
}

/** The `n` slowest single entries (ties by node name). */
export function topEntries(p: Profile, n = 10): ProfileEntry[] {
  return [...p.entries].sort((a, b) => b.ms - a.ms || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)).slice(0, n);
}

/** The profile document written to report.json (times rounded to microseconds). */
export function profileReport(p: Profile): { timing: Profile['timing']; totalMs: number; byOp: OpSummary[]; entries: ProfileEntry[] } {
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  const byOp = summarizeProfile(p).map((s) => ({ ...s, totalMs: r(s.totalMs), share: Math.round(s.share * 10000) / 10000 }));
  return {
    timing: p.timing,
    totalMs: r(p.entries.reduce((a, e) => a + e.ms, 0)),
    byOp,
    entries: p.entries.map((e) => ({ ...e, ms: r(e.ms) })),
  };
}
