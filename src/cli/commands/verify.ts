/**
 * `shardc verify <model.onnx> [--inputs <test_data_set dir>] [--atol A --rtol R] [--dim ...]
 * [--seed N] [--target cpu] [--json]`: runs the model on the CPU runtime and compares every output
 * with output_<i>.pb in the inputs dir, else with onnxruntime-node on the same inputs (seeded
 * random inputs when no dir is given). Exit 3 on a mismatch, naming the worst element.
 *
 * With `--mesh M [--strategy S]` the model is sharded and run on simulated devices
 * (src/verify/sharded.ts); the sharded outputs are compared with the unsharded CPU run
 * (--shard-rtol/--shard-atol, default 1e-5/1e-6) and with the test data or onnxruntime-node
 * (--rtol/--atol). The JSON report holds both comparisons. `--target wgsl` runs the (sharded)
 * programs on WebGPU devices; without --mesh it is one device (mesh tp=1).
 */
import { Command } from 'commander';
import { createStyle, paintReport } from '../style.js';
import { UserError, VerificationError } from '../../ir/errors.js';
import { createCoreRegistry } from '../../ir/ops/index.js';
import { createCoreShardingRules } from '../../passes/sharding/rules/index.js';
import { SHARDED_TOLERANCE, WGSL_SHARDED_TOLERANCE, firstMismatch, formatShardedReport, verifySharded } from '../../verify/sharded.js';
import { VERIFY_TOLERANCE, assertVerified, formatVerifyReport, verifyModel } from '../../verify/verify.js';
import { type CliContext, parseDims, parseInteger, parseNonNegative, printJson, println, requireCpuTarget, type CommandState, EXIT, helpExamples } from '../context.js';

interface VerifyCliOptions {
  inputs?: string;
  atol: number;
  rtol: number;
  dim?: Record<string, number>;
  seed: number;
  target?: string;
  mesh?: string;
  strategy?: string;
  shardRtol: number;
  shardAtol: number;
  json?: boolean;
}

export function verifyCommand(ctx: CliContext, state: CommandState): Command {
  return new Command('verify')
    .description('run on the CPU runtime and compare with test data or onnxruntime-node (exit 3 on mismatch)')
    .addHelpText(
      'after',
      helpExamples([
      ['compare with onnxruntime-node on seeded random inputs', 'shardc verify examples/gpt-tiny.onnx --dim batch=2,sequence=8'],
      ['compare with an ONNX test data set', 'shardc verify model.onnx --inputs test_data_set_0'],
      ['a sharded run on 4 simulated devices vs the unsharded run and onnxruntime-node', 'shardc verify examples/llama-tiny.onnx --mesh dp=2,tp=2 --strategy megatron --dim batch=2,sequence=8'],
      ['the same on WebGPU devices', 'shardc verify examples/gpt-tiny.onnx --target wgsl --mesh tp=2 --strategy megatron --dim batch=1,sequence=8'],
      ]),
    )
    .argument('<model>', 'ONNX model file')
    .option('--inputs <dir>', 'test data set directory (input_<i>.pb, and output_<i>.pb to compare with)')
    .option('--atol <A>', 'absolute tolerance', parseNonNegative('--atol'), VERIFY_TOLERANCE.atol)
    .option('--rtol <R>', 'relative tolerance', parseNonNegative('--rtol'), VERIFY_TOLERANCE.rtol)
    .option('--dim <bindings>', 'symbolic dims for random inputs, e.g. batch=1,sequence=128 (unbound: 1)', (v: string, prev?: Record<string, number>) =>
      parseDims(v, prev),
    )
    .option('--seed <N>', 'seed of the random inputs', parseInteger('--seed'), 0)
    .option('--target <target>', 'cpu, or wgsl (WebGPU devices; one device without --mesh)', 'cpu')
    .option('--mesh <mesh>', 'verify a sharded run on simulated devices, e.g. tp=4 or dp=2,tp=2')
    .option('--strategy <strategy>', 'sharding strategy for --mesh: megatron, sequence, summa2d, expert, pipeline, data, auto, or a spec .json file')
    .option('--shard-rtol <R>', 'relative tolerance of sharded vs unsharded', parseNonNegative('--shard-rtol'), SHARDED_TOLERANCE.rtol)
    .option('--shard-atol <A>', 'absolute tolerance of sharded vs unsharded', parseNonNegative('--shard-atol'), SHARDED_TOLERANCE.atol)
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, opts: VerifyCliOptions, command: Command) => {
      const target = opts.target === 'wgsl' ? 'wgsl' : requireCpuTarget(opts.target);
      if (opts.strategy !== undefined && opts.mesh === undefined) throw new UserError(`--strategy needs --mesh`);
      // --target wgsl without --mesh: one WebGPU device (mesh tp=1), compared the same way.
      if (target === 'wgsl' && opts.mesh === undefined) opts.mesh = 'tp=1';
      if (opts.mesh !== undefined) {
        const report = await verifySharded(modelPath, {
          registry: createCoreRegistry(),
          rules: createCoreShardingRules(),
          mesh: opts.mesh,
          strategy: opts.strategy ?? 'auto',
          inputsDir: opts.inputs,
          tolerance: { atol: opts.atol, rtol: opts.rtol },
          // WebGPU computes in f32 with another summation order: its default is WGSL_SHARDED_TOLERANCE.
          shardTolerance: {
            atol: target === 'wgsl' && command.getOptionValueSource('shardAtol') === 'default' ? WGSL_SHARDED_TOLERANCE.atol : opts.shardAtol,
            rtol: target === 'wgsl' && command.getOptionValueSource('shardRtol') === 'default' ? WGSL_SHARDED_TOLERANCE.rtol : opts.shardRtol,
          },
          dims: opts.dim,
          seed: opts.seed,
          target,
        });
        const bad = firstMismatch(report);
        if (opts.json) {
          printJson(ctx, report);
          if (bad) {
            ctx.stderr.write(`shardc: verification failed: ${bad}\n`);
            state.code = EXIT.mismatch;
          }
          return;
        }
        println(ctx.stdout, ...paintReport(createStyle(ctx.stdout), formatShardedReport(report)));
        if (bad) throw new VerificationError(bad);
        return;
      }
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
      println(ctx.stdout, ...paintReport(createStyle(ctx.stdout), formatVerifyReport(report)));
      assertVerified(report);
    });
}
