/**
 * The extension API re-exported by the package entry (src/index.ts `export * from './api/index.js'`):
 * what library code needs to add passes, strategies, ops and sharding rules, and to compare plans,
 * beyond the pipeline stages src/index.ts already exports. Examples: examples/api/*.ts.
 *
 *   custom passes     Pass, PassResult, definePass, PassManager.insertBefore/After/replace/remove,
 *                     ShardOptions.pipeline (from src/passes via src/index.ts), pinLayout (here)
 *   custom strategies ShardOptions.strategy = an AnnotateFn, a Preset or Presets (CustomStrategy)
 *   custom ops        OpRegistry.register({ op, domain, family, infer, evaluate }) + a ShardingRule
 *                     (ShardingRuleRegistry.register; candidate helpers below)
 */
export {
  pinLayout,
  pinnedSeeds,
  assignCustomStrategy,
  PIN_META,
  PIN_WHY_META,
  type AnnotateFn,
  type CustomStrategy,
} from '../passes/sharding/strategies/custom.js';
export type { AxisSeeds } from '../passes/sharding/strategies/index.js';
export type { Seed } from '../passes/sharding/propagate.js';
export { broadcastShardCandidates, partialCandidate } from '../passes/sharding/rules/common.js';
export { collectiveCounts } from '../passes/sharding/print-plan.js';
export { partitionModelForTarget } from '../bundle/partition.js';
export { loadBundleForRun, type BundleRun } from '../bundle/run.js';
export { summarizePlan, diffPlans, type PlanSummary, type PlanDiff } from './plan-diff.js';
