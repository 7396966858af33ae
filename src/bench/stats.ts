/**
 * The small numeric pieces of `shardc bench`: warm-up-then-timed runs, medians, and the agreement
 * of two engines' outputs (max absolute and relative difference, and whether every element is
 * within `atol + rtol * |reference|`). Free of Node built-ins (the page uses them too).
 */
import type { Tensor } from '../ir/tensor.js';

export function median(xs: readonly number[]): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Warm-up runs, then timed runs (performance.now()); the last run's result. */
export async function timeRuns<T>(
  run: () => Promise<T>,
  warmup: number,
  runs: number,
  onProgress?: (done: number, total: number, label: string) => void,
): Promise<{ times: number[]; last: T }> {
  let last: T | undefined;
  // Progress counts warm-up and timed runs together; it is reported between runs, never inside the timing.
  const total = warmup + runs;
  onProgress?.(0, total, 'runs');
  for (let i = 0; i < warmup; i++) {
    last = await run();
    onProgress?.(i + 1, total, 'runs');
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await run();
    times.push(performance.now() - t0);
    onProgress?.(warmup + i + 1, total, 'runs');
  }
  return { times, last: last as T };
}

/** The agreement tolerance of the bench (issue 5): rtol 1e-3, atol 1e-4. */
export const BENCH_TOLERANCE = { rtol: 1e-3, atol: 1e-4 } as const;

export interface Agreement {
  /** What the shardc outputs were compared with. */
  against: string;
  agree: boolean;
  /** Largest |shardc - reference| over all outputs. */
  maxAbsDiff: number;
  /** Largest |shardc - reference| / max(|reference|, atol) over all outputs. */
  maxRelDiff: number;
  /** Why they do not agree (the first output that differs); empty when they agree. */
  message: string;
}

/** A tensor's values as JS numbers (int64 arrive as numbers or bigints). */
function values(t: Tensor): ArrayLike<number> {
  return t.data as ArrayLike<number>;
}

/** Compares shardc's outputs with a reference's, output by output (names of `reference`). */
export function agreement(
  against: string,
  got: ReadonlyMap<string, Tensor>,
  reference: ReadonlyMap<string, Tensor>,
  tol: { rtol: number; atol: number } = BENCH_TOLERANCE,
): Agreement {
  let maxAbsDiff = 0;
  let maxRelDiff = 0;
  let message = '';
  for (const [name, ref] of reference) {
    const t = got.get(name);
    const shapeOk = t && t.shape.length === ref.shape.length && t.shape.every((d, i) => d === ref.shape[i]);
    if (!t || !shapeOk) {
      message ||= t ? `output ${name}: shape [${t.shape.join(',')}], ${against} [${ref.shape.join(',')}]` : `output ${name} is missing`;
      continue;
    }
    const a = values(t);
    const b = values(ref);
    let bad = 0;
    for (let i = 0; i < b.length; i++) {
      const x = Number(a[i]);
      const y = Number(b[i]);
      if (x === y || (x !== x && y !== y)) continue;
      const d = Math.abs(x - y);
      if (!(d <= tol.atol + tol.rtol * Math.abs(y))) bad++;
      if (Number.isFinite(d)) {
        maxAbsDiff = Math.max(maxAbsDiff, d);
        maxRelDiff = Math.max(maxRelDiff, d / Math.max(Math.abs(y), tol.atol));
      } else maxAbsDiff = maxRelDiff = Infinity;
    }
    if (bad) message ||= `output ${name}: ${bad} of ${b.length} elements differ beyond rtol ${tol.rtol}, atol ${tol.atol}`;
  }
  return { against, agree: message === '', maxAbsDiff, maxRelDiff, message };
}
