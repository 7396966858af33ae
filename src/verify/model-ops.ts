/**
 * The ops an ONNX file uses, read straight from its protobuf (subgraphs of If/Loop/Scan included),
 * without importing it: conformance uses it to call a test "unsupported" before the importer
 * runs, and to classify tests by the core op set (CORE_OPS.txt).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { UserError } from '../ir/errors.js';

const { onnx } = onnxProto;

export interface ModelOp {
  /** '' for the default ONNX domain ('ai.onnx' is normalised to ''). */
  domain: string;
  op: string;
}

/** Distinct ops of the model (sorted by domain, then op). */
export function modelOps(modelPath: string): ModelOp[] {
  const model = decode(modelPath);
  const seen = new Map<string, ModelOp>();
  const visit = (g: onnxProto.onnx.IGraphProto | null | undefined): void => {
    for (const n of g?.node ?? []) {
      const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
      const op = n.opType ?? '';
      seen.set(`${domain}::${op}`, { domain, op });
      for (const a of n.attribute ?? []) {
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(model.graph);
  return [...seen.values()].sort((a, b) => (a.domain === b.domain ? cmp(a.op, b.op) : cmp(a.domain, b.domain)));
}

function decode(modelPath: string): onnxProto.onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(readFileSync(modelPath));
  } catch (e) {
    throw new UserError(`cannot read ONNX model: ${(e as Error).message}`, { file: modelPath });
  }
}

/**
 * Graph inputs and outputs whose type is not a tensor (sequence, optional, map, sparse tensor):
 * `x: sequence`. shardc values are dense tensors only.
 */
export function nonTensorValues(modelPath: string): string[] {
  const g = decode(modelPath).graph;
  const out: string[] = [];
  for (const v of [...(g?.input ?? []), ...(g?.output ?? [])]) {
    const t = v.type;
    if (!t || t.tensorType) continue;
    const kind = t.sequenceType ? 'sequence' : t.mapType ? 'map' : t.optionalType ? 'optional' : t.sparseTensorType ? 'sparse tensor' : 'non-tensor';
    out.push(`${v.name ?? ''}: ${kind}`);
  }
  return out;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The op names listed in a CORE_OPS.txt file (whitespace separated). */
export function readCoreOps(file: string): Set<string> {
  return new Set(readFileSync(file, 'utf8').split(/\s+/).filter((s) => s.length > 0));
}

export interface CoreClassification {
  /** Every op of the model (default-domain ops by name, others as `domain.op`). */
  ops: string[];
  /** Ops outside the core set. */
  nonCore: string[];
  /** True when every op is a default-domain op in the core set. */
  core: boolean;
}

/**
 * Classifies a model by the core op set (a test counts as "core" when all its ops are core ops).
 * Without `coreOps`, reads CORE_OPS.txt of the suite (`<suite>/<test>/model.onnx`).
 */
export function coreOpsOf(modelPath: string, coreOps?: ReadonlySet<string>): CoreClassification {
  coreOps ??= readCoreOps(join(dirname(dirname(modelPath)), 'CORE_OPS.txt'));
  const ops = modelOps(modelPath).map((o) => (o.domain ? `${o.domain}.${o.op}` : o.op));
  const nonCore = ops.filter((o) => !coreOps.has(o));
  return { ops, nonCore, core: nonCore.length === 0 };
}
