/** `shardc inspect <model.onnx> [--dim ...] [--json]`: what a model contains and what shardc cannot run. */
import { Command } from 'commander';
import { createCoreRegistry } from '../../ir/ops/index.js';
import { formatShape } from '../../ir/shape.js';
import { loadModel } from '../../onnx/import.js';
import { type ModelSummary, type ValueSummary, formatBytes, formatFlops, summarizeModel } from '../../verify/model-summary.js';
import { type CliContext, parseDims, printJson, println, type CommandState, helpExamples } from '../context.js';

interface InspectOptions {
  json?: boolean;
  dim?: Record<string, number>;
}

export function inspectCommand(ctx: CliContext, _state: CommandState): Command {
  return new Command('inspect')
    .description('ops, opsets, inputs/outputs, parameters, flops, and unsupported ops of a model')
    .addHelpText(
      'after',
      helpExamples([
      ['ops, shapes, parameters and flops of a model', 'shardc inspect examples/gpt-tiny.onnx'],
      ['flops with the symbolic dims bound', 'shardc inspect examples/gpt-tiny.onnx --dim batch=1,sequence=128'],
      ['the summary as one JSON document', 'shardc inspect model.onnx --json'],
      ]),
    )
    .argument('<model>', 'ONNX model file')
    .option('--dim <bindings>', 'bind symbolic dims for flops, e.g. batch=1,sequence=128', (v: string, prev?: Record<string, number>) => parseDims(v, prev))
    .option('--json', 'print one JSON document')
    .action((modelPath: string, opts: InspectOptions) => {
      const summary = summarizeModel(loadModel(modelPath), createCoreRegistry(), opts.dim ?? {});
      if (opts.json) printJson(ctx, summary);
      else println(ctx.stdout, ...formatSummary(summary));
    });
}

const fmtValue = (v: ValueSummary): string => `  ${v.name}: ${v.dtype ?? '?'}${v.shape ? formatShape(v.shape) : '[?]'}`;

export function formatSummary(s: ModelSummary): string[] {
  const opsets = Object.entries(s.opsets)
    .map(([d, v]) => `${d || 'ai.onnx'} ${v}`)
    .join(', ');
  const lines = [
    `model: ${s.model}`,
    `producer: ${s.producer || '(none)'}, IR version ${s.irVersion}, opsets: ${opsets}`,
    `inputs:`,
    ...s.inputs.map(fmtValue),
    `outputs:`,
    ...s.outputs.map(fmtValue),
    `parameters: ${s.parameters.count.toLocaleString('en-US')} in ${s.parameters.tensors} tensors (${formatBytes(s.parameters.bytes)})`,
  ];
  const bound = Object.entries(s.flops.dims).map(([k, v]) => `${k}=${v}`);
  let flops = `flops: ${formatFlops(s.flops.total)}`;
  if (bound.length) flops += ` with ${bound.join(',')}`;
  if (s.flops.unknownNodes) flops += ` (+ ${s.flops.unknownNodes} node${s.flops.unknownNodes === 1 ? '' : 's'} with symbolic shapes; bind them with --dim)`;
  lines.push(flops);
  if (!s.shapeInference.ok) lines.push(`shape inference stopped: ${s.shapeInference.message}`);
  lines.push(`nodes: ${s.nodes}`);
  const w = Math.max(0, ...s.ops.map((o) => o.op.length));
  for (const o of s.ops) lines.push(`  ${o.op.padEnd(w)}  ${o.count}`);
  if (s.unsupported.length === 0) lines.push('unsupported: none');
  else {
    lines.push(`unsupported: ${s.unsupported.length} op${s.unsupported.length === 1 ? '' : 's'}`);
    for (const u of s.unsupported) lines.push(`  ${u.op}: ${u.nodes.length} node${u.nodes.length === 1 ? '' : 's'} (${u.nodes.slice(0, 3).join(', ')}${u.nodes.length > 3 ? ', ...' : ''})`);
  }
  return lines;
}
