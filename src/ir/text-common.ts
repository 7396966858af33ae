/** Shared by the text printer and parser (text.ts documents the format). */
import { ALL_NUMERIC_DTYPES, type DType } from './dtype.js';
import { DEFAULT_DOMAIN } from './graph.js';
import type { ConstantLocation, LazyTensor, Tensor } from './tensor.js';

export interface PrintOptions {
  /** Constants with more elements print as `<elided hash>` (default 64). */
  maxInlineElements?: number;
}

export interface ParseOptions {
  /** File name for error messages. */
  file?: string;
  /** Loads the data of an `<external ...>` constant; without it, loading one throws a UserError. */
  loadExternal?: (location: Extract<ConstantLocation, { kind: 'external' }>, dtype: DType, shape: readonly number[]) => Tensor;
}

/** Summaries of constants whose data was elided in parsed text (so they print the same again). */
export const elided = new WeakMap<LazyTensor, string>();

export const PLAIN_NAME = /^[A-Za-z0-9_.\-/]+$/;
export const PLAIN_WORD = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const PLAIN_DOMAIN = /^[A-Za-z_][A-Za-z0-9_.]*$/;
export const PLAIN_DIM = /^[A-Za-z_][A-Za-z0-9_.:*-]*$|^\d+\*[A-Za-z_][A-Za-z0-9_.:*-]*$/;
export const KEYWORDS = new Set(['const', 'graph', 'opsets', 'meta', 'none', 'layout', 'tensor']);
export const DTYPES = new Set<string>([...ALL_NUMERIC_DTYPES, 'string']);
export const DEFAULT_OPSETS = JSON.stringify({ [DEFAULT_DOMAIN]: 17 });
