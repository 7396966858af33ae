/** Commands of the contract that later work fills in: they exist, and say so (exit 1). */
import { Command } from 'commander';
import { UserError } from '../../ir/errors.js';
import type { CliContext, CommandFactory, CommandState } from '../context.js';

function placeholder(name: string, description: string, args: string[]): CommandFactory {
  return (_ctx: CliContext, _state: CommandState) => {
    const cmd = new Command(name).description(`${description} (not implemented yet)`).allowUnknownOption(true).allowExcessArguments(true);
    for (const a of args) cmd.argument(a);
    return cmd.action(() => {
      throw new UserError(`${name} is not implemented yet`);
    });
  };
}

export const notImplementedCommands: CommandFactory[] = [
  placeholder('bench', 'benchmark a model on a target', ['[model]']),
];
