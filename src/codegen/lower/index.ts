/**
 * Lowering of IR nodes to kernel-IR launches. Each op family has a table of rows in
 * src/codegen/lower/<family>.ts (same family names as src/ir/ops); a row turns one node, with
 * concrete input shapes, into launches (or says its output is a view of an input, or that it is
 * shape math evaluated on the host). An op without a row is unsupported on the kernel targets:
 * `unloweredOps` lists them (a completeness list, not a crash).
 *
 * Buffer names inside launches: inputs `x0, x1, ...`, outputs `y0, y1, ...` (node positions).
 * Kernels may use other names and map them with `Launch.bind`.
 */
import type { Attrs } from '../../ir/attrs.js';
import type { DType } from '../../ir/dtype.js';
import { UserError } from '../../ir/errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import type { OpFamily } from '../../ir/registry.js';
import type { Tensor } from '../../ir/tensor.js';
import type { Expr } from '../expr.js';
import { type Kernel, type KernelBody, makeKernel } from '../kernel.js';
import type { Params } from '../index-map.js';
import { convLowerings } from './conv.js';
import { elementwiseLowerings } from './elementwise.js';
import { matmulLowerings } from './matmul.js';
import { normalizationLowerings } from './normalization.js';
import { reduceLowerings } from './reduce.js';
import { resizeLowerings } from './resize.js';
import { shapeLowerings } from './shape.js';

/** A node input as the lowering sees it: concrete shape, and its value when it lives on the host. */
export interface LowerValue {
  dtype: DType;
  shape: number[];
  host?: Tensor;
}

export interface LowerContext {
  node: Node;
  attrs: Attrs;
  /** undefined for an absent optional input. */
  inputs: (LowerValue | undefined)[];
  /** Output types from the op's shape inference (concrete). */
  outputs: { dtype: DType; shape: number[] }[];
}

/** One dispatch: a kernel, its parameter values, and (optionally) kernel buffer → node buffer names. */
export interface LaunchSpec {
  kernel: Kernel;
  params: Record<string, number>;
  bind?: Record<string, string>;
  /**
   * Host-computed constant tensors read by the kernel (lookup tables: Resize's per-axis source
   * indices and weights), by kernel buffer name; uploaded for the launch and released after the node.
   */
  constants?: Record<string, Tensor>;
}

export type Lowered =
  /** Kernels to dispatch in order (outputs are fresh buffers). */
  | { kind: 'kernels'; launches: LaunchSpec[] }
  /** Output `output` is input `input`'s buffer with a new shape (Reshape, Squeeze, Identity ...). */
  | { kind: 'view'; input: number; output?: number }
  /** Evaluate on the host with the op's reference evaluation (shape math: Shape, Size). */
  | { kind: 'host' };

export interface LowerRow {
  op: string;
  domain?: string;
  family: OpFamily;
  /** Inputs whose values the lowering reads on the host (shapes, axes, pads): downloaded if on the device. */
  hostInputs?: number[];
  lower(ctx: LowerContext): Lowered;
}

export class LoweringTable {
  private readonly rows = new Map<string, LowerRow>();

  constructor(rows: LowerRow[]) {
    for (const r of rows) {
      const k = `${r.domain ?? ''}::${r.op}`;
      if (this.rows.has(k)) throw new Error(`lowering row for ${r.op} defined twice`);
      this.rows.set(k, r);
    }
  }

  get(op: string, domain = ''): LowerRow | undefined {
    return this.rows.get(`${domain === 'ai.onnx' ? '' : domain}::${op}`);
  }

  list(): LowerRow[] {
    return [...this.rows.values()].sort((a, b) => (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
  }
}

/** Every family's rows. */
export function createLoweringTable(): LoweringTable {
  return new LoweringTable([...elementwiseLowerings, ...matmulLowerings, ...reduceLowerings, ...shapeLowerings, ...normalizationLowerings, ...convLowerings, ...resizeLowerings]);
}

/** Ops of `graph` (recursively not: subgraph ops are unsupported anyway) without a lowering row, sorted. */
export function unloweredOps(graph: Graph, table: LoweringTable): string[] {
  const missing = new Set<string>();
  for (const n of graph.nodes) if (!table.get(n.op, n.domain)) missing.add(n.domain ? `${n.domain}.${n.op}` : n.op);
  return [...missing].sort();
}

// ---- helpers for rows ----------------------------------------------------------------------

/** A kernel name from the node (for comments and error messages). */
export function kernelName(ctx: LowerContext, what?: string): string {
  const base = ctx.node.name || ctx.node.op;
  return what ? `${base} ${what}` : base;
}

/** One launch from a body built against `p`. */
export function launch(ctx: LowerContext, body: KernelBody, p: Params, what?: string, bind?: Record<string, string>): LaunchSpec {
  return { kernel: makeKernel(kernelName(ctx, what), body, body.kind === 'map' ? 64 : 64), params: { ...p.values }, bind };
}

export const kernels = (...launches: LaunchSpec[]): Lowered => ({ kind: 'kernels', launches });

/** A UserError for an op/attribute combination the kernel targets do not lower. */
export function unsupported(ctx: LowerContext, why: string): UserError {
  return new UserError(`unsupported op ${ctx.node.op} on the kernel targets: ${why}`, { node: ctx.node.label });
}

/** Input i, which must be present. */
export function need(ctx: LowerContext, i: number): LowerValue {
  const v = ctx.inputs[i];
  if (!v) throw new UserError(`input ${i} is required`, { node: ctx.node.label });
  return v;
}

/** Host values of input i as numbers (undefined when absent). */
export function hostInts(ctx: LowerContext, i: number): number[] | undefined {
  const v = ctx.inputs[i];
  if (!v) return undefined;
  if (!v.host) throw new Error(`input ${i} of ${ctx.node.label} is not on the host (declare it in hostInputs)`);
  return Array.from(v.host.data as ArrayLike<number>);
}

export type { Expr };
