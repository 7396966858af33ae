/**
 * Checks sharding rules against the op's reference evaluation on simulated devices (DTensor's
 * strategy validation): for one node with concrete global inputs and one candidate over a mesh
 * axis of k devices, every device gets its local inputs (S: its block, R: a copy, P(sum): one
 * addend of a seeded random decomposition, P(max|min): the value on one device and lowered/raised
 * values on the others), runs the node (after rule.localize) with the reference evaluate, and the
 * devices' outputs are reassembled per the candidate's output placements (shards placed, partials
 * reduced, replicas compared across devices) and compared with the unsharded evaluation.
 *
 * Shard units in a candidate are relative factors (rule.ts); the check uses them as absolute
 * units (common factor g = 1): S(d:f) splits dim d in blocks of f.
 *
 * Tolerance: rtol 1e-5, atol 1e-6 for float32/float64 outputs (the random P(sum) decomposition
 * changes the summation order); float16/bfloat16 outputs are rounded on every device before the
 * devices' values are combined, so they compare with rtol 2e-2, atol 1e-2 (a few units in the
 * last place of bfloat16); integers and bools exactly. P(sum) addends of float16/bfloat16 inputs
 * are exact in the narrow dtype (2v and -v, or v/2 twice, on two random devices).
 */
import { Attrs } from '../../ir/attrs.js';
import { type DType, isFloat, isSigned } from '../../ir/dtype.js';
import { Node, Value } from '../../ir/graph.js';
import { type Placement, formatPlacement, placementEq } from '../../ir/layout.js';
import { mulberry32 } from '../../ir/random.js';
import type { OpRegistry, TypeInfo } from '../../ir/registry.js';
import { LazyTensor, Tensor } from '../../ir/tensor.js';
import { type Tolerance, compareTensors } from '../../verify/compare.js';
import type { Candidate, LocalizeContext, RuleContext, ShardingRule } from './rule.js';
import { type Range, placeBlock, sliceTensor, splitDim } from './shards.js';

/** The name of the single mesh axis the check simulates (as seen by localize in ctx.candidates). */
export const CHECK_AXIS = 'x';

export interface RuleCheckModel {
  node: Node;
  /** Global input tensors (undefined for absent optional inputs). */
  inputs: (Tensor | undefined)[];
  registry: OpRegistry;
  /** Which inputs count as compile-time constants for the rule (default: none). */
  constants?: readonly boolean[];
}

export interface CheckResult {
  ok: boolean;
  message: string;
}

/** The implicit all-replicated candidate for a node (null for absent inputs). */
export function replicatedCandidate(node: Node): Candidate {
  return {
    inputs: node.inputs.map((v) => (v ? { kind: 'replicate' } : null)),
    outputs: node.outputs.map(() => ({ kind: 'replicate' })),
  };
}

export function candidateEq(a: Candidate, b: Candidate): boolean {
  const eq = (x: Placement | null | undefined, y: Placement | null | undefined): boolean =>
    x === y || (!!x && !!y && placementEq(x, y));
  return (
    a.inputs.length === b.inputs.length &&
    a.outputs.length === b.outputs.length &&
    a.inputs.every((p, i) => eq(p, b.inputs[i])) &&
    a.outputs.every((p, i) => eq(p, b.outputs[i])) &&
    (a.local ?? '') === (b.local ?? '')
  );
}

/**
 * The rule's candidates plus the implicit all-R one (appended last, unless the rule listed it),
 * without duplicates, in the rule's order. No rule: all-R only.
 */
export function expandCandidates(rule: ShardingRule | undefined, ctx: RuleContext): Candidate[] {
  const out: Candidate[] = [];
  for (const c of rule ? rule.candidates(ctx) : []) if (!out.some((o) => candidateEq(o, c))) out.push(c);
  const r = replicatedCandidate(ctx.node);
  if (!out.some((o) => candidateEq(o, r))) out.push(r);
  return out;
}

export function formatCandidate(c: Candidate): string {
  const f = (p: Placement | null): string => (p ? formatPlacement(p) : '-');
  return `[${c.inputs.map(f).join(', ')}] -> [${c.outputs.map(f).join(', ')}]${c.local ? ` (${c.local})` : ''}`;
}

/** A RuleContext over concrete global tensors (inputs marked in `constants` answer constant(i)). */
export function ruleContextFor(
  node: Node,
  inputs: readonly (Tensor | undefined)[],
  outputs: readonly Tensor[],
  axisSize: number,
  constants: readonly boolean[] = [],
): RuleContext {
  return {
    node,
    attrs: node.attrs,
    inputs: inputs.map((t) => (t ? { dtype: t.dtype, shape: t.shape.slice() } : undefined)),
    outputs: outputs.slice(0, node.outputs.length).map((t) => ({ dtype: t.dtype, shape: t.shape.slice() })),
    constant: (i) => (constants[i] ? inputs[i] : undefined),
    axisSize,
  };
}

const FULL_TOL: Tolerance = { rtol: 1e-5, atol: 1e-6 };
const HALF_TOL: Tolerance = { rtol: 2e-2, atol: 1e-2 };
const tolFor = (d: DType): Tolerance => (d === 'float16' || d === 'bfloat16' ? HALF_TOL : FULL_TOL);

/** Checks one candidate of `rule` for `model.node` on an axis of `axisSize` devices. */
export function checkCandidate(model: RuleCheckModel, rule: ShardingRule, candidate: Candidate, axisSize: number, seed = 1): CheckResult {
  const { node, inputs, registry } = model;
  const fail = (message: string): CheckResult => ({ ok: false, message: `${formatCandidate(candidate)} on ${axisSize} devices: ${message}` });
  const def = registry.forNode(node);
  // Rows may compute optional outputs the node does not name (Dropout's mask): keep the named ones.
  const globalOut = def.evaluate({ node, attrs: node.attrs, inputs: inputs.slice() }).slice(0, node.outputs.length);

  // Shape of the candidate itself.
  if (candidate.inputs.length !== node.inputs.length) return fail(`${candidate.inputs.length} input placements for ${node.inputs.length} inputs`);
  if (candidate.outputs.length !== node.outputs.length) return fail(`${candidate.outputs.length} output placements for ${node.outputs.length} outputs`);
  for (const [i, p] of candidate.inputs.entries()) {
    const t = inputs[i];
    if (!t !== !p) return fail(`input ${i} is ${t ? 'present' : 'absent'} but its placement is ${p ? formatPlacement(p) : 'null'}`);
    if (t && p) {
      const bad = placementProblem(p, t.dtype, t.shape);
      if (bad) return fail(`input ${i}: ${bad}`);
    }
  }
  for (const [i, p] of candidate.outputs.entries()) {
    const bad = placementProblem(p, globalOut[i]!.dtype, globalOut[i]!.shape);
    if (bad) return fail(`output ${i}: ${bad}`);
  }
  if (candidate.local && !rule.localize) return fail(`candidate asks for local rewrite '${candidate.local}' but the rule has no localize`);

  const rand = mulberry32(seed * 7919 + axisSize);
  const k = axisSize;
  const inRanges = inputs.map((t, i) => (t ? rangesOf(t.shape, candidate.inputs[i]!, k) : undefined));
  const outRanges = globalOut.map((t, i) => rangesOf(t.shape, candidate.outputs[i]!, k));
  const localInputs: (Tensor | undefined)[][] = inputs.map((t, i) =>
    t ? localParts(t, candidate.inputs[i]!, inRanges[i]!, k, rand) : new Array<undefined>(k).fill(undefined),
  );

  const perDevice: Tensor[][] = [];
  for (let d = 0; d < k; d++) {
    const local = localInputs.map((parts) => parts[d]);
    const lnode = cloneNode(node, local, outRanges.map((r) => r[d]!.map((x) => x.size)), globalOut, model.constants ?? []);
    const env = new Map<Value, Tensor>();
    lnode.inputs.forEach((v, i) => v && env.set(v, local[i]!));
    const finalOuts = lnode.outputs.slice();
    const before: Node[] = [];
    const after: Node[] = [];
    let fresh = 0;
    if (rule.localize) {
      const lctx: LocalizeContext = {
        node: lnode,
        inputs: inputs.map((t) => (t ? ({ dtype: t.dtype, shape: t.shape.slice() } as TypeInfo) : undefined)),
        outputs: globalOut.map((t) => ({ dtype: t.dtype, shape: t.shape.slice() })),
        localInputShapes: local.map((t) => t?.shape.slice()),
        localOutputShapes: outRanges.map((r) => r[d]!.map((x) => x.size)),
        inputRanges: inRanges.map((r) => r?.[d]),
        outputRanges: outRanges.map((r) => r[d]!),
        candidates: new Map([[CHECK_AXIS, candidate]]),
        setConstantInput: (i, t) => {
          const v = new Value(`${lnode.inputs[i]?.name ?? `in${i}`}_local${fresh++}`, t.dtype, t.shape.slice());
          v.constant = LazyTensor.of(t);
          lnode.inputs[i] = v;
        },
        newValue: (hint, dtype, shape) => new Value(`${hint}_${fresh++}`, dtype, shape.slice()),
        newConstant: (hint, t) => {
          const v = new Value(`${hint}_${fresh++}`, t.dtype, t.shape.slice());
          v.constant = LazyTensor.of(t);
          return v;
        },
        insertBefore: (...nodes) => before.push(...nodes),
        insertAfter: (...nodes) => after.push(...nodes),
      };
      rule.localize(lctx);
    }
    let outs: Tensor[];
    try {
      for (const n of [...before, lnode, ...after]) {
        const ins = n.inputs.map((v) => {
          if (!v) return undefined;
          const t = env.get(v) ?? v.constant?.load();
          if (!t) throw new Error(`value ${v.name} of ${n.label} has no producer before it`);
          return t;
        });
        const res = registry.forNode(n).evaluate({ node: n, attrs: n.attrs, inputs: ins });
        n.outputs.forEach((v, i) => env.set(v, res[i]!));
      }
      outs = finalOuts.map((v) => {
        const t = env.get(v);
        if (!t) throw new Error(`output ${v.name} is not computed after localize`);
        return t;
      });
    } catch (e) {
      return fail(`device ${d} failed to evaluate: ${(e as Error).message}`);
    }
    for (const [i, t] of outs.entries()) {
      const want = outRanges[i]?.[d]?.map((r) => r.size);
      if (!want) continue;
      if (t.shape.length !== want.length || t.shape.some((n, j) => n !== want[j]))
        return fail(`device ${d} output ${i} has shape [${t.shape.join(',')}], the placement says [${want.join(',')}]`);
    }
    perDevice.push(outs);
  }

  for (const [i, g] of globalOut.entries()) {
    const p = candidate.outputs[i]!;
    const parts = perDevice.map((o) => o[i]!);
    const tol = tolFor(g.dtype);
    if (p.kind === 'replicate') {
      for (let d = 1; d < k; d++) {
        const r = compareTensors(parts[d]!, parts[0]!, tol);
        if (!r.ok) return fail(`output ${i} is R but device ${d} differs from device 0: ${r.message}`);
      }
    }
    const assembled = assemble(parts, g, p, outRanges[i]!);
    const r = compareTensors(assembled, g, tol);
    if (!r.ok) return fail(`output ${i} (${formatPlacement(p)}): ${r.message}`);
  }
  return { ok: true, message: '' };
}

/** Why a placement cannot describe a tensor of this dtype and shape (undefined when it can). */
function placementProblem(p: Placement, dtype: DType, shape: readonly number[]): string | undefined {
  if (p.kind === 'shard') {
    if (p.dim < 0 || p.dim >= shape.length) return `${formatPlacement(p)} on a rank-${shape.length} tensor`;
    const u = p.unit ?? 1;
    if (shape[p.dim]! % u !== 0) return `${formatPlacement(p)}: dim ${p.dim} of size ${shape[p.dim]} is not a multiple of ${u}`;
  }
  if (p.kind === 'partial') {
    if (dtype === 'string') return `${formatPlacement(p)} on a string tensor`;
    if (p.reduce === 'sum' && dtype === 'bool') return `P(sum) on a bool tensor`;
  }
  return undefined;
}

/** Per device, the block of each dim. */
function rangesOf(shape: readonly number[], p: Placement, k: number): Range[][] {
  const out: Range[][] = [];
  const split = p.kind === 'shard' ? splitDim(shape[p.dim]!, k, p.unit ?? 1) : undefined;
  for (let d = 0; d < k; d++) out.push(shape.map((n, j) => (p.kind === 'shard' && j === p.dim ? split![d]! : { offset: 0, size: n })));
  return out;
}

function intBounds(d: DType): [number, number] {
  switch (d) {
    case 'int8':
      return [-128, 127];
    case 'uint8':
    case 'bool':
      return [0, d === 'bool' ? 1 : 255];
    case 'int16':
      return [-32768, 32767];
    case 'uint16':
      return [0, 65535];
    case 'int32':
      return [-2147483648, 2147483647];
    case 'uint32':
      return [0, 4294967295];
    default:
      return isSigned(d) ? [-(2 ** 53), 2 ** 53] : [0, 2 ** 53];
  }
}

/** Every device's local tensor for a global tensor under a placement. */
function localParts(t: Tensor, p: Placement, ranges: Range[][], k: number, rand: () => number): Tensor[] {
  if (p.kind === 'shard') return ranges.map((r) => sliceTensor(t, r));
  const parts = Array.from({ length: k }, () => sliceTensor(t, ranges[0]!));
  if (p.kind === 'replicate' || k === 1) return parts;
  const n = t.size;
  const x = t.data;
  const float = isFloat(t.dtype);
  if (p.reduce === 'sum') {
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) {
        const keep = Math.floor(rand() * k);
        for (let d = 0; d < k; d++) parts[d]!.data[i] = d === keep ? v : 0;
        continue;
      }
      if (t.dtype === 'float16' || t.dtype === 'bfloat16') {
        // Exact in the narrow dtype: 2v and -v, or v/2 and v/2, on two random devices.
        const a = Math.floor(rand() * k);
        const b = (a + 1 + Math.floor(rand() * (k - 1))) % k;
        const half = roundScalar(t.dtype, v / 2);
        const useHalves = rand() < 0.5 && half * 2 === v;
        for (let d = 0; d < k; d++) parts[d]!.data[i] = 0;
        const twice = roundScalar(t.dtype, 2 * v);
        if (useHalves || !Number.isFinite(twice)) {
          parts[a]!.data[i] = useHalves ? half : v;
          parts[b]!.data[i] = useHalves ? half : 0;
        } else {
          parts[a]!.data[i] = twice;
          parts[b]!.data[i] = -v;
        }
      } else if (float) {
        const scale = 0.5 * Math.abs(v) + 0.25;
        let sum = 0;
        for (let d = 0; d < k - 1; d++) {
          parts[d]!.data[i] = (rand() * 2 - 1) * scale;
          sum += parts[d]!.data[i]!; // the stored (rounded) addend
        }
        parts[k - 1]!.data[i] = v - sum;
      } else {
        // Integer addends with the sign of v: no overflow, exact sum.
        let rest = v;
        for (let d = 0; d < k - 1; d++) {
          const a = Math.trunc(rest * rand());
          parts[d]!.data[i] = a;
          rest -= a;
        }
        parts[k - 1]!.data[i] = rest;
      }
    }
    return parts;
  }
  // max / min: the exact value on one device, lowered (max) or raised (min) values elsewhere.
  const sign = p.reduce === 'max' ? -1 : 1;
  const [lo, hi] = float ? [-Infinity, Infinity] : intBounds(t.dtype);
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const keep = Math.floor(rand() * k);
    for (let d = 0; d < k; d++) {
      if (d === keep || v !== v) continue;
      let w: number;
      if (float) w = Number.isFinite(v) ? v + sign * (Math.abs(v) * rand() + 0.5 + rand()) : sign * Infinity;
      else w = Math.min(hi, Math.max(lo, v + sign * (1 + Math.floor(rand() * 4))));
      parts[d]!.data[i] = w;
    }
  }
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') for (const q of parts) roundInPlace(q);
  return parts;
}

function roundScalar(d: DType, v: number): number {
  return Tensor.from(d, [], [v]).data[0]!;
}

function roundInPlace(t: Tensor): void {
  const r = Tensor.from(t.dtype, t.shape, t.data);
  t.data.set(r.data);
}

/** The devices' outputs → the global tensor under a placement. */
function assemble(parts: Tensor[], g: Tensor, p: Placement, ranges: Range[][]): Tensor {
  if (p.kind === 'replicate') return parts[0]!;
  if (p.kind === 'shard') {
    const out = Tensor.zeros(g.dtype, g.shape);
    parts.forEach((t, d) => placeBlock(out, t, ranges[d]!));
    return out;
  }
  const out = sliceTensor(parts[0]!, parts[0]!.shape.map((n) => ({ offset: 0, size: n })));
  const a = out.data;
  for (let d = 1; d < parts.length; d++) {
    const b = parts[d]!.data;
    for (let i = 0; i < a.length; i++) a[i] = p.reduce === 'sum' ? a[i]! + b[i]! : p.reduce === 'max' ? Math.max(a[i]!, b[i]!) : Math.min(a[i]!, b[i]!);
  }
  if (out.dtype === 'float16' || out.dtype === 'bfloat16') roundInPlace(out);
  return out;
}

/** A copy of the node over fresh values with local shapes (constants carried where marked). */
function cloneNode(node: Node, local: (Tensor | undefined)[], outShapes: number[][], globalOut: Tensor[], constants: readonly boolean[]): Node {
  const ins = node.inputs.map((v, i) => {
    const t = local[i];
    if (!v || !t) return null;
    const nv = new Value(v.name, t.dtype, t.shape.slice());
    if (constants[i]) nv.constant = LazyTensor.of(t);
    return nv;
  });
  const outs = node.outputs.map((v, i) => new Value(v.name, globalOut[i]!.dtype, outShapes[i]!.slice()));
  const attrs: Attrs = node.attrs.clone();
  return new Node(node.op, ins, outs, attrs, node.name, node.domain);
}
