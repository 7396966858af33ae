/**
 * `summa2d`: 2-D SUMMA matmul (van de Geijn & Watts) over a P×Q mesh with the axes `tpr` (grid
 * rows, P) and `tpc` (grid columns, Q), as seeds; propagation and resharding find the rest.
 *
 * Data layout, for C[m, n] = X[m, k] · W[k, n] on the device at grid position (i, j):
 *   - W (every MatMul weight: a constant 2-D input 1 with k ≥ P and n ≥ Q) is stored 2-D sharded,
 *     k over tpr (S(0)) and n over tpc (S(1)): each device holds 1/(P·Q) of it, block W[i, j];
 *   - activations X[.., m, k] have their rows over tpr and k over tpc: block X[i, j]. The graph
 *     inputs are seeded so (rows: dim m, for token ids [.., m] the last dim; k: the last dim, float
 *     inputs only) and so is every MatMul's X on tpr; each MatMul's output C[.., m, n] comes out
 *     rows over tpr and n over tpc, which is the next MatMul's X layout again;
 *   - graph outputs keep their rows split over tpr until the final gather (as `data` does).
 * SUMMA computes C[i, j] = Σ_l X[i, l] · W[l, j]: step l broadcasts X's panel X[i, l] along grid
 * row i (over tpc) and W's panel W[l, j] down grid column j (over tpr). This preset realises the
 * all-gather form of SUMMA (all steps' broadcasts at once): per MatMul, one AllGather on tpc of the
 * activation panel (S(k) → R on tpc) and one AllGather on tpr of the weight panel (S(0) → R on
 * tpr); the product is then local, C[i, j] = X[i, :] · W[:, j], with no reduction. Per axis, the
 * MatMul's candidate is "rows split, W replicated" on tpr and "W column-parallel" on tpc.
 *
 * The weight seeds on tpr carry `use: R` (propagate.ts Seed.use): stored S(0), used gathered. So
 * propagation cannot fall back to contracting over a tpr-sharded k (a partial sum and an
 * all-reduce: megatron's row-parallel form), and every other weight stays used as stored.
 *
 * Two presets, one per axis, are registered under the one strategy name `summa2d` (the preset
 * machinery gives a preset one axis; `assignPresets` takes the named preset's axis, tpr, and then
 * gives tpc to the preset that owns it, the tpc half). Both halves read the same analysis, and
 * each checks that the mesh has both axes, so `summa2d` on a mesh without tpr and tpc (or on a
 * mesh's only axis) is a UserError naming them. The fused QKV projection is unfused first (as for
 * megatron): a column split of the fused weight over tpc would mix q, k and v columns.
 * The other ops (layer norms, attention, embeddings, residuals) take whatever propagation finds
 * cheapest around these seeds.
 */
import { UserError } from '../../../ir/errors.js';
import type { Node, Value } from '../../../ir/graph.js';
import { Replicate, Shard } from '../../../ir/layout.js';
import type { Seed } from '../propagate.js';
import { unfuseSplitProjections } from '../unfuse-qkv.js';
import type { AxisSeeds, Preset, StrategyContext } from './types.js';

export const SUMMA_ROWS = 'tpr';
export const SUMMA_COLS = 'tpc';

interface Linear {
  node: Node;
  weight: Value;
}

const isFloat = (v: Value): boolean => v.dtype === 'float32' || v.dtype === 'float64' || v.dtype === 'float16' || v.dtype === 'bfloat16';

/** MatMuls with a constant 2-D weight of at least P rows and Q columns, in graph order. */
export function summaLinears(ctx: StrategyContext): Linear[] {
  const inputs = new Set(ctx.graph.inputs);
  const p = ctx.mesh.axis(SUMMA_ROWS).size;
  const q = ctx.mesh.axis(SUMMA_COLS).size;
  const out: Linear[] = [];
  for (const n of ctx.graph.nodes) {
    if (n.op !== 'MatMul' || n.domain !== '') continue;
    const w = n.inputs[1];
    const x = n.inputs[0];
    if (!w?.constant || inputs.has(w) || !x || x.constant) continue;
    const shape = w.constant.shape;
    if (shape.length !== 2 || shape[0]! < p || shape[1]! < q) continue;
    out.push({ node: n, weight: w });
  }
  return out;
}

/**
 * The dim of v split over tpr: the rows m of an activation X[.., m, k] (`rank − 2`), or of token ids
 * [.., m] (`rank − 1`, `ids`); when that dim has fewer than p elements, the nearest earlier dim that
 * has p. Preferring m over a leading batch dim leaves the batch to a `data` axis (data+summa2d).
 */
function rowDim(v: Value, p: number, ids: boolean): number | undefined {
  const shape = v.shape ?? [];
  for (let d = shape.length - (ids ? 1 : 2); d >= 0; d--) {
    const n = shape[d];
    if (typeof n === 'number' && n >= p) return d;
  }
  return undefined;
}

function summaSeeds(ctx: StrategyContext, role: 'rows' | 'cols'): AxisSeeds {
  const { graph, mesh, axis } = ctx;
  if (!mesh.hasAxis(SUMMA_ROWS) || !mesh.hasAxis(SUMMA_COLS))
    throw new UserError(
      `strategy summa2d needs a 2-D mesh with axes ${SUMMA_ROWS} (grid rows) and ${SUMMA_COLS} (grid columns), e.g. --mesh ${SUMMA_ROWS}=2,${SUMMA_COLS}=2; the mesh ${mesh} has ${mesh.axisNames().join(', ')}`,
    );
  const p = mesh.axis(SUMMA_ROWS).size;
  const q = mesh.axis(SUMMA_COLS).size;
  const linears = summaLinears(ctx);
  if (!linears.length)
    throw new UserError(
      `strategy summa2d: the model has no MatMul with a constant 2-D weight of at least ${p}×${q} to shard over ${SUMMA_ROWS}=${p} × ${SUMMA_COLS}=${q}`,
    );
  const seeds: AxisSeeds = new Map();
  const seed = (v: Value, s: Seed): void => {
    if (!seeds.has(v)) seeds.set(v, { ...s, why: `summa2d: ${s.why}` });
  };
  const grid = `${SUMMA_ROWS}=${p} × ${SUMMA_COLS}=${q}`;

  for (const { node, weight: w } of linears) {
    const [k, n] = w.constant!.shape as [number, number];
    const x = node.inputs[0]!;
    const d = role === 'rows' ? rowDim(x, p, false) : undefined;
    if (d !== undefined)
      seed(x, { placement: Shard(d), why: `rows (dim ${d}) of ${x.name}, the activation of MatMul ${node.label}, over ${axis.name}` });
    if (role === 'rows')
      seed(w, {
        placement: Shard(0),
        use: Replicate,
        why: `weight ${w.name} [${k}×${n}] stored with its k rows over ${axis.name} (S(0); 1/${p * q} per device on ${grid}); its MatMul all-gathers the row panels along ${axis.name} (SUMMA's broadcast of W's panels down each grid column)`,
      });
    else
      seed(w, {
        placement: Shard(1),
        why: `weight ${w.name} [${k}×${n}] stored with its n columns over ${axis.name} (S(1)); each device computes its block of the output's columns`,
      });
  }

  // Embedding tables (Gather(table [V, h], ids), axis 0): 2-D sharded too; vocabulary-parallel
  // on tpr (the masked lookup's partial sums are reduce-scattered onto the rows), the hidden dim
  // over tpc (the lookup's output comes with k over tpc, the next MatMul's X layout).
  const inputs = new Set(graph.inputs);
  for (const node of graph.nodes) {
    if (node.op !== 'Gather' || node.domain !== '' || node.attrs.int('axis', 0) !== 0) continue;
    const t = node.inputs[0];
    if (!t?.constant || inputs.has(t) || t.constant.shape.length !== 2) continue;
    const [v, h] = t.constant.shape as [number, number];
    if (v < p || h < q) continue;
    if (role === 'rows')
      seed(t, {
        placement: Shard(0),
        why: `embedding table ${t.name} [${v}×${h}] vocabulary-parallel over ${axis.name} (S(0); masked lookup, partial sums)`,
      });
    else seed(t, { placement: Shard(1), why: `embedding table ${t.name} [${v}×${h}] with its hidden dim over ${axis.name} (S(1))` });
  }

  // Activations: rows over tpr, k over tpc, from the graph inputs on.
  const initial = new Set(graph.initializers);
  let rows: { size: number } | undefined;
  for (const v of graph.inputs) {
    if (initial.has(v) || !v.shape?.length) continue;
    const float = isFloat(v);
    if (role === 'rows') {
      const d = rowDim(v, p, !float);
      if (d === undefined) continue;
      rows ??= { size: v.shape[d] as number };
      seed(v, { placement: Shard(d), why: `rows (dim ${d}) of graph input ${v.name} over ${axis.name}` });
    } else if (float && v.shape.length >= 2) {
      const last = v.shape.length - 1;
      const n = v.shape[last];
      if (typeof n !== 'number' || n < q) continue;
      seed(v, {
        placement: Shard(last),
        why: `the k dim (${last}) of graph input ${v.name} over ${axis.name}; a MatMul all-gathers its panels along ${axis.name} (SUMMA's broadcast of X's panels along each grid row)`,
      });
    }
  }
  // Outputs with the same rows keep them split over tpr until the final gather.
  if (role === 'rows' && rows)
    for (const v of graph.outputs) {
      const d = initial.has(v) || seeds.has(v) || (v.shape?.length ?? 0) < 2 ? undefined : rowDim(v, p, false);
      if (d === undefined || v.shape![d] !== rows.size) continue;
      seed(v, { placement: Shard(d), why: `graph output ${v.name} keeps its rows (dim ${d}) over ${axis.name} until the final gather` });
    }
  return seeds;
}

export const summa2dRowsPreset: Preset = {
  name: 'summa2d',
  axis: SUMMA_ROWS,
  prepare(graph) {
    unfuseSplitProjections(graph);
  },
  annotate: (ctx) => summaSeeds(ctx, 'rows'),
};

export const summa2dColsPreset: Preset = {
  name: 'summa2d',
  axis: SUMMA_COLS,
  prepare(graph) {
    unfuseSplitProjections(graph);
  },
  annotate: (ctx) => summaSeeds(ctx, 'cols'),
};
