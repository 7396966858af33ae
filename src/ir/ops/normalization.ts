/** Op family table: normalization. */
import type { OpDef } from '../registry.js';

export const normalizationOps: OpDef[] = [];
