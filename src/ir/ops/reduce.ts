/** Op family table: reduce. */
import type { OpDef } from '../registry.js';

export const reduceOps: OpDef[] = [];
