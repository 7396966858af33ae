/**
 * Layer helpers over ModelBuilder for the transformer-shaped example models. Each helper emits
 * plain ONNX ops (no custom domain), so onnxruntime runs the same file as reference.
 */
import { ModelBuilder, prng } from '../../src/onnx/builder.js';
import { Tensor } from '../../src/ir/tensor.js';

export class Layers {
  readonly b: ModelBuilder;
  private readonly rand: () => number;
  readonly opset: number;
  private consts = 0;
  /** When set, weights are declared as external data in this file (nothing generated). */
  private readonly external?: { location: string; offset: number };

  constructor(b: ModelBuilder, seed: number, opset: number, externalLocation?: string) {
    this.b = b;
    this.rand = prng(seed);
    this.opset = opset;
    if (externalLocation) this.external = { location: externalLocation, offset: 0 };
  }

  /** Bytes of external weights declared so far. */
  get externalBytes(): number {
    return this.external?.offset ?? 0;
  }

  /** A weight with uniform values in [-scale, scale) (or an external-data declaration). */
  weight(name: string, shape: number[], scale = 0.1): string {
    if (this.external) {
      const at = this.external.offset;
      this.external.offset += shape.reduce((a, c) => a * c, 1) * 4;
      return this.b.externalInitializer(name, 'float32', shape, this.external.location, at);
    }
    const n = shape.reduce((a, c) => a * c, 1);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (this.rand() * 2 - 1) * scale;
    return this.b.initializer(name, new Tensor('float32', shape, v));
  }

  constF(values: number[], shape: number[] = [values.length]): string {
    return this.b.initializer(`const_${this.consts++}`, Tensor.from('float32', shape, values));
  }

  constI(values: number[], shape: number[] = [values.length]): string {
    return this.b.initializer(`const_${this.consts++}`, Tensor.from('int64', shape, values));
  }

  /** x @ W (+ bias). */
  linear(x: string, prefix: string, inDim: number, outDim: number, bias = true): string {
    const w = this.weight(`${prefix}.weight`, [inDim, outDim], 1 / Math.sqrt(inDim));
    const y = this.b.op('MatMul', [x, w]);
    return bias ? this.b.op('Add', [y, this.weight(`${prefix}.bias`, [outDim], 0.02)]) : y;
  }

  /** Axes of a reduction: attribute before opset 18 (13 for ReduceSum), input after. */
  reduceMean(x: string, axes: number[]): string {
    if (this.opset >= 18) return this.b.op('ReduceMean', [x, this.constI(axes)], { keepdims: 1 });
    return this.b.op('ReduceMean', [x], { axes, keepdims: 1 });
  }

  unsqueeze(x: string, axes: number[]): string {
    if (this.opset >= 13) return this.b.op('Unsqueeze', [x, this.constI(axes)]);
    return this.b.op('Unsqueeze', [x], { axes });
  }

  /** LayerNormalization node (opset 17+) or the decomposed pattern (earlier opsets). */
  layerNorm(x: string, prefix: string, dim: number): string {
    const gamma = this.weight(`${prefix}.gamma`, [dim], 0.1);
    const beta = this.weight(`${prefix}.beta`, [dim], 0.1);
    // gamma around 1
    const g = this.b.op('Add', [gamma, this.constF([1])]);
    if (this.opset >= 17) return this.b.op('LayerNormalization', [x, g, beta], { axis: -1, epsilon: { float: 1e-5 } });
    const mean = this.reduceMean(x, [-1]);
    const d = this.b.op('Sub', [x, mean]);
    const var_ = this.reduceMean(this.b.op('Pow', [d, this.constF([2], [])]), [-1]);
    const std = this.b.op('Sqrt', [this.b.op('Add', [var_, this.constF([1e-5], [])])]);
    return this.b.op('Add', [this.b.op('Mul', [this.b.op('Div', [d, std]), g]), beta]);
  }

  /** RMSNorm, decomposed: x * 1/sqrt(mean(x^2) + eps) * w. */
  rmsNorm(x: string, prefix: string, dim: number): string {
    const w = this.b.op('Add', [this.weight(`${prefix}.weight`, [dim], 0.1), this.constF([1])]);
    const ms = this.reduceMean(this.b.op('Mul', [x, x]), [-1]);
    const inv = this.b.op('Reciprocal', [this.b.op('Sqrt', [this.b.op('Add', [ms, this.constF([1e-6], [])])])]);
    return this.b.op('Mul', [this.b.op('Mul', [x, inv]), w]);
  }

  /** GELU, erf form: 0.5 x (1 + erf(x / sqrt 2)). */
  gelu(x: string): string {
    const e = this.b.op('Erf', [this.b.op('Div', [x, this.constF([Math.SQRT2], [])])]);
    return this.b.op('Mul', [this.b.op('Mul', [x, this.constF([0.5], [])]), this.b.op('Add', [e, this.constF([1], [])])]);
  }

  silu(x: string): string {
    return this.b.op('Mul', [x, this.b.op('Sigmoid', [x])]);
  }

  /** [b, s, h*d] → [b, h, s, d] */
  splitHeads(x: string, heads: number, headDim: number): string {
    const r = this.b.op('Reshape', [x, this.constI([0, 0, heads, headDim])]);
    return this.b.op('Transpose', [r], { perm: [0, 2, 1, 3] });
  }

  /** [b, h, s, d] → [b, s, h*d] */
  mergeHeads(x: string, hidden: number): string {
    const t = this.b.op('Transpose', [x], { perm: [0, 2, 1, 3] });
    return this.b.op('Reshape', [t, this.constI([0, 0, hidden])]);
  }

  /** softmax(q kᵀ / sqrt(d) + mask) v, with an optional additive mask (broadcast to [b,h,s,s]). */
  attention(q: string, k: string, v: string, headDim: number, mask?: string): string {
    const kt = this.b.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    let s = this.b.op('Div', [this.b.op('MatMul', [q, kt]), this.constF([Math.sqrt(headDim)], [])]);
    if (mask) s = this.b.op('Add', [s, mask]);
    const p = this.b.op('Softmax', [s], { axis: -1 });
    return this.b.op('MatMul', [p, v]);
  }

  /** Length of dim `axis` of x as a 1-element int64 tensor. */
  dimOf(x: string, axis: number): string {
    const shape = this.b.op('Shape', [x]);
    return this.b.op('Gather', [shape, this.constI([axis])], { axis: 0 });
  }

  /** Rows [0, n) of a 2-D table, n a 1-element int64 tensor. */
  sliceRows(table: string, n: string, axes: number[] = [0]): string {
    const zeros = this.constI(axes.map(() => 0));
    const ends = axes.length === 1 ? n : this.b.op('Concat', axes.map(() => n), { axis: 0 });
    return this.b.op('Slice', [table, zeros, ends, this.constI(axes)]);
  }

  /** Additive causal mask [s, s]: 0 on and below the diagonal, -1e9 above, for sequence length n. */
  causalMask(maxSeq: number, n: string): string {
    const m = new Float32Array(maxSeq * maxSeq);
    for (let i = 0; i < maxSeq; i++) for (let j = i + 1; j < maxSeq; j++) m[i * maxSeq + j] = -1e9;
    const table = this.b.initializer(`causal_mask`, new Tensor('float32', [maxSeq, maxSeq], m));
    return this.sliceRows(table, n, [0, 1]);
  }
}
