/**
 * The core sharding rule registry: one table of rows per op family (the same family names as
 * src/ir/ops). Built explicitly and passed in, like the op registry.
 */
import { ShardingRuleRegistry } from '../rule.js';
import { attentionRules } from './attention.js';
import { elementwiseRules } from './elementwise.js';
import { matmulRules } from './matmul.js';
import { normalizationRules } from './normalization.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape.js';
import { indexingRules } from './indexing.js';
import { convRules } from './conv.js';
import { resizeRules } from './resize.js';

export function createCoreShardingRules(): ShardingRuleRegistry {
  const reg = new ShardingRuleRegistry();
  reg.register(...elementwiseRules);
  reg.register(...matmulRules);
  reg.register(...reduceRules);
  reg.register(...normalizationRules);
  reg.register(...attentionRules);
  // Rules helper B's families (shape, indexing, conv) register below, one line each.
  reg.register(...shapeRules);
  reg.register(...indexingRules);
  reg.register(...convRules);
  reg.register(...resizeRules);
  return reg;
}
