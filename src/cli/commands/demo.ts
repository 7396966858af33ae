/**
 * `shardc demo`: imports the bundled example (examples/gpt-tiny.onnx), runs it on the CPU runtime
 * on seeded random token ids and checks the result against onnxruntime-node. (Partitioning joins
 * the demo when `partition` exists.)
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../ir/errors.js';
import { createCoreRegistry } from '../../ir/ops/index.js';
import { loadModel } from '../../onnx/import.js';
import { formatFlops, summarizeModel } from '../../verify/model-summary.js';
import { assertVerified, formatVerifyReport, verifyModel } from '../../verify/verify.js';
import { type CliContext, type CommandState, EXIT, printJson, println, verbosity, helpExamples } from '../context.js';

export const DEMO_MODEL = join('examples', 'gpt-tiny.onnx');
export const DEMO_DIMS = { batch: 2, sequence: 8 };

export function demoCommand(ctx: CliContext, state: CommandState): Command {
  return new Command('demo')
    .description('run the bundled example model and check it against onnxruntime-node')
    .addHelpText(
      'after',
      helpExamples([
      ['import the bundled GPT example, run it, check it against onnxruntime-node', 'shardc demo'],
      ]),
    )
    .option('--json', 'print one JSON document: {model, nodes, parameters, flops, dims, verify}')
    .action(async (opts: { json?: boolean }, command: Command) => {
    const quiet = verbosity(command) === 'quiet';
    const path = join(ctx.packageRoot, DEMO_MODEL);
    if (!existsSync(path)) throw new UserError(`the example model is missing from the package`, { file: path });
    const registry = createCoreRegistry();
    const s = summarizeModel(loadModel(path), registry, DEMO_DIMS);
    if (opts.json) {
      const verify = await verifyModel(path, { registry, dims: DEMO_DIMS, seed: 1 });
      printJson(ctx, { model: DEMO_MODEL, nodes: s.nodes, parameters: s.parameters.count, flops: s.flops.total, dims: DEMO_DIMS, verify });
      if (!verify.ok) {
        const bad = verify.outputs.find((o) => !o.ok)!;
        ctx.stderr.write(`shardc: verification failed: output ${JSON.stringify(bad.name)}: ${bad.message}\n`);
        state.code = EXIT.mismatch;
      }
      return;
    }
    if (!quiet) println(
      ctx.stdout,
      `example ${DEMO_MODEL}: ${s.nodes} nodes, ${s.parameters.count.toLocaleString('en-US')} parameters, ` +
        `${formatFlops(s.flops.total)} at batch=${DEMO_DIMS.batch}, sequence=${DEMO_DIMS.sequence}`,
    );
    const started = Date.now();
    const report = await verifyModel(path, { registry, dims: DEMO_DIMS, seed: 1 });
    if (!quiet) println(ctx.stdout, ...formatVerifyReport(report).map((l, i) => (i === 0 ? `verify ${DEMO_MODEL}: cpu vs onnxruntime-node` : l)));
    assertVerified(report);
    println(ctx.stdout, `ok: the CPU runtime matches onnxruntime-node (${Date.now() - started} ms)`);
  });
}
