/**
 * Byte-stable encodings for bundle files: JSON with every object's keys sorted (code-unit order,
 * not locale order), two-space indented, one trailing newline; and SHA-256 digests.
 */
import { createHash } from 'node:crypto';

/** JSON text with sorted keys at every level (arrays keep their order); `undefined` fields are dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

/**
 * `v` with every object's keys sorted and undefined fields dropped. Plain objects and arrays that
 * are already in that form are returned as they are (no copy: most of a large document, e.g.
 * schedule.json, is built with sorted keys), so only what must change is copied. Objects of other
 * classes are always copied into plain ones, as before (JSON.stringify would call a Date's toJSON).
 */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      const y = sortKeys(x);
      if (y !== x && !out) out = v.slice(0, i);
      if (out) out.push(y);
    }
    return out ?? v;
  }
  if (v !== null && typeof v === 'object') {
    if (ArrayBuffer.isView(v)) throw new Error('typed arrays have no canonical JSON form');
    const keys = Object.keys(v);
    const proto = Object.getPrototypeOf(v) as unknown;
    let same = proto === Object.prototype || proto === null;
    for (let i = 1; same && i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) same = false;
    const src = v as Record<string, unknown>;
    if (same) {
      const vals: unknown[] = new Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        const x = src[keys[i]!];
        const y = x === undefined ? undefined : sortKeys(x);
        vals[i] = y;
        if (y !== x || x === undefined) same = false;
      }
      if (same) return v;
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) if (src[keys[i]!] !== undefined) out[keys[i]!] = vals[i];
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const k of keys.sort(compareCodeUnits)) {
      const x = src[k];
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
