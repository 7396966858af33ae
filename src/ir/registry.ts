/**
 * The op registry. Each op family is one file of rows in src/ir/ops/<family>.ts; a row (OpDef)
 * holds the op's schema (arity), shape/dtype inference and reference evaluation — the definition
 * of the op's meaning. Registries are built explicitly (createCoreRegistry) and passed in; there
 * is no import-time global registration.
 */
import type { Attrs } from './attrs.js';
import type { DType } from './dtype.js';
import { UserError } from './errors.js';
import { DEFAULT_DOMAIN, type Node } from './graph.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

export type OpFamily =
  | 'elementwise'
  | 'matmul'
  | 'reduce'
  | 'shape'
  | 'normalization'
  | 'conv'
  | 'attention'
  | 'collective';

/** Dtype and (possibly unknown, possibly symbolic) shape of a value. */
export interface TypeInfo {
  dtype: DType;
  shape?: Shape;
}

export interface InferContext {
  node: Node;
  attrs: Attrs;
  /** Input types; undefined for an absent optional input. */
  inputs: (TypeInfo | undefined)[];
  /** The value of input i when it is a compile-time constant (initializer or folded), else undefined. */
  constant(i: number): Tensor | undefined;
}

export interface EvalContext {
  node: Node;
  attrs: Attrs;
  /** Input tensors; undefined for an absent optional input. */
  inputs: (Tensor | undefined)[];
}

export interface OpDef {
  op: string;
  /** '' is the ONNX default domain. */
  domain?: string;
  family: OpFamily;
  /** Inclusive arity bounds; use Infinity for variadic. */
  inputs: [number, number];
  outputs: [number, number];
  /** Output dtypes and shapes; unknown dims stay symbolic or the shape undefined. Throws UserError on invalid input. */
  infer(ctx: InferContext): TypeInfo[];
  /** Reference evaluation on the CPU: the definition of the op's meaning. */
  evaluate(ctx: EvalContext): Tensor[];
  /** Floating point operations for one evaluation (for inspect and the cost model); static shapes only. */
  flops?(ctx: InferContext): number;
}

const key = (domain: string, op: string): string => `${domain}::${op}`;

export class OpRegistry {
  private readonly defs = new Map<string, OpDef>();

  register(...defs: OpDef[]): this {
    for (const d of defs) {
      const k = key(d.domain ?? DEFAULT_DOMAIN, d.op);
      if (this.defs.has(k)) throw new Error(`op ${d.op} registered twice`);
      this.defs.set(k, d);
    }
    return this;
  }

  get(op: string, domain = DEFAULT_DOMAIN): OpDef | undefined {
    return this.defs.get(key(domain === 'ai.onnx' ? DEFAULT_DOMAIN : domain, op));
  }

  has(op: string, domain = DEFAULT_DOMAIN): boolean {
    return this.get(op, domain) !== undefined;
  }

  /** The row for a node; a UserError naming the node when the op is unknown. */
  forNode(node: Node): OpDef {
    const d = this.get(node.op, node.domain);
    if (!d) throw new UserError(`unsupported op ${node.domain ? node.domain + '.' : ''}${node.op}`, { node: node.label });
    return d;
  }

  list(): OpDef[] {
    // Code-unit order (never the locale's collation: output must not depend on LANG).
    return [...this.defs.values()].sort((a, b) => {
      const x = key(a.domain ?? '', a.op);
      const y = key(b.domain ?? '', b.op);
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }
}
