/**
 * `shardc conformance <dir> [--target cpu|wgsl] [--filter REGEX] [--json]`: the ONNX backend node
 * tests on the CPU runtime, or as WGSL kernels on a WebGPU device. With --json, stdout holds exactly
 * `{"tests":[{"name","status","message"}],"passed","failed","unsupported"}`.
 * Failing tests do not change the exit code (the report is the result).
 */
import { Command } from 'commander';
import { UserError } from '../../ir/errors.js';
import { createCoreRegistry } from '../../ir/ops/index.js';
import { withProgress } from '../progress.js';
import { createStyle, paintReport } from '../style.js';
import { runConformance } from '../../verify/conformance.js';
import { type CliContext, printJson, println, requireCpuTarget, type CommandState, helpExamples } from '../context.js';

interface ConformanceCliOptions {
  target?: string;
  filter?: string;
  json?: boolean;
}

export function conformanceCommand(ctx: CliContext, _state: CommandState): Command {
  return new Command('conformance')
    .description('run the ONNX backend node tests: pass / fail / unsupported per test, and the totals')
    .addHelpText(
      'after',
      helpExamples([
      ['the ONNX backend node tests on the CPU runtime', 'shardc conformance ../shared/onnx-node-tests'],
      ['some of them as WGSL kernels on WebGPU, as JSON', 'shardc conformance ../shared/onnx-node-tests --target wgsl --filter \'^test_add\' --json'],
      ]),
    )
    .argument('<dir>', 'directory of ONNX backend tests (<test>/model.onnx, test_data_set_N/)')
    .option('--target <target>', 'cpu or wgsl (cuda comes later)', 'cpu')
    .option('--filter <regex>', 'only tests whose name matches')
    .option('--json', 'print one JSON document')
    .action(async (dir: string, opts: ConformanceCliOptions, command: Command) => {
      const target = opts.target === 'wgsl' ? 'wgsl' : requireCpuTarget(opts.target);
      let filter: RegExp | undefined;
      if (opts.filter !== undefined) {
        try {
          filter = new RegExp(opts.filter);
        } catch (e) {
          throw new UserError(`--filter is not a valid regular expression: ${(e as Error).message}`);
        }
      }
      const style = createStyle(ctx.stdout, { json: opts.json });
      // A bar of tests run on stderr (TTY only); each result line is printed above it.
      const report = await withProgress(ctx, command, { json: opts.json }, (progress) =>
        runConformance(dir, {
          target,
          registry: createCoreRegistry(),
          filter,
          onResult: opts.json
            ? undefined
            : (r) => progress.log(ctx.stdout, paintReport(style, [`${r.status} ${r.name}${r.message ? `: ${r.message}` : ''}`], { heading: false })[0]!),
          onProgress: progress.onProgress,
        }),
      );
      if (opts.json) {
        const { tests, passed, failed, unsupported } = report;
        printJson(ctx, { tests: tests.map((t) => ({ name: t.name, status: t.status, message: t.message })), passed, failed, unsupported });
      } else
        println(
          ctx.stdout,
          `${style.heading(`${report.tests.length} tests`)}: ${style.ok(`${report.passed} pass`)}, ${report.failed ? style.fail(`${report.failed} fail`) : '0 fail'}, ${report.unsupported ? style.warn(`${report.unsupported} unsupported`) : '0 unsupported'}`,
        );
    });
}
