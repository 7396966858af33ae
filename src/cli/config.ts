/**
 * The config file (`shardc.config.json` in the working directory, or `--config <file>`): the same
 * settings as the flags, per command, so a pipeline can keep them in its repository.
 *
 *   { "partition": { "mesh": "tp=2", "strategy": "megatron", "dim": { "batch": 1 }, "out": "bundle" },
 *     "verify":    { "mesh": "tp=2", "shard-rtol": 1e-4, "json": true } }
 *
 * Keys are command names, then flag names without the dashes (`shard-rtol`; `fuse: false` is
 * `--no-fuse`). Values are what the flag takes: a string or a number for a flag with a value
 * (parsed and checked as on the command line), true/false for a switch; `dim` also takes an object
 * { "batch": 1 }. Flags given on the command line override the file. Arguments (the model path)
 * stay on the command line. An unknown command or flag, or a value of the wrong kind, is a user
 * error naming the file and the key (exit 1); nothing runs.
 */
import type { Command, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../ir/errors.js';

export const CONFIG_FILE = 'shardc.config.json';

export type ConfigValue = string | number | boolean | Record<string, number>;
export type ShardcConfig = Record<string, Record<string, ConfigValue>>;

/** Reads and checks the structure of a config file (not yet its flags: see applyConfig). */
export function readConfig(file: string): ShardcConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'config file not found' : `cannot read the config file (${code ?? 'error'})`, { file });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UserError(`config file is not valid JSON: ${(e as Error).message}`, { file });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new UserError('config file: the top level must be an object of commands', { file });
  for (const [cmd, flags] of Object.entries(doc)) {
    if (!flags || typeof flags !== 'object' || Array.isArray(flags)) throw new UserError(`config file: ${JSON.stringify(cmd)} must be an object of flags`, { file });
  }
  return doc as ShardcConfig;
}

/** The config file to use: `--config`, else shardc.config.json in `cwd` when it exists. */
export function findConfig(explicit: string | undefined, cwd: string): string | undefined {
  if (explicit !== undefined) return explicit;
  const f = join(cwd, CONFIG_FILE);
  return existsSync(f) ? f : undefined;
}

/** Checks every command name of the file against the program's commands. */
export function checkConfigCommands(config: ShardcConfig, program: Command, file: string): void {
  const names = program.commands.map((c) => c.name());
  for (const k of Object.keys(config))
    if (!names.includes(k)) throw new UserError(`config file: unknown command ${JSON.stringify(k)} (commands: ${names.join(', ')})`, { file });
}

const flagName = (o: Option): string => (o.long ?? '').replace(/^--(no-)?/, '');

/**
 * Sets `cmd`'s option values from its section of the config, with source 'config' (so flags given
 * on the command line, parsed after this, override them; defaults are replaced).
 */
export function applyConfig(cmd: Command, config: ShardcConfig, file: string): void {
  const section = config[cmd.name()];
  if (!section) return;
  const options = cmd.options as readonly Option[];
  for (const [key, value] of Object.entries(section)) {
    const where = `${cmd.name()}.${key}`;
    const opt = options.find((o) => flagName(o) === key && !o.negate) ?? options.find((o) => flagName(o) === key);
    if (!opt || key === 'help')
      throw new UserError(
        `config file: unknown flag ${JSON.stringify(where)} (${cmd.name()} takes: ${[...new Set(options.map(flagName))].filter((n) => n !== 'help').join(', ')})`,
        { file },
      );
    const attr = opt.attributeName();
    const takesValue = opt.required || opt.optional;
    if (!takesValue) {
      if (typeof value !== 'boolean') throw new UserError(`config file: ${where} must be true or false`, { file });
      cmd.setOptionValueWithSource(attr, value, 'config');
      continue;
    }
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
    else if (key === 'dim' && value && typeof value === 'object' && !Array.isArray(value))
      text = Object.entries(value)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
    else throw new UserError(`config file: ${where} must be ${key === 'dim' ? 'an object like {"batch": 1} or a string' : 'a string or a number'}`, { file });
    const parse = (opt as Option & { parseArg?: (v: string, prev: unknown) => unknown }).parseArg;
    let parsed: unknown = text;
    if (parse) {
      try {
        parsed = parse(text, undefined);
      } catch (e) {
        throw new UserError(`config file: ${where}: ${(e as Error).message}`, { file });
      }
    }
    cmd.setOptionValueWithSource(attr, parsed, 'config');
  }
}

/**
 * Adds the global `--config <file>`, `--quiet` and `--verbose` to the program and loads the config
 * for the command about to run (commander's preSubcommand hook: after the program's own options,
 * before the command's flags are parsed).
 */
export function installConfig(program: Command, cwd: () => string = () => process.cwd()): Command {
  program
    .option('--config <file>', `settings per command from a JSON file (default: ./${CONFIG_FILE} when present); flags override it`)
    .option('-q, --quiet', 'print only what a script needs (results, paths, hashes)')
    .option('--verbose', 'also print timings (per pass and per stage) on stderr')
    .hook('preSubcommand', (root, sub) => {
      const file = findConfig(root.opts<{ config?: string }>().config, cwd());
      if (file === undefined) return;
      const config = readConfig(file);
      checkConfigCommands(config, root, file);
      applyConfig(sub, config, file);
    });
  return program;
}
