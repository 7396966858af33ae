/** Op family table: matmul. */
import type { OpDef } from '../registry.js';

export const matmulOps: OpDef[] = [];
