/**
 * `auto` vs `megatron` (issue 7): on the GPT-like and Llama-like example models at tp=2/4/8 on the
 * 8×H100 NVLink hardware file (and at pp=2×tp=2/4 against the pipeline preset: auto chooses the
 * micro-batches there and runs the search on tp), each plan's communicated bytes per device, its estimated time on the
 * hardware (src/passes/sharding/cost.ts planDeviceCosts: roofline compute + ring collectives, single
 * stream), whether auto chose the same collectives as megatron, and how long planning took (for
 * auto: the presets and the layout search included), and the layout search's MILP (strategies/auto.ts,
 * search/*): its size (variables, constraints over all mesh axes), the HiGHS solver's time, its
 * status, its plan's estimated cost against megatron's (planCost) and whether its collectives are
 * megatron's. Goal: auto's estimated time ≤ megatron's. Figures only. auto runs the layout search
 * (its default) and the bench prints, per case, what the search found by itself (before auto's
 * SEARCH_MARGIN keeps a preset it ties with); --presets-only runs auto without it (`search: false`).
 * The solver's time includes, in the first case, starting its worker and compiling its wasm (Liftoff
 * only at first; search/highs.ts).
 *   npx tsx bench/auto-vs-megatron.ts [--presets-only] [--hardware examples/hardware/h100-8x-nvlink.json] [--dim batch=1,sequence=16] [--runs 3]
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { shardModelFile } from '../src/bundle/partition.js';
import { resolveStrategy } from '../src/bundle/strategy.js';
import { loadHardware, meshWithHardware } from '../src/hardware/hardware.js';
import { COLLECTIVE_DOMAIN } from '../src/ir/graph.js';
import { createCoreRegistry } from '../src/ir/ops/index.js';
import { costModelOf, planDeviceCosts } from '../src/passes/sharding/cost.js';
import { DeviceMesh } from '../src/passes/sharding/mesh.js';
import { DEFAULT_COST } from '../src/passes/sharding/propagate.js';
import { createCoreShardingRules } from '../src/passes/sharding/rules/index.js';
import type { ShardedModel } from '../src/bundle/partition.js';
import type { AutoChoiceDetail } from '../src/passes/sharding/strategies/auto.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** tp meshes against megatron; pipeline meshes (auto: micro-batches chosen, the search on tp) against the pipeline preset. */
const MESHES = ['tp=2', 'tp=4', 'tp=8', 'pp=2,tp=2', 'pp=2,tp=4'];
const MODELS = [
  ['GPT-like', 'examples/gpt-tiny.onnx'],
  ['Llama-like', 'examples/llama-tiny.onnx'],
] as const;

interface Row {
  strategy: string;
  bytes: number;
  ms: number;
  collectives: string;
  planMs: number;
  search?: string;
  microBatches?: number;
}

function main(): void {
  const { values } = parseArgs({
    strict: false,
    options: {
      hardware: { type: 'string', default: join(root, 'examples/hardware/h100-8x-nvlink.json') },
      dim: { type: 'string', default: 'batch=1,sequence=16' },
      runs: { type: 'string', default: '1' },
      'presets-only': { type: 'boolean', default: false },
    },
  });
  const hw = loadHardware(String(values.hardware));
  const bindings = Object.fromEntries(String(values.dim).split(',').map((kv) => kv.split('=')).map(([k, v]) => [k!, Number(v)]));
  const runs = Number(values.runs);
  const registry = createCoreRegistry();
  const rules = createCoreShardingRules();
  const cost = costModelOf(hw, DEFAULT_COST);
  console.log(`hardware ${hw.name}; --dim ${values.dim}; plan time = median of ${runs}`);
  console.log(`${'model'.padEnd(11)} ${'mesh'.padEnd(9)} ${'strategy'.padEnd(34)} ${'comm bytes/dev'.padStart(15)} ${'est. ms'.padStart(10)} ${'plan ms'.padStart(8)}  collectives`);
  let worse = 0;
  for (const [label, file] of MODELS) {
    for (const spec of MESHES) {
      const mesh = meshWithHardware(DeviceMesh.parse(spec), hw);
      // On a pipeline mesh the baseline is the pipeline preset (megatron on tp, its default micro-batches).
      const baseline = spec.startsWith('pp') ? 'pipeline' : 'megatron';
      const plan = (strategy: string): Row | string => {
        const times: number[] = [];
        let m: ShardedModel | undefined;
        try {
          for (let i = 0; i < runs; i++) {
            const t0 = performance.now();
            m = shardModelFile(join(root, file), { mesh, strategy: resolveStrategy(strategy), bindings, registry, rules, cost, search: values['presets-only'] === true ? false : undefined });
            times.push(performance.now() - t0);
          }
        } catch (e) {
          return (e as Error).message.split('\n')[0]!;
        }
        const { plan: p, programs } = m!;
        const byNode = new Map(p.collectives.map((c) => [c.node, c.bytes]));
        const bytes = Math.max(...programs.map((d) => d.graph.nodes.filter((n) => n.domain === COLLECTIVE_DOMAIN).reduce((s, n) => s + (byNode.get(n.name) ?? 0), 0)));
        const kinds = new Map<string, number>();
        for (const c of p.collectives) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
        return {
          strategy: p.strategy,
          bytes,
          ms: planDeviceCosts(programs, mesh, hw, registry).totalMs,
          collectives: [...kinds].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, n]) => `${n}×${k}`).join(' '),
          planMs: times.sort((a, b) => a - b)[times.length >> 1]!,
          search: searchLine(p.autoChoice as AutoChoiceDetail | undefined),
          microBatches: p.pipeline?.microBatches,
        };
      };
      const mg = plan(baseline);
      const au = plan('auto');
      for (const r of [mg, au]) {
        if (typeof r === 'string') {
          console.log(`${label.padEnd(11)} ${spec.padEnd(9)} ${(r === mg ? baseline : 'auto').padEnd(34)} n/a: ${r}`);
          continue;
        }
        console.log(
          `${label.padEnd(11)} ${spec.padEnd(9)} ${r.strategy.padEnd(34)} ${r.bytes.toLocaleString('en-US').padStart(15)} ${r.ms.toFixed(4).padStart(10)} ${r.planMs.toFixed(1).padStart(8)}  ${r.collectives}${r.microBatches ? ` (${r.microBatches} micro-batches)` : ''}`,
        );
      }
      if (typeof au !== 'string' && au.search) console.log(`${''.padEnd(21)} ${au.search}`);
      if (typeof mg !== 'string' && typeof au !== 'string') {
        const ok = au.ms <= mg.ms * (1 + 1e-9);
        if (!ok) worse++;
        console.log(`${''.padEnd(21)} auto/${baseline}: time ${(au.ms / mg.ms).toFixed(3)} (${ok ? `auto ≤ ${baseline}` : 'auto SLOWER'}), bytes ${(au.bytes / Math.max(1, mg.bytes)).toFixed(3)}, same collectives: ${au.collectives === mg.collectives ? 'yes' : 'no'}`);
      }
    }
  }
  console.log(worse ? `auto is slower than its baseline in ${worse} case(s)` : 'goal met: auto ≤ megatron (the pipeline preset on pp meshes) in every case');
}

function searchLine(c: AutoChoiceDetail | undefined): string | undefined {
  const s = c?.search;
  if (!s) return undefined;
  // Megatron's candidate (on a pipeline mesh: the pipeline on pp with megatron on tp).
  const megatron = c.candidates.find((x) => /megatron on tp/.test(x.strategy))?.cost?.total;
  const ratio = s.cost && megatron ? ` cost/megatron ${(s.cost.total / megatron).toFixed(5)}` : '';
  const same = s.sameAs ? `same collectives as ${s.sameAs}` : s.equivalentTo ? `collectives equivalent to ${s.equivalentTo} (same kinds, bytes, order; other tensors)` : 'collectives unlike any preset';
  return `search alone: ${s.status}, ${s.variables} variables, ${s.constraints} constraints, solver ${s.solveMs.toFixed(0)} ms${s.microBatches ? ` (on the micro-batch graph; ${s.microBatches} micro-batches)` : ''};${ratio}; ${same}${s.note ? `; ${s.note}` : ''}`;
}

main();
