/** Op family table: conv. */
import type { OpDef } from '../registry.js';

export const convOps: OpDef[] = [];
