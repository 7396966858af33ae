/**
 * Op family table: conv. Conv and ConvTranspose live in conv-forward.ts, the pools in
 * conv-pool.ts; window geometry (pads, auto_pad, ceil mode, tap tables) in conv-geometry.ts.
 */
import type { OpDef } from '../registry.js';
import { convForwardOps } from './conv-forward.js';
import { poolOps } from './conv-pool.js';

export const convOps: OpDef[] = [...convForwardOps, ...poolOps];
