/**
 * The forward schedule of a pipeline (GPipe, i.e. the forward half of 1F1B): at clock c, stage s
 * runs micro-batch c - s when 0 ≤ c - s < M. Stage s starts at clock s (it waits for stage s-1's
 * first micro-batch) and from clock P-1 to clock M-1 every stage is busy; a run takes M + P - 1
 * clocks, of which each stage idles P - 1 (the bubble, (P-1)/(M+P-1) of the run).
 *
 * Each stage's program runs its micro-batches in this order (programs.ts), so on a runtime that
 * starts a Recv as soon as its message arrives the stages overlap exactly like this table.
 */
export interface ClockStep {
  clock: number;
  work: { stage: number; microBatch: number }[];
}

export function forwardClocks(stages: number, microBatches: number): ClockStep[] {
  const out: ClockStep[] = [];
  for (let c = 0; c < microBatches + stages - 1; c++) {
    const work: ClockStep['work'] = [];
    for (let s = 0; s < stages; s++) {
      const i = c - s;
      if (i >= 0 && i < microBatches) work.push({ stage: s, microBatch: i });
    }
    out.push({ clock: c, work });
  }
  return out;
}

/** The clock at which stage s runs micro-batch i. */
export const clockOf = (stage: number, microBatch: number): number => stage + microBatch;

/** The fraction of a run each stage idles: (P-1)/(M+P-1). */
export const bubbleFraction = (stages: number, microBatches: number): number => (stages - 1) / (microBatches + stages - 1);
