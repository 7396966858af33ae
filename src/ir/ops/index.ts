/** The core op registry: every family table, registered explicitly. */
import { OpRegistry } from '../registry.js';
import { elementwiseOps } from './elementwise.js';
import { matmulOps } from './matmul.js';
import { reduceOps } from './reduce.js';
import { shapeOps } from './shape.js';
import { indexingOps } from './indexing.js';
import { normalizationOps } from './normalization.js';
import { convOps } from './conv.js';
import { resizeOps } from './resize.js';
import { attentionOps } from './attention.js';
import { collectiveOps } from './collective.js';

export function createCoreRegistry(): OpRegistry {
  return new OpRegistry().register(
    ...elementwiseOps,
    ...matmulOps,
    ...reduceOps,
    ...shapeOps,
    ...indexingOps,
    ...normalizationOps,
    ...convOps,
    ...resizeOps,
    ...attentionOps,
    ...collectiveOps,
  );
}
