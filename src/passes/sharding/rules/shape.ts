/**
 * Sharding rules of the shape family (the same family as src/ir/ops/shape.ts): views and shape
 * queries (shape-view.ts), element movement and padding (shape-move.ts).
 */
import type { ShardingRule } from '../rule.js';
import { moveRules } from './shape-move.js';
import { viewRules } from './shape-view.js';

export const shapeRules: ShardingRule[] = [...viewRules, ...moveRules];
