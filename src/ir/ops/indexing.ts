/** Op family table: indexing. */
import type { OpDef } from '../registry.js';

export const indexingOps: OpDef[] = [];
