/**
 * Progress bars for long commands (npm cli-progress), kept a thin layer: library functions take an
 * optional `onProgress(done, total, label)` and know nothing of terminals; a command asks
 * `startProgress` for a callback and passes it down. One bar at a time: a new label finishes the
 * previous bar and starts the next (e.g. 'reading weights' then 'writing bundle').
 *
 * Bars are drawn on stderr only, and only when stderr is a TTY and the command prints neither
 * --json nor --quiet output; otherwise `onProgress` is undefined and the library does no progress
 * work at all. Finished bars are cleared, so the terminal ends with the command's results only.
 * Lines printed while a bar is up go through `log` (the bar is cleared first and redrawn after).
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { formatBytes } from '../verify/model-summary.js';
import { type CliContext, type Output, verbosity } from './context.js';

export type ProgressFn = (done: number, total: number, label: string) => void;

export interface Progress {
  /** The callback for library functions; undefined when progress is off. */
  readonly onProgress: ProgressFn | undefined;
  /** Writes a line to `out`, keeping the bar (if any) below it. */
  log(out: Output, line: string): void;
  /** Clears the bar (idempotent); call in a finally. */
  stop(): void;
}

export interface ProgressOptions {
  /** --json: no bars. */
  json?: boolean;
  /** Labels whose counts are bytes (shown as 1.2 MiB / 40 MiB). */
  bytes?: readonly string[];
}

/** Whether a command shows progress bars (see the file header). */
export function progressEnabled(ctx: CliContext, command: Command, opts: ProgressOptions = {}): boolean {
  return ctx.stderr.isTTY === true && !opts.json && verbosity(command) !== 'quiet';
}

const OFF: Progress = { onProgress: undefined, log: (out, line) => out.write(line + '\n'), stop: () => {} };

/** A progress reporter for one command run (a no-op one when progress is off). */
export function startProgress(ctx: CliContext, command: Command, opts: ProgressOptions = {}): Progress {
  if (!progressEnabled(ctx, command, opts)) return OFF;
  const stream = ctx.stderr;
  const bytes = new Set(opts.bytes ?? []);
  let bar: SingleBar | undefined;
  let current: string | undefined;
  const amount = (label: string, done: number, total: number): string =>
    bytes.has(label) ? `${formatBytes(done)} / ${formatBytes(total)}` : `${done} / ${total}`;

  const finish = (): void => {
    bar?.stop();
    bar = undefined;
    current = undefined;
  };
  const onProgress: ProgressFn = (done, total, label) => {
    if (label !== current || bar === undefined) {
      finish();
      current = label;
      bar = new SingleBar({
        // cli-progress writes through readline (cursorTo/clearLine) to anything with write() and isTTY.
        stream: stream as unknown as NodeJS.WritableStream,
        format: '{label} [{bar}] {percentage}% {amount}',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        barCompleteChar: '█',
        barIncompleteChar: '░',
      });
      bar.start(Math.max(total, 1), Math.min(done, total), { label, amount: amount(label, done, total) });
      return;
    }
    if (bar.getTotal() !== Math.max(total, 1)) bar.setTotal(Math.max(total, 1));
    bar.update(Math.min(done, total), { amount: amount(label, done, total) });
  };
  return {
    onProgress,
    log(out, line) {
      if (bar) stream.write('\r\x1b[2K');
      out.write(line + '\n');
      // Redraw at once (cli-progress's render is throttled otherwise).
      (bar as unknown as { render?: (force?: boolean) => void } | undefined)?.render?.(true);
    },
    stop: finish,
  };
}

/** Runs `work` with a progress reporter and always clears the bar afterwards. */
export async function withProgress<T>(ctx: CliContext, command: Command, opts: ProgressOptions, work: (p: Progress) => T | Promise<T>): Promise<T> {
  const p = startProgress(ctx, command, opts);
  try {
    return await work(p);
  } finally {
    p.stop();
  }
}
