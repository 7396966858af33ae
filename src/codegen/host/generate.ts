/**
 * The host program as a readable TypeScript module (a bundle's device-<r>/host.ts) and its
 * JavaScript (host.js): a `buffers` table (HostBuffer ids by the IR value they hold), a `kernels`
 * table (kernel indices, the order of kernels.wgsl), and `run(rt)`, which makes exactly the
 * program's HostRuntime calls in order — one statement per step, under a comment naming its node
 * and op. Running it on a recording runtime gives back `program.steps`
 * (test/codegen/host-generate.test.ts checks that deep-equal).
 *
 * Both texts are printed directly from one list of statements (`hostModuleParts`): the module is
 * straight-line code, so a printer with two layouts (TypeScript: 2-space indent, blank lines
 * between groups, `as const` and the type-only import; JavaScript: what TypeScript's emit gives
 * for it — 4-space indent, no blank lines, types erased) is all it needs. It used to be built with
 * ts-morph and emitted by the TypeScript compiler, which cost ~0.9 s per partition (loading the
 * compiler alone is half a second) for text a printer writes in a millisecond. The tests keep the
 * compiler as the judge: host.js must equal `ts.transpileModule(host.ts)` byte for byte, host.ts
 * must parse and type-check against the HostRuntime types, and the text is pinned by a golden
 * file. The text depends only on the program (no timestamps, no paths). Model names reach it only
 * as identifiers from src/codegen/names.ts or through `commentSafe`/`stringLiteral`, so no name
 * (`*\/`, quotes, newlines, U+2028, keywords, `__proto__`) can end a comment or string, inject
 * code or make two table entries collide.
 */
import { commentSafe, IdentifierTable, stringLiteral } from '../names.js';
import type { CollectiveStep, DispatchStep, HostBuffer, HostProgram } from './program.js';

export interface HostModuleInfo {
  /** The mesh spec (`tp=2`). */
  mesh: string;
  device: number;
  coords: number[];
  /** Where the kernels live, relative to the module (`kernels.wgsl`). */
  kernelsFile: string;
}

/** A generated host module's two texts. */
export interface HostModuleText {
  /** host.ts: the readable TypeScript module. */
  ts: string;
  /** host.js: its JavaScript (ES2022 module, no imports). */
  js: string;
}

/** One exported `const` table: `{ key: value, // comment ... }`. */
interface Table {
  doc: string;
  name: string;
  rows: [string, number, string][];
}

/** The module's content, laid out by `print` for either language. */
interface HostModuleParts {
  header: string;
  targetDoc: string;
  target: string;
  tables: Table[];
  runDoc: string;
  /** Statement groups of `run` (a comment line then its statements), separated by blank lines in host.ts. */
  groups: string[][];
}

/** The TypeScript source of one device's host module. */
export function generateHostModule(p: HostProgram, info: HostModuleInfo): string {
  return print(hostModuleParts(p, info), 'ts');
}

/** Both texts of one device's host module (host.ts and host.js), from one pass over the program. */
export function generateHostModules(p: HostProgram, info: HostModuleInfo): HostModuleText {
  const parts = hostModuleParts(p, info);
  return { ts: print(parts, 'ts'), js: print(parts, 'js') };
}

function hostModuleParts(p: HostProgram, info: HostModuleInfo): HostModuleParts {
  const bufferIds = bufferIdentifiers(p.buffers);
  const kernelIds = kernelIdentifiers(p);
  const byId = new Map(p.buffers.map((b, i) => [b.id, bufferIds[i]!]));
  const buffer = (id: number, step: string): string => {
    const name = byId.get(id);
    if (name === undefined) throw new Error(`host program step ${step} uses buffer ${id}, which the program does not declare`);
    return `buffers.${name}`;
  };
  const groups: string[][] = [];
  let last: string | undefined;
  for (const [i, s] of p.steps.entries()) {
    if (s.node !== last || i === 0) {
      groups.push([`// ${commentSafe(s.node)} (${/^[A-Za-z0-9_.]+$/.test(s.op) ? s.op : commentSafe(s.op)})`]);
      last = s.node;
    }
    const where = `${i} (${JSON.stringify(s.node)})`;
    const statement =
      s.kind === 'dispatch'
        ? `rt.dispatch(${dispatchLiteral(s, p, kernelIds, (id) => buffer(id, where), where)});`
        : `await rt.collective(${collectiveLiteral(s, (id) => buffer(id, where))});`;
    groups[groups.length - 1]!.push(statement);
  }
  const collectives = p.steps.filter((s) => s.kind === 'collective').length;
  return {
    header: header(p, info),
    targetDoc: 'What this module was generated for.',
    target: `{ device: ${info.device}, coords: ${literal(info.coords)}, mesh: ${stringLiteral(info.mesh)}, kernels: ${stringLiteral(info.kernelsFile)} }`,
    tables: [
      {
        doc: 'HostBuffer ids by the IR value each holds (role, element type × length, original name).',
        name: 'buffers',
        rows: p.buffers.map((b, i) => [bufferIds[i]!, b.id, `${b.role} ${b.type}×${b.length} ${b.value === '' ? 'lookup table' : commentSafe(b.value)}`]),
      },
      { doc: `Kernel indices: kernel i is section i of ${commentSafe(info.kernelsFile)}.`, name: 'kernels', rows: p.kernels.map((k, i) => [kernelIds[i]!, i, commentSafe(k.name)]) },
    ],
    runDoc: `Runs device ${info.device}'s program: ${p.steps.length} steps, ${collectives} of them collective.`,
    groups,
  };
}

/**
 * The module's text. 'ts': the layout TypeScript's formatter gives the module (2-space indent, a
 * blank line between top-level statements and between step groups). 'js': the layout of
 * TypeScript's ES2022 emit of that module (4-space indent, blank lines and types dropped: the
 * type-only import, `as const`, the parameter and return types).
 */
function print(m: HostModuleParts, lang: 'ts' | 'js'): string {
  const ts = lang === 'ts';
  const indent = ts ? '  ' : '    ';
  const asConst = ts ? ' as const' : '';
  const out: string[] = [m.header, ''];
  if (ts) out.push('import type { HostRuntime } from "shardc";', '');
  const top = (lines: string[]): void => {
    out.push(...lines);
    if (ts) out.push('');
  };
  top([`/** ${m.targetDoc} */`, `export const target = ${m.target}${asConst};`]);
  for (const t of m.tables) {
    const body = t.rows.length === 0 ? [`export const ${t.name} = {}${asConst};`] : [`export const ${t.name} = {`, ...t.rows.map(([k, v, c]) => `${indent}${k}: ${v}, // ${c}`), `}${asConst};`];
    top([`/** ${t.doc} */`, ...body]);
  }
  const signature = ts ? 'export async function run(rt: HostRuntime): Promise<void> {' : 'export async function run(rt) {';
  const body: string[] = [];
  m.groups.forEach((g, i) => {
    if (ts && i > 0) body.push('');
    body.push(...g.map((l) => indent + l));
  });
  out.push(`/** ${m.runDoc} */`, signature, ...body, '}', '');
  if (!ts) out.splice(1, 1); // emit keeps the header comment but not the blank line after it
  return out.join('\n');
}

function header(p: HostProgram, info: HostModuleInfo): string {
  const kernels = commentSafe(info.kernelsFile);
  return [
    '/**',
    ` * shardc host program for device ${info.device} (coordinates ${info.coords.join(',')}) of mesh ${commentSafe(info.mesh)}.`,
    ' *',
    ` * Generated by shardc (do not edit; partition the model again). \`run\` makes exactly the calls of`,
    ' * the device\'s host program on a HostRuntime, in order: kernel dispatches (an index into',
    ` * ${kernels}, its i32 parameters and its buffers) and collectives. Buffers are HostBuffer ids;`,
    ` * the runtime owns the memory (${p.buffers.length} buffers in ${p.slots.length} slots).`,
    ' */',
  ].join('\n');
}

/** One identifier per kernel (from its name, unique; kernels.wgsl uses the same ones). */
export function kernelIdentifiers(p: HostProgram): string[] {
  return uniqueIdentifiers(p.kernels.map((k) => k.name), 'k');
}

/** One identifier per buffer: its value's name (lookup tables: `table`), unique among buffers. */
function bufferIdentifiers(buffers: readonly HostBuffer[]): string[] {
  return uniqueIdentifiers(buffers.map((b) => (b.value === '' ? 'table' : b.value)), 'v');
}

/** Identifiers for names that may repeat (each entry gets its own identifier). */
function uniqueIdentifiers(names: readonly string[], fallback: string): string[] {
  const ids = new IdentifierTable([], fallback);
  const seen = new Set<string>();
  return names.map((name, i) => {
    let key = name;
    for (let k = 2; seen.has(key); k++) key = `${name}\u0000${i}\u0000${k}`;
    seen.add(key);
    return ids.id(key);
  });
}

function dispatchLiteral(s: DispatchStep, p: HostProgram, kernelIds: string[], buffer: (id: number) => string, where: string): string {
  const kernel = kernelIds[s.kernel];
  if (!Number.isInteger(s.kernel) || kernel === undefined) throw new Error(`host program step ${where} dispatches kernel ${s.kernel} of ${p.kernels.length}`);
  const bindings = Object.entries(s.bindings).map(([k, id]) => `${key(k)}: ${buffer(id)}`);
  return `{ kind: "dispatch", node: ${stringLiteral(s.node)}, op: ${stringLiteral(s.op)}, kernel: kernels.${kernel}, params: ${literal(s.params)}, bindings: ${braces(bindings)} }`;
}

function collectiveLiteral(s: CollectiveStep, buffer: (id: number) => string): string {
  const fields = [`kind: "collective"`, `node: ${stringLiteral(s.node)}`, `op: ${stringLiteral(s.op)}`];
  if (s.axis !== undefined) fields.push(`axis: ${stringLiteral(s.axis)}`);
  fields.push(`group: ${literal(s.group)}`, `attributes: ${literal(s.attributes)}`);
  if (s.input !== undefined) fields.push(`input: ${buffer(s.input)}`);
  fields.push(`output: ${buffer(s.output)}`, `dtype: ${stringLiteral(s.dtype)}`);
  if (s.inputShape !== undefined) fields.push(`inputShape: ${literal(s.inputShape)}`);
  fields.push(`outputShape: ${literal(s.outputShape)}`);
  return braces(fields);
}

const braces = (fields: string[]): string => (fields.length ? `{ ${fields.join(', ')} }` : '{}');

/**
 * An object key: a plain identifier as is, anything else as a computed string key (`["a-b"]`), so
 * `__proto__` becomes an own property rather than setting the prototype.
 */
function key(k: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) && k !== '__proto__' ? k : `[${stringLiteral(k)}]`;
}

/** A JavaScript literal for JSON-like data (numbers exact, including -0, NaN and ±Infinity). */
function literal(v: unknown): string {
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return '-0';
    if (Number.isNaN(v)) return 'NaN';
    if (v === Infinity) return 'Infinity';
    if (v === -Infinity) return '-Infinity';
    return String(v);
  }
  if (typeof v === 'string') return stringLiteral(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
  if (v !== null && typeof v === 'object') return braces(Object.entries(v).map(([k, x]) => `${key(k)}: ${literal(x)}`));
  throw new Error(`host program holds a value with no literal form: ${String(v)}`);
}
