/**
 * The `shardc` command line (a contract: scripts and pipelines call it; see DESIGN.md "Command
 * line"). Exit codes: 0 done; 1 user error (one line `shardc: <message>` on stderr, no stack);
 * 2 internal error (one line and a hint; the stack with --debug); 3 verification mismatch.
 * Commander usage errors are user errors (exit 1). main() never calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, VerificationError } from '../ir/errors.js';
import { installConfig } from './config.js';
import { type CliContext, type CommandFactory, type CommandState, EXIT, type Output, ROOT_HELP_EXAMPLES, processOutput } from './context.js';

export { EXIT };

export interface MainOptions {
  packageRoot: string;
  /** Where shardc.config.json is looked for (default: process.cwd()). */
  cwd?: string;
  stdout?: Output;
  stderr?: Output;
}

function packageVersion(root: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * The commands, in help order, each loaded on demand: a command's module pulls in what it runs
 * (the whole compiler for partition, onnxruntime-node for verify, Dawn for run --target wgsl), so
 * `shardc partition` loads only partition's module graph — loading every command's made up a third
 * of a small partition's time. Help and unknown commands load them all.
 */
const COMMANDS: readonly (readonly [string, () => Promise<CommandFactory>])[] = [
  ['inspect', async () => (await import('./commands/inspect.js')).inspectCommand],
  ['partition', async () => (await import('./commands/partition.js')).partitionCommand],
  ['run', async () => (await import('./commands/run.js')).runCommand],
  ['verify', async () => (await import('./commands/verify.js')).verifyCommand],
  ['explain', async () => (await import('./commands/explain.js')).explainCommand],
  ['conformance', async () => (await import('./commands/conformance.js')).conformanceCommand],
  ['demo', async () => (await import('./commands/demo.js')).demoCommand],
  ['bench', async () => (await import('./commands/bench.js')).benchCommand],
];

/** The command line, with every command, or only `only` when it names one (what main() runs). */
export async function buildProgram(ctx: CliContext, state: CommandState, only?: string): Promise<Command> {
  const program = new Command('shardc')
    .description('ONNX models → sharded per-device programs (import, inspect, run, verify, conformance)')
    .version(packageVersion(ctx.packageRoot), '-V, --version')
    .option('--debug', 'show stack traces for internal errors')
    .showSuggestionAfterError(true)
    .addHelpText('after', ROOT_HELP_EXAMPLES)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      outputError: () => {
        /* reported by main() as one `shardc: ...` line */
      },
    });
  installConfig(program, () => ctx.cwd ?? process.cwd());
  const wanted = COMMANDS.some(([name]) => name === only) ? COMMANDS.filter(([name]) => name === only) : COMMANDS;
  const factories = await Promise.all(wanted.map(([, load]) => load()));
  for (const make of factories) {
    const cmd = make(ctx, state).exitOverride();
    cmd.configureOutput(program.configureOutput());
    program.addCommand(cmd);
  }
  return program;
}

export async function main(argv: string[], opts: MainOptions): Promise<number> {
  const ctx: CliContext = {
    packageRoot: opts.packageRoot,
    cwd: opts.cwd,
    stdout: opts.stdout ?? processOutput(process.stdout),
    stderr: opts.stderr ?? processOutput(process.stderr),
  };
  const state: CommandState = { code: EXIT.ok };
  const debug = argv.includes('--debug');
  try {
    // The command is the first argument that is not a root option (--debug, --help, --version).
    const program = await buildProgram(ctx, state, argv.find((a) => !a.startsWith('-')));
    if (argv.length === 0) {
      ctx.stderr.write(program.helpInformation());
      return EXIT.user;
    }
    await program.parseAsync(argv, { from: 'user' });
    return state.code;
  } catch (e) {
    return reportError(e, ctx, debug);
  }
}

/** Maps an error to its exit code and prints it (one line unless --debug and a bug). */
export function reportError(e: unknown, ctx: CliContext, debug: boolean): number {
  if (e instanceof CommanderError) {
    // --help and --version end through here with exit code 0.
    if (e.exitCode === 0) return EXIT.ok;
    if (e.code === 'commander.help' || e.code === 'commander.helpDisplayed') return EXIT.user;
    ctx.stderr.write(`shardc: ${oneLine(e.message.replace(/^error:\s*/, ''))}\n`);
    return EXIT.user;
  }
  if (e instanceof UserError) {
    ctx.stderr.write(`shardc: ${oneLine(e.message)}\n`);
    return EXIT.user;
  }
  if (e instanceof VerificationError) {
    ctx.stderr.write(`shardc: verification failed: ${oneLine(e.message)}\n`);
    return EXIT.mismatch;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const line = `shardc: internal error: ${oneLine(`${err.name}: ${err.message}`)}`;
  if (debug) ctx.stderr.write(`${line}\n${err.stack ?? ''}\n`);
  else ctx.stderr.write(`${line} (a bug in shardc; run again with --debug for the stack trace)\n`);
  return EXIT.internal;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
