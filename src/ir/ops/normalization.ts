/**
 * Op family table: normalization. Softmax, LogSoftmax and Hardmax live in
 * normalization-softmax.ts; the mean/variance normalizations (LayerNormalization,
 * RMSNormalization, BatchNormalization, InstanceNormalization, MeanVarianceNormalization, LRN)
 * in normalization-stats.ts.
 */
import type { OpDef } from '../registry.js';
import { softmaxOps } from './normalization-softmax.js';
import { statsNormOps } from './normalization-stats.js';

export const normalizationOps: OpDef[] = [...softmaxOps, ...statsNormOps];
