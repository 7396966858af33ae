/**
 * What every command gets: where the package lives, the output streams (so main() can run
 * in-process in tests), and option parsers shared by commands (`--dim`, `--target`, numbers).
 */
import type { Command } from 'commander';
import { UserError } from '../ir/errors.js';
import { isSymbolName } from '../ir/shape.js';

export interface Output {
  write(s: string): void;
}

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
