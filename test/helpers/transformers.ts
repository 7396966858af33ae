/**
 * The project's example transformers (examples/models/transformers.ts) as imported graphs, and the
 * check shared by the strategy tests: a sharded plan run on the simulated devices equals the
 * unsharded CPU run of the same model.
 */
import { BERT_TINY, GPT_TINY, LLAMA_TINY, type TransformerConfig, bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import type { Graph } from '../../src/ir/graph.js';
import type { OpRegistry } from '../../src/ir/registry.js';
import { importModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import type { DeviceProgram } from '../../src/passes/sharding/lower.js';
import type { ShardPlan } from '../../src/passes/sharding/plan.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { runSpmd } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

export type TransformerKind = 'gpt' | 'bert' | 'llama';
const MAKE = { gpt: gptModel, bert: bertModel, llama: llamaModel };
/** The tiny configuration of each kind. */
export const TRANSFORMER_BASE: Record<TransformerKind, TransformerConfig> = { gpt: GPT_TINY, bert: BERT_TINY, llama: LLAMA_TINY };

/** The tiny transformer of `kind` (with `cfg` overriding its configuration), imported as `<kind>.onnx`. */
export function loadTransformer(kind: TransformerKind, cfg: Partial<TransformerConfig> = {}): Graph {
  return importModel(MAKE[kind]({ ...TRANSFORMER_BASE[kind], ...cfg }).encode(), { file: `${kind}.onnx` }).graph;
}

export interface UnshardedCheck {
  registry: OpRegistry;
  /** Seed of the random inputs. */
  seed: number;
  dims: Record<string, number>;
  /** Absolute tolerance (relative: 1e-5). */
  atol: number;
}

/**
 * Runs `programs` (the lowered `plan`) on the simulated devices and compares every output with the
 * CPU run of `ref` (the unsharded model, run through the default pipeline) on the same random inputs.
 */
export function expectSpmdMatchesUnsharded(ref: Graph, plan: ShardPlan, programs: DeviceProgram[], opts: UnshardedCheck): void {
  const { registry, seed, dims, atol } = opts;
  const feeds = randomInputs(ref, { seed, dims });
  defaultPipeline({ registry, bindings: dims }).run(ref);
  const want = runGraph(ref, feeds, { registry });
  const got = runSpmd(programs, plan.mesh, feeds, { registry, plan });
  expect(want.size).toBeGreaterThan(0);
  for (const [k, t] of want) expect(`${k}: ${compareTensors(got.outputs.get(k)!, t, { rtol: 1e-5, atol }).message}`).toBe(`${k}: `);
}
