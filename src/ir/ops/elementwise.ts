/**
 * Op family table: elementwise. The rows live in elementwise-*.ts by kind (unary maps, binary and
 * variadic broadcasting ops, casts, the rest); this table holds them all.
 */
import type { OpDef } from '../registry.js';
import { binaryOps } from './elementwise-binary.js';
import { castOps } from './elementwise-cast.js';
import { miscOps } from './elementwise-misc.js';
import { unaryOps } from './elementwise-unary.js';

export const elementwiseOps: OpDef[] = [...unaryOps, ...binaryOps, ...castOps, ...miscOps];
