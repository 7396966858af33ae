/**
 * Op family table: indexing (Gather/Scatter family, OneHot, EyeLike, Trilu, CumSum, TopK).
 * The rows live in gather-scatter.ts and indexing-misc.ts; this file is the table.
 */
import type { OpDef } from '../registry.js';
import { gatherScatterOps } from './gather-scatter.js';
import { indexingMiscOps } from './indexing-misc.js';

export const indexingOps: OpDef[] = [...gatherScatterOps, ...indexingMiscOps];
