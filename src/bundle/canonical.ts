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
 * Whether `v` (an object or array) is already in sortKeys' form: every plain object's own keys in
 * code-unit order with no undefined field, no object of another class, typed array or non-finite
 * number anywhere. A read-only walk with no allocation; it stops at the first thing to change.
 * (for-in lists an object's own keys first, in Object.keys order, so consecutive own keys are compared.)
 */
function isCanonical(v: object): boolean {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'object' ? x !== null && !isCanonical(x) : typeof x === 'number' && !Number.isFinite(x)) return false;
    }
    return true;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if ((proto !== Object.prototype && proto !== null) || ArrayBuffer.isView(v)) return false;
  const src = v as Record<string, unknown>;
  let prev: string | undefined;
  for (const k in src) {
    if (prev !== undefined && !(prev < k)) return false;
    prev = k;
    const x = src[k];
    if (x === undefined) return false;
    if (typeof x === 'object' ? x !== null && !isCanonical(x) : typeof x === 'number' && !Number.isFinite(x)) return false;
  }
  return true;
}

/**
 * `v` with every object's keys sorted and undefined fields dropped. Parts that are already in that
 * form are returned as they are (isCanonical: no copy; most of a large document, e.g.
 * schedule.json, is built with sorted keys), so only what must change is copied. Objects of other
 * classes are always copied into plain ones, as before (JSON.stringify would call a Date's toJSON).
 */
function sortKeys(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && isCanonical(v)) return v;
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

const encoder = new TextEncoder();

/**
 * UTF-8 bytes of `s` (lone surrogates as U+FFFD, as TextEncoder). Large texts (bundle JSON, reports)
 * go through Buffer.from, several times faster than TextEncoder; it allocates a buffer of their own
 * above 4 KiB, returned as a plain Uint8Array view of it.
 */
export function utf8(s: string): Uint8Array {
  if (s.length < 8192) return encoder.encode(s);
  const b = Buffer.from(s, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
