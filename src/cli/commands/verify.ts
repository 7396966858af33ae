/**
 * `shardc verify <model.onnx> [--inputs <test_data_set dir>] [--atol A --rtol R] [--dim ...]
 * [--seed N] [--target cpu] [--json]`: runs the model on the CPU runtime and compares every output
 * with output_<i>.pb in the inputs dir, else with onnxruntime-node on the same inputs (seeded
 * random inputs when no dir is given). Exit 3 on a mismatch, naming the worst element.
 */
import { Command } from 'commander';
import { UserError } from '../../ir/errors.js';
import { createCoreRegistry } from '../../ir/ops/index.js';
import { VERIFY_TOLERANCE, assertVerified, formatVerifyReport, verifyModel } from '../../verify/verify.js';
import { type CliContext, parseDims, parseInteger, parseNonNegative, printJson, println, requireCpuTarget, type CommandState, EXIT } from '../context.js';

interface VerifyCliOptions {
  inputs?: string;
  atol: number;
  rtol: number;
  dim?: Record<string, number>;
  seed: number;
  target?: string;
  mesh?: string;
  strategy?: string;
  json?: boolean;
}

export function verifyCommand(ctx: CliContext, state: CommandState): Command {
  return new Command('verify')
    .description('run on the CPU runtime and compare with test data or onnxruntime-node (exit 3 on mismatch)')
    .argument('<model>', 'ONNX model file')
    .option('--inputs <dir>', 'test data set directory (input_<i>.pb, and output_<i>.pb to compare with)')
    .option('--atol <A>', 'absolute tolerance', parseNonNegative('--atol'), VERIFY_TOLERANCE.atol)
    .option('--rtol <R>', 'relative tolerance', parseNonNegative('--rtol'), VERIFY_TOLERANCE.rtol)
    .option('--dim <bindings>', 'symbolic dims for random inputs, e.g. batch=1,sequence=128 (unbound: 1)', (v: string, prev?: Record<string, number>) =>
      parseDims(v, prev),
    )
    .option('--seed <N>', 'seed of the random inputs', parseInteger('--seed'), 0)
    .option('--target <target>', 'cpu (wgsl and cuda come with partition)', 'cpu')
    .option('--mesh <mesh>', 'verify a sharded run (not implemented yet)')
    .option('--strategy <strategy>', 'sharding strategy for --mesh (not implemented yet)')
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, opts: VerifyCliOptions) => {
      requireCpuTarget(opts.target);
      if (opts.mesh !== undefined || opts.strategy !== undefined) throw new UserError(`sharded verification (--mesh, --strategy) is not implemented yet`);
      const report = await verifyModel(modelPath, {
        registry: createCoreRegistry(),
        inputsDir: opts.inputs,
        tolerance: { atol: opts.atol, rtol: opts.rtol },
        dims: opts.dim,
        seed: opts.seed,
      });
      if (opts.json) {
        printJson(ctx, report);
        if (!report.ok) {
          const bad = report.outputs.find((o) => !o.ok)!;
          ctx.stderr.write(`shardc: verification failed: output ${JSON.stringify(bad.name)}: ${bad.message}\n`);
          state.code = EXIT.mismatch;
        }
        return;
      }
      println(ctx.stdout, ...formatVerifyReport(report));
      assertVerified(report);
    });
}
