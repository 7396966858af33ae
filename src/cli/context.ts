/**
 * What every command gets: where the package lives, the output streams (so main() can run
 * in-process in tests), and option parsers shared by commands (`--dim`, `--target`, numbers).
 */
import type { Command } from 'commander';
import { UserError } from '../ir/errors.js';
import { isSymbolName } from '../ir/shape.js';

export interface Output {
  write(s: string): void;
  /** A terminal (progress bars and colour only then; src/cli/progress.ts, style.ts). Absent: not a TTY. */
  readonly isTTY?: boolean;
  /** The terminal's width in columns, when a TTY. */
  readonly columns?: number;
}

/** An Output over a process stream (process.stdout / process.stderr) that knows whether it is a TTY. */
export function processOutput(stream: NodeJS.WriteStream): Output {
  return {
    write: (s) => void stream.write(s),
    get isTTY() {
      return stream.isTTY === true;
    },
    get columns() {
      return stream.columns;
    },
  };
}

/**
 * An "Examples:" section for `--help` (commander addHelpText('after', ...)): one `$ shardc ...`
 * line per example with its comment above it.
 */
export function helpExamples(examples: readonly (readonly [comment: string, command: string])[]): string {
  return `\nExamples:\n${examples.map(([c, x]) => `  # ${c}\n  $ ${x}\n`).join('')}`;
}

/** The examples of `shardc --help` (main.ts adds them to the program). */
export const ROOT_HELP_EXAMPLES = helpExamples([
  ['what a model holds (ops, shapes, parameters, flops)', 'shardc inspect examples/gpt-tiny.onnx'],
  ['shard over 2 devices and write a bundle (prints its path and manifest SHA-256)', 'shardc partition examples/gpt-tiny.onnx --mesh tp=2 --strategy megatron --dim batch=1,sequence=8 --out out'],
  ['why a collective exists', 'shardc explain out --collective AllReduce_tp_add_8'],
  ['check a sharded run against the unsharded model and onnxruntime-node', 'shardc verify examples/llama-tiny.onnx --mesh dp=2,tp=2 --strategy megatron --dim batch=2,sequence=8'],
  ['a pipeline step: one JSON document on stdout, exit codes 0/1/2/3', 'shardc partition model.onnx --mesh tp=4 --out bundle --json'],
]) + `\nExit codes: 0 done, 1 bad input, 2 internal error (--debug for the stack), 3 verification mismatch.\nProgress bars and colour appear only on a terminal (never with --json or --quiet; NO_COLOR turns colour off).\n`;

export const EXIT = { ok: 0, user: 1, internal: 2, mismatch: 3 } as const;

/** A running command reports its exit code here (0 unless it says otherwise). */
export interface CommandState {
  code: number;
}

/** Each command file exports one of these (or several). */
export type CommandFactory = (ctx: CliContext, state: CommandState) => Command;

export interface CliContext {
  packageRoot: string;
  stdout: Output;
  stderr: Output;
  /** Where shardc.config.json is looked for (default: process.cwd()). */
  cwd?: string;
}

/** --quiet / --verbose (global options, src/cli/config.ts): how much human output a command prints. */
export type Verbosity = 'quiet' | 'normal' | 'verbose';

export function verbosity(command: Command): Verbosity {
  const o = command.optsWithGlobals<{ quiet?: boolean; verbose?: boolean }>();
  if (o.quiet && o.verbose) throw new UserError('--quiet and --verbose exclude each other');
  return o.quiet ? 'quiet' : o.verbose ? 'verbose' : 'normal';
}

/** Writes lines to an output (each followed by a newline). */
export function println(out: Output, ...lines: string[]): void {
  for (const l of lines) out.write(l + '\n');
}

/** `batch=1,sequence=128` (repeatable: values accumulate) → { batch: 1, sequence: 128 }. */
export function parseDims(spec: string, previous: Record<string, number> = {}): Record<string, number> {
  const out = { ...previous };
  for (const part of spec.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = /^([^=]+)=(\d+)$/.exec(p);
    if (!m || !isSymbolName(m[1]!.trim()))
      throw new UserError(`--dim expects name=value pairs like batch=1,sequence=128; got ${JSON.stringify(p)}`);
    const v = Number(m[2]);
    if (!Number.isSafeInteger(v) || v < 1) throw new UserError(`--dim ${m[1]} must be a positive integer; got ${m[2]}`);
    out[m[1]!.trim()] = v;
  }
  return out;
}

/** A non-negative number option (tolerances). */
export function parseNonNegative(name: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new UserError(`${name} expects a non-negative number; got ${JSON.stringify(v)}`);
    return x;
  };
}

/** A non-negative integer option (seeds). */
export function parseInteger(name: string): (v: string) => number {
  return (v: string) => {
    const x = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(x)) throw new UserError(`${name} expects a non-negative integer; got ${JSON.stringify(v)}`);
    return x;
  };
}

export const TARGETS = ['cpu', 'wgsl', 'cuda'] as const;
export type Target = (typeof TARGETS)[number];

/** Checks `--target`; only the cpu runtime runs models so far. */
export function requireCpuTarget(target: string | undefined): 'cpu' {
  const t = target ?? 'cpu';
  if (!(TARGETS as readonly string[]).includes(t)) throw new UserError(`unknown target ${JSON.stringify(t)}; expected one of ${TARGETS.join(', ')}`);
  if (t !== 'cpu') throw new UserError(`target ${t} is not implemented yet; use --target cpu`);
  return 'cpu';
}

/** One JSON document on stdout (for --json). */
export function printJson(ctx: CliContext, doc: unknown): void {
  ctx.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}
