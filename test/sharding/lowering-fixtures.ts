/**
 * Hand-made sharding plans for the lowering and simulator tests: tiny graphs whose values carry
 * layouts and whose collectives are inserted as propagation would, plus the unsharded twin of
 * each graph (same weights, no collectives) as the oracle.
 */
import type { Attr } from '../../src/ir/attrs.js';
import type { DType } from '../../src/ir/dtype.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { type Layout, type Placement, Partial, Replicate, Shard } from '../../src/ir/layout.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { mulberry32 } from '../../src/ir/random.js';
import { inferShapes } from '../../src/passes/shape-inference.js';
import type { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { COLLECTIVE_DOMAIN, type ShardPlan } from '../../src/passes/sharding/plan.js';
import { Tensor } from '../../src/ir/tensor.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomTensor } from '../../src/verify/random-inputs.js';
import { GraphBuilder, int, str } from '../passes/graph-builder.js';

export const registry = createCoreRegistry();
export const TOL = { rtol: 1e-5, atol: 1e-6 };

export const S = Shard;
export const R = Replicate;
export const P = Partial;

/** A layout from `{axis: placement}` (axes absent from the object are replicated). */
export function layout(entries: Record<string, Placement>): Layout {
  return new Map(Object.entries(entries));
}

export function plan(graph: Graph, mesh: DeviceMesh): ShardPlan {
  return { graph, mesh, strategy: 'test', bindings: {}, collectives: [], seeds: new Map() };
}

/** Random tensor with a fixed seed. */
export function rnd(shape: number[], seed: number, dtype: DType = 'float32'): Tensor {
  return randomTensor(dtype, shape, mulberry32(seed));
}

/**
 * A builder that makes the sharded graph and its unsharded twin at once: `op` adds the node to
 * both, `collective` only to the sharded one (the twin maps its output to its input).
 */
export class TwinBuilder {
  readonly sharded = new GraphBuilder('sharded');
  readonly plain = new GraphBuilder('plain');
  private readonly twin = new Map<Value, Value>();
  private readonly layouts = new Map<Value, Layout>();
  private k = 0;

  input(name: string, dtype: DType, shape: number[], l: Layout = new Map()): Value {
    const v = this.sharded.input(name, dtype, shape);
    this.twin.set(v, this.plain.input(name, dtype, shape));
    this.layouts.set(v, l);
    return v;
  }

  weight(name: string, t: Tensor, l: Layout = new Map()): Value {
    const v = this.sharded.const(name, t.dtype, t.shape.slice(), t.toArray());
    this.twin.set(v, this.plain.const(name, t.dtype, t.shape.slice(), t.toArray()));
    this.layouts.set(v, l);
    return v;
  }

  op(op: string, inputs: (Value | null)[], l: Layout, attrs: Parameters<GraphBuilder['op']>[2] = {}, out?: string): Value {
    const name = out ?? `v${this.k++}`;
    const v = this.sharded.op(op, inputs, attrs, name);
    this.twin.set(v, this.plain.op(op, inputs.map((i) => (i ? this.twin.get(i)! : null)), attrs, name));
    this.layouts.set(v, l);
    return v;
  }

  collective(op: string, x: Value, l: Layout, attrs: Record<string, Attr>, out?: string): Value {
    const name = out ?? `c${this.k++}`;
    const v = new Value(name);
    this.sharded.g.addNode(new Node(op, [x], [v], undefined, `${op}_${name}`, COLLECTIVE_DOMAIN));
    const node = v.producer!;
    for (const [k, a] of Object.entries(attrs)) node.attrs.set(k, a);
    this.twin.set(v, this.plain.op('Identity', [this.twin.get(x)!], {}, name));
    this.layouts.set(v, l);
    return v;
  }

  /** Finishes both graphs (shapes inferred, layouts set on the sharded one). */
  build(outputs: Value[]): { graph: Graph; plain: Graph } {
    this.sharded.output(...outputs);
    this.plain.output(...outputs.map((o) => this.twin.get(o)!));
    inferShapes(this.sharded.g, registry);
    inferShapes(this.plain.g, registry);
    for (const [v, l] of this.layouts) if (l.size) v.layout = l;
    return { graph: this.sharded.g, plain: this.plain.g };
  }
}

export const allReduce = (axis: string, reduce = 'sum') => ({ axis: str(axis), reduce: str(reduce) });
export const gather = (axis: string, dim: number, unit = 1) => ({ axis: str(axis), dim: int(dim), unit: int(unit) });

/**
 * Two-layer MLP: x[B,din] → MatMul W1[din,hidden] → +b1 → Relu → MatMul W2[hidden,dout] → +b2.
 * With `tp`: column-parallel W1/b1 (hidden sharded), row-parallel W2 (partial sums), one
 * AllReduce. With `dp`: batch split, weights replicated.
 */
export function mlp(o: { batch: number; din: number; hidden: number; dout: number; tp?: string; dp?: string }): { graph: Graph; plain: Graph } {
  const b = new TwinBuilder();
  const with_ = (tp: Placement | undefined, dp: Placement | undefined): Layout => {
    const m = new Map<string, Placement>();
    if (o.dp && dp) m.set(o.dp, dp);
    if (o.tp && tp) m.set(o.tp, tp);
    return m;
  };
  const x = b.input('x', 'float32', [o.batch, o.din], with_(undefined, S(0)));
  const w1 = b.weight('w1', rnd([o.din, o.hidden], 1), with_(S(1), undefined));
  const b1 = b.weight('b1', rnd([o.hidden], 2), with_(S(0), undefined));
  const w2 = b.weight('w2', rnd([o.hidden, o.dout], 3), with_(S(0), undefined));
  const b2 = b.weight('b2', rnd([o.dout], 4));
  const h = b.op('MatMul', [x, w1], with_(S(1), S(0)), {}, 'h');
  const hb = b.op('Add', [h, b1], with_(S(1), S(0)), {}, 'hb');
  const r = b.op('Relu', [hb], with_(S(1), S(0)), {}, 'r');
  let y = b.op('MatMul', [r, w2], with_(P('sum'), S(0)), {}, 'y_partial');
  if (o.tp) y = b.collective('AllReduce', y, with_(R, S(0)), allReduce(o.tp), 'y');
  const out = b.op('Add', [y, b2], with_(R, S(0)), {}, 'out');
  return b.build([out]);
}

export function expectClose(got: Tensor | undefined, want: Tensor | undefined, tol = TOL): void {
  if (!got || !want) throw new Error(`missing tensor (got ${!!got}, want ${!!want})`);
  const r = compareTensors(got, want, tol);
  if (!r.ok) throw new Error(r.message);
}
