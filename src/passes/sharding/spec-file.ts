/**
 * User sharding spec files (`--strategy spec.json`): tensor-name patterns → layouts per mesh axis.
 *
 *   { "rules": [
 *       { "match": "*.attn.c_attn.weight", "layout": { "tp": "S(1)" } },
 *       { "match": "/^layers\\.\\d+\\.mlp\\.down_proj\\.weight$/", "layout": { "tp": "S(0)", "dp": "R" } }
 *   ] }
 *
 * `match` is a glob over the whole value name (`*` any run of characters, `?` one character) or a
 * regular expression between slashes (`/.../`, optional flags after the last slash, matched with
 * search semantics: anchor it yourself). Values are graph inputs, constants and node outputs (the
 * names after shardc's default passes: `shardc inspect` shows them). For each value and axis the
 * FIRST rule that matches and names that axis wins. Placements print as in layouts: `S(1)`,
 * `S(1:64)` (blocks of 64), `R`, `P(sum)`.
 *
 * Errors (UserError naming the file and the rule): unreadable file or bad JSON, unknown keys, a
 * pattern that matches no value, an axis the mesh does not have, a placement that does not parse,
 * a shard of a dim the tensor does not have (dim ≥ rank), a unit that does not divide the dim.
 * Seeds from a spec keep their units exactly; they start propagation like any preset's seeds.
 */
import * as fs from 'node:fs';
import { UserError } from '../../ir/errors.js';
import type { Graph, Value } from '../../ir/graph.js';
import { type Placement, formatPlacement, parsePlacement } from '../../ir/layout.js';
import type { DeviceMesh } from './mesh.js';
import type { Seed } from './propagate.js';

export interface SpecRule {
  match: string;
  layout: Record<string, string>;
}

export interface ShardSpec {
  file: string;
  rules: SpecRule[];
}

/** Reads and validates the structure of a spec file. */
export function readSpecFile(file: string): ShardSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'spec file not found' : `cannot read the spec file (${code ?? (e as Error).message})`, { file });
  }
  return parseSpec(text, file);
}

export function parseSpec(text: string, file = '<spec>'): ShardSpec {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UserError(`spec file is not valid JSON: ${(e as Error).message}`, { file });
  }
  const bad = (why: string): never => {
    throw new UserError(`spec file: ${why} (expected { "rules": [{ "match": "glob or /regex/", "layout": { "tp": "S(1)" } }] })`, { file });
  };
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return bad('the top level must be an object');
  const extra = Object.keys(doc).filter((k) => k !== 'rules');
  if (extra.length) bad(`unknown key ${JSON.stringify(extra[0])}`);
  const rules = (doc as { rules?: unknown }).rules;
  if (!Array.isArray(rules)) return bad('"rules" must be an array');
  return {
    file,
    rules: rules.map((r, i) => {
      if (!r || typeof r !== 'object' || Array.isArray(r)) return bad(`rule ${i} must be an object`);
      const keys = Object.keys(r).filter((k) => k !== 'match' && k !== 'layout');
      if (keys.length) bad(`rule ${i} has an unknown key ${JSON.stringify(keys[0])}`);
      const { match, layout } = r as { match?: unknown; layout?: unknown };
      if (typeof match !== 'string' || !match) return bad(`rule ${i} needs a "match" string`);
      if (!layout || typeof layout !== 'object' || Array.isArray(layout)) return bad(`rule ${i} (${match}) needs a "layout" object`);
      for (const [axis, p] of Object.entries(layout)) if (typeof p !== 'string') bad(`rule ${i} (${match}): the placement for ${axis} must be a string`);
      return { match, layout: layout as Record<string, string> };
    }),
  };
}

/** A matcher for a glob or /regex/ pattern. */
export function namePattern(match: string, file = '<spec>'): (name: string) => boolean {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(match);
  if (re) {
    let rx: RegExp;
    try {
      rx = new RegExp(re[1]!, re[2]!.replace(/g/g, ''));
    } catch (e) {
      throw new UserError(`spec file: ${match} is not a valid regular expression: ${(e as Error).message}`, { file });
    }
    return (name) => rx.test(name);
  }
  const src = match.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const rx = new RegExp(`^${src}$`);
  return (name) => rx.test(name);
}

/** Seeds per mesh axis from a spec, checked against the graph and mesh. */
export function specSeeds(spec: ShardSpec, graph: Graph, mesh: DeviceMesh): Map<string, Map<Value, Seed>> {
  const file = spec.file;
  const values: Value[] = [];
  const seen = new Set<Value>();
  const add = (v: Value): void => {
    if (!seen.has(v)) {
      seen.add(v);
      values.push(v);
    }
  };
  graph.inputs.forEach(add);
  graph.initializers.forEach(add);
  for (const n of graph.nodes) n.outputs.forEach(add);

  const out = new Map<string, Map<Value, Seed>>(mesh.axes.map((a) => [a.name, new Map()]));
  spec.rules.forEach((rule, i) => {
    const where = `spec rule ${i} (${rule.match})`;
    const placements: [string, Placement][] = Object.entries(rule.layout).map(([axis, text]) => {
      if (!mesh.hasAxis(axis)) throw new UserError(`${where} names mesh axis ${axis}, which the mesh ${mesh} does not have`, { file });
      try {
        return [axis, parsePlacement(text)];
      } catch {
        throw new UserError(`${where}: ${JSON.stringify(text)} is not a placement (S(d), S(d:unit), R, P(sum|max|min))`, { file });
      }
    });
    const test = namePattern(rule.match, file);
    const matched = values.filter((v) => test(v.name));
    if (!matched.length) throw new UserError(`${where} matches no tensor of the model`, { file });
    for (const v of matched) {
      const shape = v.shape ?? [];
      for (const [axis, p] of placements) {
        if (p.kind === 'shard') {
          if (p.dim >= shape.length)
            throw new UserError(`${where}: ${formatPlacement(p)} shards dim ${p.dim} of ${v.name}, which has rank ${shape.length}`, { file, tensor: v.name });
          const n = shape[p.dim];
          const u = p.unit ?? 1;
          if (typeof n === 'number' && n % u !== 0)
            throw new UserError(`${where}: ${formatPlacement(p)} splits dim ${p.dim} of ${v.name} (size ${n}) in blocks of ${u}, which do not divide it`, { file, tensor: v.name });
        }
        const seeds = out.get(axis)!;
        if (!seeds.has(v)) seeds.set(v, { placement: p, why: `spec ${file}: rule ${i} (${rule.match}) gives ${v.name} ${formatPlacement(p)} on ${axis}`, exactUnit: true });
      }
    }
  });
  return out;
}
