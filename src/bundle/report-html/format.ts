/**
 * Escaping and number formatting for report.html. Every name that reaches the page (node, value,
 * model, reason) goes through `esc` (text and attribute values alike), so a hostile ONNX name
 * cannot inject markup. Numbers are formatted without the locale (the same bytes on every machine).
 */

/** Escapes &, <, >, " and ' as numeric character references (safe in text and quoted attributes). */
export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An integer with thin-space-free comma grouping: 1234567 → "1,234,567" (no locale). */
export function int(n: number): string {
  const s = Math.round(n).toString();
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Bytes in binary units with one decimal: 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Flops with an SI prefix: 2.5e9 → "2.50 G". */
export function si(n: number): string {
  const prefixes = ['', 'k', 'M', 'G', 'T', 'P'];
  let v = n;
  let p = 0;
  while (Math.abs(v) >= 1000 && p < prefixes.length - 1) {
    v /= 1000;
    p++;
  }
  return p === 0 ? `${Math.round(v)}` : `${v.toFixed(2)} ${prefixes[p]}`;
}

/** A coordinate for SVG: one decimal, no "-0". */
export function px(n: number): string {
  const s = (Math.round(n * 10) / 10).toFixed(1);
  return s === '-0.0' ? '0.0' : s;
}

/** Milliseconds with three decimals. */
export const ms = (n: number): string => n.toFixed(3);

/** Cuts a label to `max` characters with an ellipsis (the full text goes into the hover title). */
export const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);
