/**
 * Shared harness pieces for the op-row unit tests (test/ir/ops/*.test.ts): attributes from plain
 * values, a node with fresh values, and the UserError expectations.
 */
import { type Attr, Attrs } from '../../src/ir/attrs.js';
import { UserError } from '../../src/ir/errors.js';
import { Node, Value } from '../../src/ir/graph.js';
import type { OpDef, TypeInfo } from '../../src/ir/registry.js';
import type { Tensor } from '../../src/ir/tensor.js';

/** An attribute as a plain value: int, string, ints, or `{ float: x }`. */
export type AttrIn = number | string | number[] | { float: number };

export function attrsOf(a: Readonly<Record<string, AttrIn>>): Attrs {
  return new Attrs(
    Object.entries(a).map(([k, v]): [string, Attr] => [
      k,
      typeof v === 'string'
        ? { kind: 'string', value: v }
        : Array.isArray(v)
          ? { kind: 'ints', value: v }
          : typeof v === 'number'
            ? { kind: 'int', value: v }
            : { kind: 'float', value: v.float },
    ]),
  );
}

/**
 * A node of `op` with fresh values `in0..`, `out0..` (input i absent where `present[i]` is false)
 * and the given label.
 */
export function opNode(op: string, nIn: number, nOut: number, attrs: Attrs, label: string, present: readonly boolean[] = []): Node {
  const inputs = Array.from({ length: nIn }, (_, i) => (present[i] === false ? null : new Value(`in${i}`)));
  const outputs = Array.from({ length: nOut }, (_, i) => new Value(`out${i}`));
  return new Node(op, inputs, outputs, attrs, label);
}

/** The message of the UserError that `f` throws (expects it to throw one). */
export function userErrorMessage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as Error).message;
  }
  throw new Error('expected a UserError, nothing was thrown');
}

/** Expects `f` to throw a UserError whose message matches `match`. */
export function expectUserError(f: () => unknown, match: RegExp): void {
  expect(userErrorMessage(f)).toMatch(match);
}

/**
 * run / infer / flops of the op rows found by `row(op)`, each on a fresh node labelled
 * `<op lowercased>_0` (inference without compile-time constants).
 */
export function rowHarness(row: (op: string) => OpDef) {
  const nodeOf = (op: string, nIn: number, attrs: Record<string, AttrIn>, nOut = 1): Node =>
    opNode(op, nIn, nOut, attrsOf(attrs), `${op.toLowerCase()}_0`);
  return {
    run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrIn> = {}, nOut = 1): Tensor[] {
      const node = nodeOf(op, inputs.length, attrs, nOut);
      return row(op).evaluate({ node, attrs: node.attrs, inputs });
    },
    infer(op: string, inputs: (TypeInfo | undefined)[], attrs: Record<string, AttrIn> = {}, nOut = 1): TypeInfo[] {
      const node = nodeOf(op, inputs.length, attrs, nOut);
      return row(op).infer({ node, attrs: node.attrs, inputs, constant: () => undefined });
    },
    flops(op: string, inputs: TypeInfo[], attrs: Record<string, AttrIn> = {}): number {
      const node = nodeOf(op, inputs.length, attrs);
      return row(op).flops!({ node, attrs: node.attrs, inputs, constant: () => undefined });
    },
  };
}
