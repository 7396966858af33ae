/**
 * `shardc explain <bundle-dir> [--tensor NAME] [--collective NAME] [--json]`: why each collective
 * exists and why each value has its layout, read from the bundle's plan.json.
 */
import { Command } from 'commander';
import { explainBundle, formatExplanation } from '../../bundle/explain.js';
import { type CliContext, type CommandState, printJson, println, helpExamples } from '../context.js';

interface ExplainCliOptions {
  tensor?: string;
  collective?: string;
  json?: boolean;
}

export function explainCommand(ctx: CliContext, _state: CommandState): Command {
  return new Command('explain')
    .description('why each layout and each collective of a bundle')
    .addHelpText(
      'after',
      helpExamples([
      ['every collective and layout of a bundle, with the reasons', 'shardc explain out'],
      ['one collective', 'shardc explain out --collective AllReduce_tp_add_8'],
      ['one tensor and the collectives that move it', 'shardc explain out --tensor logits --json'],
      ]),
    )
    .argument('<bundle>', 'bundle directory written by shardc partition')
    .option('--tensor <name>', 'only this value (and the collectives that move it)')
    .option('--collective <name>', 'only this collective (by node name)')
    .option('--json', 'print one JSON document')
    .action((dir: string, opts: ExplainCliOptions) => {
      const e = explainBundle(dir, { tensor: opts.tensor, collective: opts.collective });
      if (opts.json) printJson(ctx, e);
      else println(ctx.stdout, ...formatExplanation(e));
    });
}
