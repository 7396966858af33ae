/** Op family table: attention. */
import type { OpDef } from '../registry.js';

export const attentionOps: OpDef[] = [];
