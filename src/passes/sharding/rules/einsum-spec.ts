/**
 * Matmul-like sharding candidates generated from einsum strings (DTensor's `"mk,kn->mn"`
 * generator), shared by MatMul, Gemm, Einsum and MatMulInteger:
 *
 *   - a label kept in the output (batch, m, n) shards every operand that has it at full size and
 *     the output on its position; an operand that broadcasts it (size 1) or lacks it stays R;
 *   - a contracted label (k, or a label summed away) shards every operand that has it at full
 *     size and leaves the output P(sum): each device sums over its block of k;
 *   - `linear`: the op is linear in each operand separately, so one operand P(sum) with the
 *     others R gives P(sum).
 * Labels repeated inside one operand (diagonals, traces) are never sharded. Candidates come in a
 * stable order: labels in order of first appearance, then the linear ones by operand.
 */
import type { Placement } from '../../../ir/layout.js';
import { type EinsumSpec, parseEinsum } from '../../../ir/ops/einsum.js';
import { P, R, S } from './common.js';

export type { EinsumSpec };

export interface EinsumCandidate {
  inputs: Placement[];
  output: Placement;
}

/** Parses an einsum string for operands of the given ranks (ellipsis and implicit output as ONNX Einsum). */
export function einsumSpec(equation: string, ranks: readonly number[]): EinsumSpec {
  return parseEinsum(equation, ranks, `einsum '${equation}'`);
}

/**
 * The einsum string of ONNX MatMul for operand ranks ra, rb (numpy matmul: 1-D operands get a
 * dim prepended/appended and removed again; batch dims broadcast right-aligned).
 */
export function matmulEquation(ra: number, rb: number): string {
  const batch = Math.max(ra, rb) - 2;
  const B = 'abcdefghij'.slice(0, Math.max(0, batch));
  const bOf = (r: number): string => B.slice(B.length - Math.max(0, r - 2));
  if (ra === 1 && rb === 1) return 'k,k->';
  if (ra === 1) return `k,${bOf(rb)}kn->${bOf(rb)}n`;
  if (rb === 1) return `${bOf(ra)}mk,k->${bOf(ra)}m`;
  return `${bOf(ra)}mk,${bOf(rb)}kn->${B}mn`;
}

/** Candidates of an einsum over operands of the given static shapes, on an axis of `axisSize`. */
export function einsumCandidates(spec: EinsumSpec, shapes: readonly (readonly number[])[], axisSize: number, opts: { linear: boolean }): EinsumCandidate[] {
  const sizes = new Array<number>(spec.names.length).fill(1);
  spec.inputs.forEach((labels, k) => labels.forEach((l, d) => (sizes[l] = Math.max(sizes[l]!, shapes[k]![d]!))));
  const repeated = new Set<number>();
  for (const labels of spec.inputs) labels.forEach((l, d) => labels.indexOf(l) !== d && repeated.add(l));

  const order: number[] = [];
  for (const l of [...spec.output, ...spec.inputs.flat()]) if (!order.includes(l)) order.push(l);

  const out: EinsumCandidate[] = [];
  for (const l of order) {
    if (repeated.has(l) || sizes[l]! < axisSize || axisSize < 2) continue;
    const inputs = spec.inputs.map((labels, k) => {
      const d = labels.indexOf(l);
      return d >= 0 && shapes[k]![d] === sizes[l] ? S(d) : R;
    });
    const pos = spec.output.indexOf(l);
    out.push({ inputs, output: pos >= 0 ? S(pos) : P('sum') });
  }
  if (opts.linear) for (let k = 0; k < spec.inputs.length; k++) out.push({ inputs: spec.inputs.map((_, j) => (j === k ? P('sum') : R)), output: P('sum') });
  return out;
}
