/**
 * Dependencies (issue 8 §7): the protobufjs that decodes every model is a version without the
 * known advisories, and decoding a model whose strings are `__proto__` / `constructor` /
 * `prototype` (names, keys, attribute names) leaves Object.prototype untouched.
 *
 * Advisories checked (fixed versions): CVE-2022-25878 prototype pollution (6.11.3), CVE-2023-36665
 * prototype pollution via user-controlled messages (6.11.4 / 7.2.4), CVE-2026-41242 code
 * generation from crafted descriptors (7.5.5 / 8.0.1). shardc only decodes with onnx-proto's
 * static, generated schema; the pin keeps even the unreachable paths fixed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importModel } from '../../src/onnx/import.js';
import { decodeModelProto } from '../../src/onnx/proto.js';
import { model, node, onnx, valueInfo } from '../onnx/proto-helpers.js';

const ROOT = join(__dirname, '..', '..');

/** [major, minor, patch] of a semver string. */
const semver = (v: string): number[] => v.split(/[.+-]/).slice(0, 3).map(Number);
const atLeast = (v: string, min: string): boolean => {
  const a = semver(v);
  const b = semver(min);
  for (let i = 0; i < 3; i++) if (a[i]! !== b[i]!) return a[i]! > b[i]!;
  return true;
};

const installed = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;

describe('protobufjs version', () => {
  it('compares versions', () => {
    expect([atLeast('8.8.1', '8.0.1'), atLeast('8.0.0', '8.0.1'), atLeast('7.2.4', '7.2.4'), atLeast('6.11.3', '7.2.4')]).toEqual([true, false, true, false]);
  });

  it('the installed protobufjs is at least 8.0.1 (past CVE-2022-25878, CVE-2023-36665, CVE-2026-41242)', () => {
    expect(atLeast(installed(join(ROOT, 'node_modules', 'protobufjs')), '8.0.1')).toBe(true);
  });

  it('onnx-proto (which asks for ^6.11.2) decodes with that same protobufjs, not a nested old copy', () => {
    const fromOnnxProto = require.resolve('protobufjs/minimal', { paths: [join(ROOT, 'node_modules', 'onnx-proto')] });
    expect(fromOnnxProto.startsWith(join(ROOT, 'node_modules', 'protobufjs') + '/')).toBe(true);
  });

  it('the lockfile pins every protobufjs to a fixed version', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    const entries = Object.entries(lock.packages).filter(([p]) => /(^|\/)node_modules\/protobufjs$/.test(p));
    expect(entries.length).toBeGreaterThan(0);
    for (const [p, e] of entries) expect({ p, ok: atLeast(e.version ?? '0.0.0', '8.0.1') }).toEqual({ p, ok: true });
  });
});

describe('decoding hostile field names', () => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort();
  afterEach(() => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(typeof ({} as { constructor: unknown }).constructor).toBe('function');
  });

  const evil = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString'];

  it('metadata keys, value names, node names and attribute names', () => {
    const bytes = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      metadataProps: evil.map((key) => ({ key, value: '{"polluted": true}' })),
      graph: {
        name: '__proto__',
        input: [valueInfo('__proto__', 1, [2])],
        node: [
          node('Relu', ['__proto__'], ['constructor'], [{ name: 'polluted', type: 1, f: 1 }], '__proto__'),
          node('Neg', ['constructor'], ['prototype'], [], 'constructor'),
        ],
        output: [valueInfo('prototype', 1, [2])],
      },
    }).finish();
    const proto = decodeModelProto(bytes, { file: 'evil.onnx' });
    expect(proto.metadataProps.map((p) => p.key)).toEqual(evil);
    const m = importModel(bytes, { file: 'evil.onnx' });
    expect(m.graph.inputs.map((v) => v.name)).toEqual(['__proto__']);
    expect(m.graph.nodes.map((n) => n.outputs[0]!.name)).toEqual(['constructor', 'prototype']);
    expect(m.graph.meta.get('metadata.__proto__')).toBe('{"polluted": true}');
  });

  it('a message with an unknown field numbered like nothing in the schema, holding "__proto__"', () => {
    // Field 999 of ModelProto (unknown, skipped by the decoder) carrying a JSON-ish payload.
    const known = model({ node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x', 1, [2])], output: [valueInfo('y', 1, [2])] });
    const payload = Buffer.from('{"__proto__": {"polluted": true}}');
    const extra = Uint8Array.from([0xba, 0x3e, payload.length, ...payload]); // tag (999 << 3 | 2) = 0x1f3a
    const bytes = new Uint8Array(known.length + extra.length);
    bytes.set(known);
    bytes.set(extra, known.length);
    const proto = decodeModelProto(bytes, { file: 'extra.onnx' });
    expect(proto.graph?.node?.[0]?.opType).toBe('Relu');
  });
});
