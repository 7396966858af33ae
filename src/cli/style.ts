/**
 * Colour for human output at a terminal, with plain ANSI SGR codes (no dependency). Colour is on
 * only when the output is a TTY, NO_COLOR is unset (https://no-color.org: any non-empty value turns
 * colour off) and the command is not printing --json; FORCE_COLOR=1 turns it on for a non-TTY
 * (e.g. CI logs that render ANSI). Everything else sees the exact uncoloured text, so scripts,
 * pipes, tests and --json documents never contain escape codes.
 *
 * Commands colour whole report lines with `paintReport`: the first line (the heading) bold, the
 * result words green (ok, pass, agree) or red (MISMATCH, fail, DIFFER), `unsupported` yellow.
 */
import type { Output } from './context.js';

const SGR = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39] } as const;
export type StyleName = keyof typeof SGR;

export interface Style {
  readonly enabled: boolean;
  paint(name: StyleName, text: string): string;
  heading(text: string): string;
  ok(text: string): string;
  fail(text: string): string;
  warn(text: string): string;
  dim(text: string): string;
}

export interface StyleOptions {
  /** --json: never colour. */
  json?: boolean;
  /** The environment (default process.env): NO_COLOR, FORCE_COLOR. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Whether text written to `out` should be coloured (see the file header). */
export function colourEnabled(out: Output, opts: StyleOptions = {}): boolean {
  if (opts.json) return false;
  const env = opts.env ?? process.env;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '' && force !== '0' && force !== 'false') return true;
  return out.isTTY === true;
}

/** A style for one output (stdout or stderr). */
export function createStyle(out: Output, opts: StyleOptions = {}): Style {
  const enabled = colourEnabled(out, opts);
  const paint = (name: StyleName, text: string): string => (enabled && text !== '' ? `\x1b[${SGR[name][0]}m${text}\x1b[${SGR[name][1]}m` : text);
  return {
    enabled,
    paint,
    heading: (t) => paint('bold', t),
    ok: (t) => paint('green', t),
    fail: (t) => paint('red', t),
    warn: (t) => paint('yellow', t),
    dim: (t) => paint('dim', t),
  };
}

/** Result words coloured in report lines: [pattern, style]. Each matches a whole word. */
const RESULT_WORDS: readonly [RegExp, StyleName][] = [
  [/^(\s*)(ok|pass)\b/, 'green'],
  [/^(\s*)(MISMATCH|fail|FAIL)\b/, 'red'],
  [/^(\s*)(unsupported)\b/, 'yellow'],
  [/^(\s*outputs )(agree)\b/, 'green'],
  [/^(\s*outputs )(DIFFER)\b/, 'red'],
];

/** Colours a report: the first line bold (when `heading`), result words at line starts by kind. */
export function paintReport(style: Style, lines: readonly string[], opts: { heading?: boolean } = {}): string[] {
  if (!style.enabled) return lines.slice();
  return lines.map((line, i) => {
    if (i === 0 && opts.heading !== false) return style.heading(line);
    for (const [re, name] of RESULT_WORDS) {
      const m = re.exec(line);
      if (m) return m[1]! + style.paint(name, m[2]!) + line.slice(m[0].length);
    }
    return line;
  });
}

/** Removes ANSI SGR codes (for tests and for measuring widths). */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}
