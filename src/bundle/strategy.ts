/**
 * `--strategy`: a preset name (DESIGN.md "Strategies") or the path of a JSON spec file. Checked
 * before anything is loaded, so an unknown name fails fast and writes nothing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../ir/errors.js';
import { sha256Hex } from './canonical.js';

/** Strategy presets (DESIGN.md); anything else must be a spec file. */
export const STRATEGIES = ['megatron', 'sequence', 'summa2d', 'expert', 'pipeline', 'data', 'auto'] as const;

export interface StrategyChoice {
  /** What shardGraph gets as `strategy`. */
  strategy: string;
  specFile?: string;
  /** As recorded in the bundle: the preset, or `spec:<file name>`. */
  recorded: string;
  spec?: { file: string; sha256: string };
}

/** A preset name (or presets joined by `+`, one per mesh axis: `megatron+data`), or a path to a JSON spec file; anything else is a user error. */
export function resolveStrategy(s: string): StrategyChoice {
  const parts = s.split('+').map((x) => x.trim());
  if (parts.every((x) => (STRATEGIES as readonly string[]).includes(x))) return { strategy: s, recorded: parts.join('+') };
  const looksLikeFile = s.endsWith('.json') || s.includes('/') || s.includes('\\');
  if (existsSync(s) && statSync(s).isFile()) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(s);
    } catch {
      throw new UserError('cannot read the strategy spec file', { file: s });
    }
    return { strategy: 'spec', specFile: s, recorded: `spec:${basename(s)}`, spec: { file: basename(s), sha256: sha256Hex(bytes) } };
  }
  if (looksLikeFile) throw new UserError('strategy spec file not found', { file: s });
  throw new UserError(`unknown strategy ${JSON.stringify(s)} (expected one of ${STRATEGIES.join(', ')}, several joined by +, or a spec .json file)`);
}
