/**
 * Attrs comparisons (src/ir/attrs.ts): sameAs (the very same attribute objects) and matches (an
 * equality of the caller's, names in any order).
 */
import { type Attr, Attrs } from '../../src/ir/attrs.js';

const int = (value: number): Attr => ({ kind: 'int', value });
const sameInt = (a: Attr, b: Attr): boolean => a.kind === 'int' && b.kind === 'int' && a.value === b.value;

describe('Attrs.sameAs / matches', () => {
  it('sameAs holds for a clone, not for equal copies', () => {
    const a = new Attrs([['axis', int(1)], ['keepdims', int(0)]]);
    expect(a.sameAs(a.clone())).toBe(true);
    expect(a.sameAs(new Attrs([['axis', int(1)], ['keepdims', int(0)]]))).toBe(false);
  });

  it('matches compares by name whatever the insertion order', () => {
    const a = new Attrs([['axis', int(1)], ['keepdims', int(0)]]);
    expect(a.matches(new Attrs([['keepdims', int(0)], ['axis', int(1)]]), sameInt)).toBe(true);
    expect(a.matches(new Attrs([['keepdims', int(0)], ['axis', int(2)]]), sameInt)).toBe(false);
    expect(a.matches(new Attrs([['keepdims', int(0)], ['other', int(1)]]), sameInt)).toBe(false);
    expect(a.matches(new Attrs([['axis', int(1)]]), sameInt)).toBe(false);
    expect(new Attrs().matches(new Attrs(), sameInt)).toBe(true);
  });
});
