/**
 * The host program as a readable TypeScript module (a bundle's device-<r>/host.ts): a `buffers`
 * table (HostBuffer ids by the IR value they hold), a `kernels` table (kernel indices, the order of
 * kernels.wgsl), and `run(rt)`, which makes exactly the program's HostRuntime calls in order — one
 * statement per step, under a comment naming its node and op. Running it on a recording runtime
 * gives back `program.steps` (test/codegen/host-generate.test.ts checks that deep-equal).
 *
 * The module is built with ts-morph on an in-memory file system and formatted by the TypeScript
 * formatter, so the text depends only on the program (no timestamps, no paths). Model names reach
 * the text only as identifiers from src/codegen/names.ts or through `commentSafe`/`stringLiteral`,
 * so no name (`*\/`, quotes, newlines, U+2028, keywords, `__proto__`) can end a comment or string,
 * inject code or make two table entries collide. `emitHostJs` gives the module's JavaScript
 * (ES2022, the type-only import erased, so host.js imports nothing).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as TsMorph from 'ts-morph';
import type { ts as TsNamespace } from 'ts-morph';
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

/**
 * ts-morph (with the TypeScript compiler inside it: about half a second to load) is loaded on the
 * first host module generated, not when this module is imported: `partition --no-weights` and
 * every command that writes no host.ts never pay for it. Loaded synchronously with Node's require
 * (ts-morph is CommonJS): jest runs the sources as CommonJS (`require` exists); as ESM, a require
 * is made for this module's own file, read from a stack frame (import.meta would not parse under
 * jest's CommonJS transform).
 */
let loaded: typeof TsMorph | undefined;
function tsMorph(): typeof TsMorph {
  if (!loaded) {
    const req = typeof require === 'function' ? require : createRequire(thisFile());
    loaded = req('ts-morph') as typeof TsMorph;
  }
  return loaded;
}

function thisFile(): string {
  const frame = (new Error().stack ?? '').split('\n').find((l) => /generate\.(js|ts)/.test(l));
  const m = frame && /(file:\/\/[^\s)]+?|\/[^\s)]+?)(:\d+)+\)?$/.exec(frame.trim());
  if (!m) return `${process.cwd()}/`;
  return m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!;
}

function formatSettings(): TsNamespace.FormatCodeSettings {
  const { ts } = tsMorph();
  return {
    indentSize: 2,
    tabSize: 2,
    convertTabsToSpaces: true,
    newLineCharacter: '\n',
    semicolons: ts.SemicolonPreference.Insert,
    insertSpaceAfterOpeningAndBeforeClosingNonemptyBraces: true,
  };
}

/** The TypeScript source of one device's host module. */
export function generateHostModule(p: HostProgram, info: HostModuleInfo): string {
  const bufferIds = bufferIdentifiers(p.buffers);
  const kernelIds = kernelIdentifiers(p);

  const { Project, VariableDeclarationKind } = tsMorph();
  const project = new Project({ useInMemoryFileSystem: true, compilerOptions: compilerOptions() });
  const sf = project.createSourceFile('host.ts', '');
  sf.addImportDeclaration({ isTypeOnly: true, moduleSpecifier: 'shardc', namedImports: ['HostRuntime'] });

  sf.addVariableStatement({
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['What this module was generated for.'],
    declarations: [
      {
        name: 'target',
        initializer: `{ device: ${info.device}, coords: ${literal(info.coords)}, mesh: ${stringLiteral(info.mesh)}, kernels: ${stringLiteral(info.kernelsFile)} } as const`,
      },
    ],
  });
  sf.addVariableStatement({
    leadingTrivia: '\n',
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: ['HostBuffer ids by the IR value each holds (role, element type × length, original name).'],
    declarations: [{ name: 'buffers', initializer: table(p.buffers.map((b, i) => [bufferIds[i]!, b.id, `${b.role} ${b.type}×${b.length} ${b.value === '' ? 'lookup table' : commentSafe(b.value)}`])) }],
  });
  sf.addVariableStatement({
    leadingTrivia: '\n',
    isExported: true,
    declarationKind: VariableDeclarationKind.Const,
    docs: [`Kernel indices: kernel i is section i of ${commentSafe(info.kernelsFile)}.`],
    declarations: [{ name: 'kernels', initializer: table(p.kernels.map((k, i) => [kernelIds[i]!, i, commentSafe(k.name)])) }],
  });

  const byId = new Map(p.buffers.map((b, i) => [b.id, bufferIds[i]!]));
  const buffer = (id: number, step: string): string => {
    const name = byId.get(id);
    if (name === undefined) throw new Error(`host program step ${step} uses buffer ${id}, which the program does not declare`);
    return `buffers.${name}`;
  };
  const body: string[] = [];
  let last: string | undefined;
  for (const [i, s] of p.steps.entries()) {
    if (s.node !== last || i === 0) {
      if (i > 0) body.push('');
      body.push(`// ${commentSafe(s.node)} (${/^[A-Za-z0-9_.]+$/.test(s.op) ? s.op : commentSafe(s.op)})`);
      last = s.node;
    }
    const where = `${i} (${JSON.stringify(s.node)})`;
    if (s.kind === 'dispatch') body.push(`rt.dispatch(${dispatchLiteral(s, p, kernelIds, (id) => buffer(id, where), where)});`);
    else body.push(`await rt.collective(${collectiveLiteral(s, (id) => buffer(id, where))});`);
  }
  const collectives = p.steps.filter((s) => s.kind === 'collective').length;
  sf.addFunction({
    isExported: true,
    isAsync: true,
    name: 'run',
    docs: [`Runs device ${info.device}'s program: ${p.steps.length} steps, ${collectives} of them collective.`],
    parameters: [{ name: 'rt', type: 'HostRuntime' }],
    returnType: 'Promise<void>',
    statements: body.join('\n'),
  });
  // The header goes in last, followed by a blank line: a detached comment, which emit keeps.
  sf.insertText(0, header(p, info));
  sf.formatText(formatSettings());
  const text = sf.getFullText();
  const bad = project.getProgram().compilerObject.getSyntacticDiagnostics(sf.compilerNode);
  if (bad.length) throw new Error(`generated host module does not parse: ${tsMorph().ts.flattenDiagnosticMessageText(bad[0]!.messageText, '\n')}`);
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** The JavaScript of a generated host module (ES2022 module; no imports remain). */
export function emitHostJs(tsSource: string): string {
  // One self-contained module: TypeScript's single-file transpiler gives the same JavaScript as a
  // project emit (checked) at a fraction of the cost, with its syntax diagnostics.
  const { ts } = tsMorph();
  const out = ts.transpileModule(tsSource, { compilerOptions: compilerOptions(), fileName: 'host.ts', reportDiagnostics: true });
  const bad = out.diagnostics ?? [];
  if (bad.length) throw new Error(`host module does not parse: ${ts.flattenDiagnosticMessageText(bad[0]!.messageText, '\n')}`);
  return out.outputText;
}

function compilerOptions(): TsNamespace.CompilerOptions {
  const { ts } = tsMorph();
  // A single self-contained file: no lib or module resolution needed to parse, format and emit it.
  return { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, noLib: true, noResolve: true, types: [], newLine: ts.NewLineKind.LineFeed };
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
    '',
    '',
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

/** `{ id: value, // comment ... } as const` over lines. */
function table(rows: [string, number, string][]): string {
  if (rows.length === 0) return '{} as const';
  return `{\n${rows.map(([k, v, c]) => `${k}: ${v}, // ${c}`).join('\n')}\n} as const`;
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
