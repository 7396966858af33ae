/**
 * `shardc bench <model.onnx | bundle-dir> [--target wgsl] [--browser] [--compare onnxruntime-web |
 * onnxruntime-node] [--mesh tp=N] [--dim k=v,...] [--warmup N] [--runs N] [--json] [--profile]
 * [--out report.json]`: times shardc's WebGPU run of a model (CPU inputs to CPU outputs, medians
 * after warm-up) in headless Chromium next to onnxruntime-web's two builds, or in Node (Dawn) next
 * to onnxruntime-node, and checks that the outputs agree (exit 3 when they do not). See
 * src/bench/run.ts. Speed figures are reported, never asserted.
 *
 * `shardc bench --calibrate [--target wgsl|cpu] [--hardware base.json] --out hw.json [--json]`:
 * measures this machine's target instead (src/bench/calibrate.ts) and writes a hardware file.
 */
import { Command } from 'commander';
import { withProgress } from '../progress.js';
import { createStyle, paintReport } from '../style.js';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from '../../ir/errors.js';
import { CALIBRATION_TARGETS, type CalibrationTarget, calibrate, formatCalibration } from '../../bench/calibrate.js';
import { COMPARE_ENGINES, type CompareEngine, benchModel, formatBench, reportFile } from '../../bench/run.js';
import { hardwareDocument, hardwareJson } from '../../hardware/hardware.js';
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
  calibrate?: boolean;
  hardware?: string;
}

/** Writes `text` to `file` through a temporary file and a rename (never half a file). */
function writeAtomically(file: string, text: string, what: string): void {
  const tmp = `${file}.shardc-tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    throw new UserError(`cannot write ${what} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file });
  }
}

/** Model-bench options that --calibrate does not take (option attribute → flag). */
const NOT_WITH_CALIBRATE: [keyof BenchCliOptions, string][] = [
  ['browser', '--browser'],
  ['compare', '--compare'],
  ['mesh', '--mesh'],
  ['strategy', '--strategy'],
  ['dim', '--dim'],
  ['seed', '--seed'],
  ['threads', '--threads'],
  ['profile', '--profile'],
  ['chromium', '--chromium'],
  ['engine', '--engine'],
  ['fuse', '--no-fuse'],
];

/** `--calibrate`: measure, write the hardware file, print the figures. */
async function calibrateAction(ctx: CliContext, command: Command, model: string | undefined, opts: BenchCliOptions): Promise<void> {
  if (model !== undefined) throw new UserError(`--calibrate measures this machine and takes no model; got ${JSON.stringify(model)}`);
  for (const [key, flag] of NOT_WITH_CALIBRATE) {
    const source = command.getOptionValueSource(key);
    if (source !== undefined && source !== 'default') throw new UserError(`${flag} does not apply to --calibrate`);
  }
  if (!(CALIBRATION_TARGETS as readonly string[]).includes(opts.target))
    throw new UserError(`--calibrate measures --target ${CALIBRATION_TARGETS.join(' or ')}; got ${JSON.stringify(opts.target)}`);
  if (opts.out === undefined) throw new UserError('--calibrate needs --out <file>: the hardware file to write');
  const out = opts.out;
  // Before minutes of measuring, not after: a file that cannot be written.
  if (!existsSync(dirname(resolve(out)))) throw new UserError('the folder to write the hardware file in does not exist', { file: out });
  const result = await withProgress(ctx, command, { json: opts.json }, (progress) =>
    calibrate({ target: opts.target as CalibrationTarget, base: opts.hardware, warmup: opts.warmup, runs: opts.runs, onProgress: progress.onProgress }),
  );
  writeAtomically(out, hardwareJson(result.hardware), 'the hardware file');
  if (opts.json) {
    const { notes: _notes, ...figures } = result.figures;
    printJson(ctx, { out, target: opts.target, adapter: result.hardware.calibrated!.adapter, devices: result.devices, figures, hardware: hardwareDocument(result.hardware) });
  } else println(ctx.stdout, ...formatCalibration(result), `wrote ${out}`);
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
      ['measure this machine\'s WebGPU adapter into a hardware file (for partition --hardware)', 'shardc bench --calibrate --target wgsl --out my-hardware.json'],
      ['keep a base file\'s topology, measured figures in place of its device and link ones', 'shardc bench --calibrate --hardware examples/hardware/laptop-webgpu.json --out laptop.json'],
      ]),
    )
    .argument('[model]', 'ONNX model file, or a bundle directory written by `shardc partition` (none with --calibrate)')
    .option('--target <target>', 'wgsl (WebGPU); with --calibrate also cpu (the CPU runtime)', 'wgsl')
    .option('--calibrate', 'measure this machine\'s target instead — matmul flop rate, memory bandwidth, kernel launch latency, collective latency and bandwidth — and write a hardware file (--out)')
    .option('--hardware <file>', 'with --calibrate: a base hardware file whose topology (devices, memory, links, axes) is kept')
    .option('--browser', 'run in headless Chromium (WebGPU on navigator.gpu) instead of Node (Dawn)')
    .option('--compare <engine>', `time a peer on the same inputs: ${COMPARE_ENGINES.join(' (with --browser), ')} (without --browser)`)
    .option('--mesh <mesh>', 'shard the model in memory over a mesh on one adapter, e.g. tp=2 (default tp=1)')
    .option('--strategy <strategy>', 'sharding strategy for --mesh (default megatron)')
    .option('--dim <bindings>', 'symbolic dims of the random inputs, e.g. batch=1,sequence=64 (unbound: 1)', (v: string, prev?: Record<string, number>) => parseDims(v, prev))
    .option('--seed <N>', 'seed of the random inputs', parseInteger('--seed'), 0)
    .option('--warmup <N>', 'untimed runs first (with --calibrate: per size measured)', parseInteger('--warmup'), 2)
    .option('--runs <N>', 'timed runs (the median is reported; with --calibrate: per size measured)', parseInteger('--runs'), 10)
    .option('--threads <N>', 'onnxruntime-web wasm threads (default: the cores, at most 4)', parseInteger('--threads'))
    .option('--profile', 'record per-kernel and per-collective times of one extra run')
    .option('--out <file>', 'write the report (with every profile entry) to this JSON file; with --calibrate, the hardware file')
    .option('--chromium <path>', 'Chromium executable for --browser (default $SHARDC_CHROMIUM or /usr/bin/chromium)')
    .option('--engine <engine>', 'shardc runtime: compiled (host program session) or interpretive (kernel runner)', 'compiled')
    .option('--no-fuse', 'do not fuse kernels of the compiled host program')
    .option('--json', 'print one JSON document')
    .action(async (modelPath: string | undefined, opts: BenchCliOptions, command: Command) => {
      if (opts.calibrate) return calibrateAction(ctx, command, modelPath, opts);
      if (modelPath === undefined) throw new UserError('bench needs a model (an ONNX file or a bundle directory), or --calibrate to measure this machine');
      if (opts.hardware !== undefined) throw new UserError('--hardware is the base file of --calibrate; add --calibrate (partition takes --hardware for plans)');
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
      if (opts.out !== undefined) writeAtomically(opts.out, JSON.stringify(reportFile(report, profile), null, 2) + '\n', 'the report');
      if (opts.json) printJson(ctx, report);
      else println(ctx.stdout, ...paintReport(createStyle(ctx.stdout), formatBench(report)), ...(opts.out !== undefined ? [`wrote ${opts.out}`] : []));
      if (!report.agree) {
        ctx.stderr.write(`shardc: outputs differ from ${report.reference}: ${report.agreement[0]?.message ?? ''}\n`);
        state.code = EXIT.mismatch;
      }
    });
}
