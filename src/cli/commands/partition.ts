/**
 * `shardc partition <model.onnx> --mesh tp=4[,dp=2] [--strategy megatron|...|auto|<spec.json>]
 * [--target cpu|wgsl|cuda] [--dim batch=1,sequence=16] [--hardware hw.json] [--memory-limit 80GiB] [--no-weights]
 * --out <dir> [--force] [--json]`: shards the model over
 * the mesh and writes the bundle (src/bundle/write.ts) atomically. Prints the bundle path and the
 * SHA-256 of its manifest (which covers every file), or with --json one document
 * {bundle, manifestSha256, devices, collectives}. Bad input exits 1 and writes nothing.
 */
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { partitionModelForTarget } from '../../bundle/partition.js';
import { parseBytes } from '../../hardware/hardware.js';
import { type CliContext, type CommandState, helpExamples, parseDims, printJson, println, requireCpuTarget, verbosity } from '../context.js';
import { withProgress } from '../progress.js';
import { createStyle } from '../style.js';

interface PartitionCliOptions {
  mesh: string;
  strategy: string;
  target?: string;
  dim?: Record<string, number>;
  out: string;
  force?: boolean;
  json?: boolean;
  hardware?: string;
  memoryLimit?: string;
  /** false with --no-weights (commander's negated option). */
  weights?: boolean;
  /** false with --no-search; undefined: auto's default (the search on). */
  search?: boolean;
}

/** The package's version (recorded in manifests). */
export function shardcVersion(packageRoot: string): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function partitionCommand(ctx: CliContext, _state: CommandState): Command {
  return new Command('partition')
    .description('partition a model over a device mesh into a bundle (manifest, schedule, per-device programs and weights, report)')
    .addHelpText(
      'after',
      helpExamples([
      ['tensor parallel over 2 devices (megatron), a bundle for the CPU runtime', 'shardc partition examples/gpt-tiny.onnx --mesh tp=2 --strategy megatron --dim batch=1,sequence=8 --out out'],
      ['data x tensor parallel, WGSL kernels and host programs for WebGPU', 'shardc partition examples/llama-tiny.onnx --mesh dp=2,tp=2 --strategy megatron --target wgsl --dim batch=2,sequence=8 --out out-wgsl'],
      ['per-device time estimates from a hardware file, no weights written', 'shardc partition model.onnx --mesh tp=8 --hardware examples/hardware/h100-8x-nvlink.json --no-weights --out plan'],
      ['a script: only the bundle path and its manifest SHA-256', 'shardc --quiet partition model.onnx --mesh tp=4 --out bundle'],
      ]),
    )
    .argument('<model>', 'ONNX model file')
    .requiredOption('--mesh <mesh>', 'device mesh, e.g. tp=4 or dp=2,tp=4')
    .option('--strategy <strategy>', 'megatron, sequence, summa2d, expert, pipeline, data, auto, or a spec .json file', 'auto')
    .option('--target <target>', 'cpu, wgsl (adds device-<r>/kernels.wgsl; runs on WebGPU), or cuda (CMake project: CUDA kernels, C++ host program, NCCL)', 'cpu')
    .option('--dim <bindings>', 'symbolic dims, e.g. batch=1,sequence=128', (v: string, prev?: Record<string, number>) => parseDims(v, prev))
    .requiredOption('--out <dir>', 'bundle directory (replaced atomically)')
    .option('--force', 'replace --out even when it is not a shardc bundle')
    .option('--json', 'print one JSON document')
    .option('--hardware <file>', 'hardware file (examples/hardware/*.json): link bandwidths per mesh axis, per-device time estimates in report.json, default memory limit')
    .option('--memory-limit <bytes>', 'per-device memory limit, e.g. 80GiB or 85899345920 (default: the hardware file\'s device memory)')
    .option('--no-weights', 'read and write no weight: plan, schedule, reports and (wgsl) kernels only')
    .option('--no-search', 'with --strategy auto: presets only, without the layout search (an integer program per mesh axis, highs solver; on by default)')
    // --search was needed before the search became auto's default; still accepted, so scripts keep working.
    .addOption(new Option('--search').hideHelp())
    .action(async (modelPath: string, opts: PartitionCliOptions, command: Command) => {
      const level = verbosity(command);
      const started = performance.now();
      const target = opts.target === 'wgsl' || opts.target === 'cuda' ? opts.target : requireCpuTarget(opts.target);
      // Progress bars (stderr, TTY only): reading each device's weights, then the bytes written.
      const r = await withProgress(ctx, command, { json: opts.json, bytes: ['writing bundle'] }, (progress) => partitionModelForTarget(modelPath, {
        mesh: opts.mesh,
        strategy: opts.strategy,
        target,
        bindings: opts.dim ?? {},
        out: opts.out,
        force: opts.force,
        shardcVersion: shardcVersion(ctx.packageRoot),
        hardware: opts.hardware,
        memoryLimit: opts.memoryLimit !== undefined ? parseBytes(opts.memoryLimit) : undefined,
        noWeights: opts.weights === false,
        search: opts.search,
        onProgress: progress.onProgress,
      }));
      if (level === 'verbose') ctx.stderr.write(`partition: ${(performance.now() - started).toFixed(0)} ms\n`);
      if (opts.json) printJson(ctx, r);
      // --quiet: one line a script can split: the bundle path and its manifest SHA-256.
      else if (level === 'quiet') println(ctx.stdout, `${r.bundle} ${r.manifestSha256}`);
      else {
        const style = createStyle(ctx.stdout);
        println(
          ctx.stdout,
          `${style.ok('wrote bundle')} ${style.heading(r.bundle)} (${r.devices} device${r.devices === 1 ? '' : 's'}, ${r.collectives} collective${r.collectives === 1 ? '' : 's'})`,
          `manifest sha256 ${style.dim(r.manifestSha256)}`,
        );
      }
    });
}
