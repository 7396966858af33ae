/**
 * Op family table: shape / data movement. The rows live in shape-*.ts by kind:
 * views and shape queries (shape-view.ts), element movement (shape-move.ts), padding and block
 * rearrangement (shape-pad.ts), tensor constructors (shape-constant.ts). Movement ops do no
 * arithmetic: their flops are 0 (the cost model counts the bytes they move).
 */
import type { OpDef } from '../registry.js';
import { constantOps } from './shape-constant.js';
import { moveOps } from './shape-move.js';
import { padOps } from './shape-pad.js';
import { viewOps } from './shape-view.js';

export const shapeOps: OpDef[] = [...viewOps, ...moveOps, ...padOps, ...constantOps];
