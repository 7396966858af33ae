/**
 * `shardc bench <model.onnx | bundle-dir> [--target wgsl] [--browser] [--compare onnxruntime-web |
 * onnxruntime-node] [--mesh tp=N] [--dim k=v,...] [--warmup N] [--runs N] [--json] [--profile]
 * [--out report.json]`: times shardc's WebGPU run of a model (CPU inputs to CPU outputs, medians
 * after warm-up) in headless Chromium next to onnxruntime-web's two builds, or in Node (Dawn) next
 * to onnxruntime-node, and checks that the outputs agree (exit 3 when they do not). See
 * src/bench/run.ts. Speed figures are reported, never asserted.
 */
import { Command } from 'commander';
import { withProgress } from '../progress.js';
import { createStyle, paintReport } from '../style.js';
import { renameSync, writeFileSync } from 'node:fs';
import { UserError } from '../../ir/errors.js';
import { COMPARE_ENGINES, type CompareEngine, benchModel, formatBench, reportFile } from '../../bench/run.js';
import { type CliContext, type CommandState, EXIT, TARGETS, parseDims, parseInteger, printJson, println, helpExamples } from '../context.js';

interface BenchCliOptions {
  target: string;
  browser?: boolean;
  compare?: string;
  mesh?: string;
  strategy?: string;
  dim?: Record<string, number>;
  seed: number;
  warmup: number;
  runs: number;
  threads?: number;
  json?: boolean;
  profile?: boolean;
  out?: string;
  chromium?: string;
  engine: string;
  fuse: boolean;
}

export function benchCommand(ctx: CliContext, state: CommandState): Command {
  return new Command('bench')
    .description('time a model on WebGPU (Node, or headless Chromium with --browser) against onnxruntime, and check the outputs agree (exit 3 if not)')
    .addHelpText(
      'after',
      helpExamples([
      ['shardc on WebGPU in Node (Dawn) against onnxruntime-node', 'shardc bench examples/gpt-tiny.onnx --compare onnxruntime-node --dim batch=1,sequence=64'],
      ['in headless Chromium against onnxruntime-web (wasm and webgpu)', 'shardc bench examples/gpt-tiny.onnx --browser --compare onnxruntime-web --json'],
      ['tensor parallel degree 2 on one adapter, with a per-kernel profile', 'shardc bench examples/gpt-tiny.onnx --mesh tp=2 --profile --out bench.json'],
      ]),
    )
    .argument('<model>', 'ONNX model file, or a bundle directory written by `shardc partition`')
    .option('--target <target>', 'wgsl (WebGPU)', 'wgsl')
    .option('--browser', 'run in headless Chromium (WebGPU on navigator.gpu) instead of Node (Dawn)')
    .option('--compare <engine>', `time a peer on the same inputs: ${COMPARE_ENGINES.join(' (with --browser), ')} (without --browser)`)
    .option('--mesh <mesh>', 'shard the model in memory over a mesh on one adapter, e.g. tp=2 (default tp=1)')
    .option('--strategy <strategy>', 'sharding strategy for --mesh (default megatron)')
    .option('--dim <bindings>', 'symbolic dims of the random inputs, e.g. batch=1,sequence=64 (unbound: 1)', (v: string, prev?: Record<string, number>) => parseDims(v, prev))
    .option('--seed <N>', 'seed of the random inputs', parseInteger('--seed'), 0)
    .option('--warmup <N>', 'untimed runs first', parseInteger('--warmup'), 2)
    .option('--runs <N>', 'timed runs (the median is reported)', parseInteger('--runs'), 10)
    .option('--threads <N>', 'onnxruntime-web wasm threads (default: the cores, at most 4)', parseInteger('--threads'))
    .option('--profile', 'record per-kernel and per-collective times of one extra run')
    .option('--out <file>', 'write the report (with every profile entry) to this JSON file')
    .option('--chromium <path>', 'Chromium executable for --browser (default $SHARDC_CHROMIUM or /usr/bin/chromium)')
    .option('--engine <engine>', 'shardc runtime: compiled (host program session) or interpretive (kernel runner)', 'compiled')
    .option('--no-fuse', 'do not fuse kernels of the compiled host program')
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string, opts: BenchCliOptions, command: Command) => {
      if (!(TARGETS as readonly string[]).includes(opts.target)) throw new UserError(`unknown target ${JSON.stringify(opts.target)}; expected one of ${TARGETS.join(', ')}`);
      if (opts.target !== 'wgsl') throw new UserError(`bench times the wgsl target (WebGPU); got --target ${opts.target}`);
      if (opts.compare !== undefined && !(COMPARE_ENGINES as readonly string[]).includes(opts.compare))
        throw new UserError(`unknown --compare ${JSON.stringify(opts.compare)}; expected ${COMPARE_ENGINES.join(' or ')}`);
      if (opts.strategy !== undefined && opts.mesh === undefined) throw new UserError('--strategy needs --mesh');
      if (opts.engine !== 'compiled' && opts.engine !== 'interpretive') throw new UserError(`unknown --engine ${JSON.stringify(opts.engine)}; expected compiled or interpretive`);
      if (opts.threads !== undefined && opts.threads < 1) throw new UserError('--threads must be at least 1');
      // A bar of runs (warm-up + timed) on stderr, TTY only; in Node (the page runs in Chromium).
      const { report, profile } = await withProgress(ctx, command, { json: opts.json }, (progress) => benchModel({
        packageRoot: ctx.packageRoot,
        model: modelPath,
        browser: !!opts.browser,
        compare: opts.compare as CompareEngine | undefined,
        mesh: opts.mesh,
        strategy: opts.strategy,
        dims: opts.dim,
        seed: opts.seed,
        warmup: opts.warmup,
        runs: opts.runs,
        profile: opts.profile,
        numThreads: opts.threads,
        chromium: opts.chromium,
        engine: opts.engine as 'compiled' | 'interpretive',
        fuse: opts.fuse,
        onProgress: progress.onProgress,
      }));
      if (opts.out !== undefined) {
        const tmp = `${opts.out}.shardc-tmp-${process.pid}`;
        try {
          writeFileSync(tmp, JSON.stringify(reportFile(report, profile), null, 2) + '\n');
          renameSync(tmp, opts.out);
        } catch (e) {
          throw new UserError(`cannot write the report (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file: opts.out });
        }
      }
      if (opts.json) printJson(ctx, report);
      else println(ctx.stdout, ...paintReport(createStyle(ctx.stdout), formatBench(report)), ...(opts.out !== undefined ? [`wrote ${opts.out}`] : []));
      if (!report.agree) {
        ctx.stderr.write(`shardc: outputs differ from ${report.reference}: ${report.agreement[0]?.message ?? ''}\n`);
        state.code = EXIT.mismatch;
      }
    });
}
