/** Builds IR graphs directly in tests. */
import { type Attr, Attrs } from '../../src/ir/attrs.js';
import type { DType } from '../../src/ir/dtype.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Shape } from '../../src/ir/shape.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';

export const int = (value: number): Attr => ({ kind: 'int', value });
export const float = (value: number): Attr => ({ kind: 'float', value });
export const str = (value: string): Attr => ({ kind: 'string', value });
export const ints = (value: number[]): Attr => ({ kind: 'ints', value });
export const floats = (value: number[]): Attr => ({ kind: 'floats', value });
export const tensorAttr = (t: Tensor): Attr => ({ kind: 'tensor', value: LazyTensor.of(t) });

export class GraphBuilder {
  readonly g: Graph;
  private k = 0;
  constructor(name = 'main') {
    this.g = new Graph(name);
  }

  input(name: string, dtype: DType, shape?: Shape): Value {
    const v = new Value(name, dtype, shape);
    this.g.inputs.push(v);
    return v;
  }

  /** An initializer. */
  const(name: string, dtype: DType, shape: number[], values: number[]): Value {
    const t = Tensor.from(dtype, shape, values);
    const v = new Value(name, dtype, [...shape]);
    v.constant = LazyTensor.of(t);
    this.g.initializers.push(v);
    return v;
  }

  scalar(name: string, value: number, dtype: DType = 'float32'): Value {
    return this.const(name, dtype, [], [value]);
  }

  /** A node with one output named `out` (default: a fresh name); returns the output. */
  op(op: string, inputs: (Value | null)[], attrs: Record<string, Attr> = {}, out?: string): Value {
    return this.ops(op, inputs, attrs, [out ?? `t${this.k++}`])[0]!;
  }

  ops(op: string, inputs: (Value | null)[], attrs: Record<string, Attr>, outs: string[], name = '', domain = ''): Value[] {
    const values = outs.map((n) => new Value(n));
    this.g.addNode(new Node(op, inputs, values, new Attrs(Object.entries(attrs)), name, domain));
    return values;
  }

  output(...vs: Value[]): Graph {
    this.g.outputs.push(...vs);
    return this.g;
  }
}
