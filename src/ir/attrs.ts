/**
 * Node attributes: tagged values (ONNX keeps int vs float vs tensor distinct, and so do we, so a
 * printed graph parses back and exports unchanged), with typed getters that fail as user errors
 * naming the node.
 */
import { UserError } from './errors.js';
import type { Graph } from './graph.js';
import type { LazyTensor } from './tensor.js';

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: LazyTensor }
  | { kind: 'tensors'; value: LazyTensor[] }
  | { kind: 'graph'; value: Graph }
  | { kind: 'graphs'; value: Graph[] };

export type AttrKind = Attr['kind'];

const identical = (a: Attr, b: Attr): boolean => a === b;

export class Attrs {
  private readonly map = new Map<string, Attr>();
  /** Node name, for error messages. */
  owner: string;

  constructor(entries: Iterable<[string, Attr]> = [], owner = '') {
    for (const [k, v] of entries) this.map.set(k, v);
    this.owner = owner;
  }

  has(name: string): boolean {
    return this.map.has(name);
  }
  get(name: string): Attr | undefined {
    return this.map.get(name);
  }
  set(name: string, a: Attr): this {
    this.map.set(name, a);
    return this;
  }
  delete(name: string): void {
    this.map.delete(name);
  }
  /** Entries in name order (deterministic printing and export). */
  entries(): [string, Attr][] {
    const out = [...this.map.entries()];
    return out.length < 2 ? out : out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
  /** Whether `other` holds the very same attribute objects under the same names (e.g. a node's attributes and their clone). */
  sameAs(other: Attrs): boolean {
    return this.matches(other, identical);
  }
  /** Whether `other` has the same names, each with an attribute that `same` finds equal to this one's (no order, nothing copied). */
  matches(other: Attrs, same: (a: Attr, b: Attr) => boolean): boolean {
    if (this.map.size !== other.map.size) return false;
    for (const [k, a] of this.map) {
      const b = other.map.get(k);
      if (b === undefined || !same(a, b)) return false;
    }
    return true;
  }
  clone(): Attrs {
    return new Attrs(this.map.entries(), this.owner);
  }

  private typed<K extends AttrKind>(name: string, kinds: K[]): Extract<Attr, { kind: K }> | undefined {
    const a = this.map.get(name);
    if (a === undefined) return undefined;
    if (!(kinds as string[]).includes(a.kind))
      throw new UserError(`attribute '${name}' must be ${kinds.join(' or ')}, got ${a.kind}`, { node: this.owner });
    return a as Extract<Attr, { kind: K }>;
  }
  private missing(name: string): never {
    throw new UserError(`required attribute '${name}' is missing`, { node: this.owner });
  }

  int(name: string, def?: number): number {
    const a = this.typed(name, ['int']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  float(name: string, def?: number): number {
    const a = this.typed(name, ['float', 'int']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  string(name: string, def?: string): string {
    const a = this.typed(name, ['string']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  ints(name: string, def?: number[]): number[] {
    const a = this.typed(name, ['ints']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  floats(name: string, def?: number[]): number[] {
    const a = this.typed(name, ['floats', 'ints']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  strings(name: string, def?: string[]): string[] {
    const a = this.typed(name, ['strings']);
    if (a) return a.value;
    return def === undefined ? this.missing(name) : def;
  }
  tensor(name: string): LazyTensor | undefined {
    return this.typed(name, ['tensor'])?.value;
  }
  graph(name: string): Graph | undefined {
    return this.typed(name, ['graph'])?.value;
  }
  /** Optional int attribute without a default. */
  maybeInt(name: string): number | undefined {
    return this.typed(name, ['int'])?.value;
  }
  maybeInts(name: string): number[] | undefined {
    return this.typed(name, ['ints'])?.value;
  }
}

/** A plain JSON value of an attribute (numbers, strings and their lists); undefined for tensors, graphs and types. */
export function plainAttrValue(a: Attr): number | string | number[] | string[] | undefined {
  switch (a.kind) {
    case 'int':
    case 'float':
    case 'string':
      return a.value;
    case 'ints':
    case 'floats':
    case 'strings':
      return a.value.slice();
    default:
      return undefined;
  }
}
