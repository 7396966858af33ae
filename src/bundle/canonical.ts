/**
 * Byte-stable encodings for bundle files: JSON with every object's keys sorted (code-unit order,
 * not locale order), two-space indented, one trailing newline; and SHA-256 digests.
 */
import { createHash } from 'node:crypto';

/** JSON text with sorted keys at every level (arrays keep their order); `undefined` fields are dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    if (ArrayBuffer.isView(v)) throw new Error('typed arrays have no canonical JSON form');
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort(compareCodeUnits)) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`non-finite number ${v} has no JSON form`);
  return v;
}

/** Plain code-unit order (what `Array.prototype.sort` does without a comparator), as a comparator. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sha256Hex(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
