/**
 * Sharding rules: for one op and ONE mesh axis, the ways the op can run with its operands split
 * over that axis (DTensor's "single-dim strategies"; shared code expands them to N-D meshes by
 * choosing one candidate per axis). Rules are rows in src/passes/sharding/rules/<family>.ts, the
 * same family names as src/ir/ops.
 *
 * A candidate lists a placement for every input (null for an absent optional input) and every
 * output. `R` everywhere is always valid and is added by the shared code, so rules list only the
 * sharded and partial ways. Shard units in a candidate are RELATIVE factors: all sharded dims of
 * one candidate are split in the same number of blocks, and a dim marked S(d:f) has blocks f times
 * as large as a dim marked S(d') (e.g. Reshape [b,s,h*hd] → [b,s,h,hd] links in S(2:hd) with
 * out S(2)). Absolute units are fixed later by the unit analysis.
 *
 * Partial semantics: P(sum) means the true value is the sum over the axis of the devices' values;
 * a rule may take P inputs only where the op is linear in them (Add of two P, MatMul of P by R,
 * Neg, Transpose, Reshape, ...).
 */
import type { Attrs } from '../../ir/attrs.js';
import type { DType } from '../../ir/dtype.js';
import type { Node, Value } from '../../ir/graph.js';
import type { Placement } from '../../ir/layout.js';
import type { TypeInfo } from '../../ir/registry.js';
import type { Tensor } from '../../ir/tensor.js';

export interface RuleContext {
  node: Node;
  attrs: Attrs;
  /** Input types with static shapes (symbolic dims are bound before sharding); undefined = absent. */
  inputs: (TypeInfo | undefined)[];
  outputs: TypeInfo[];
  /** Value of input i when it is a compile-time constant. */
  constant(i: number): Tensor | undefined;
  /** Size of the mesh axis being considered (rules may skip shards of dims smaller than it). */
  axisSize: number;
}

export interface Candidate {
  inputs: (Placement | null)[];
  outputs: Placement[];
  /**
   * How the node must change to run locally beyond the generic rewrite of shape constants, as a
   * key the lowering understands (e.g. 'masked-gather' for a vocabulary-parallel Gather).
   */
  local?: string;
}

/** What the lowering knows when it rewrites a node for one device. */
export interface LocalizeContext {
  node: Node;
  /** Global input/output types. */
  inputs: (TypeInfo | undefined)[];
  outputs: TypeInfo[];
  /** This device's shapes of the inputs and outputs. */
  localInputShapes: (number[] | undefined)[];
  localOutputShapes: number[][];
  /** This device's block of each input/output dim ({offset,size} per dim). */
  inputRanges: ({ offset: number; size: number }[] | undefined)[];
  outputRanges: { offset: number; size: number }[][];
  /** The candidate chosen for each mesh axis. */
  candidates: ReadonlyMap<string, Candidate>;
  /** Replaces input i by a new constant (e.g. a local shape). */
  setConstantInput(i: number, t: Tensor): void;
  /*
   * Graph edits, for rules that expand the node into several nodes on the device (the
   * 'masked-gather' of a vocabulary-parallel Gather). The rule builds the new nodes itself
   * (`new Node(...)`, which sets each output's producer) and may re-point ctx.node's inputs and
   * outputs; the lowering places the nodes and keeps the device graph topologically ordered.
   */
  /** A fresh value of the device graph: a unique name derived from `hint`, this device's (local) shape. */
  newValue(hint: string, dtype: DType, shape: readonly number[]): Value;
  /** A fresh constant value of the device graph holding `t` (an initializer of the device graph). */
  newConstant(hint: string, t: Tensor): Value;
  /** Inserts nodes just before ctx.node, in the order given. */
  insertBefore(...nodes: Node[]): void;
  /** Inserts nodes just after ctx.node, in the order given. */
  insertAfter(...nodes: Node[]): void;
}

export interface ShardingRule {
  op: string;
  domain?: string;
  candidates(ctx: RuleContext): Candidate[];
  /**
   * Rewrites the node in place for one device (local shape constants, attribute values that
   * encode global sizes, masked lookups). Ops whose meaning does not depend on global sizes omit it.
   */
  localize?(ctx: LocalizeContext): void;
}

export class ShardingRuleRegistry {
  private readonly rules = new Map<string, ShardingRule>();

  register(...rules: ShardingRule[]): this {
    for (const r of rules) {
      const k = `${r.domain ?? ''}::${r.op}`;
      if (this.rules.has(k)) throw new Error(`sharding rule for ${r.op} registered twice`);
      this.rules.set(k, r);
    }
    return this;
  }

  get(op: string, domain = ''): ShardingRule | undefined {
    return this.rules.get(`${domain === 'ai.onnx' ? '' : domain}::${op}`);
  }

  list(): ShardingRule[] {
    // Code-unit order (never the locale's collation: output must not depend on LANG).
    return [...this.rules.values()].sort((a, b) => (a.op < b.op ? -1 : a.op > b.op ? 1 : 0));
  }
}
