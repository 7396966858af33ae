/**
 * The hostile-input suite (issue 8), as a table: each row is a model file (and the files beside
 * it) that a build pipeline could hand to shardc, and the one-line user error each command must
 * give for it. Nothing binary is checked in: every case is built here from code, into a fresh
 * folder, when the test runs (test/security/hostile.test.ts) or when this script is run by hand:
 *
 *   npx tsx scripts/gen-hostile.ts <dir>     writes <dir>/<case>/model.onnx (+ side files)
 *
 * Rows cover: empty, truncated, random and text files; nesting deeper than 100 (subgraphs and
 * types); unknown dtypes; raw_data/dims mismatches; negative, zero-sized and overflowing dims;
 * cycles; undefined inputs; duplicate outputs; unsupported ops and opsets; and external data
 * that tries to leave the model's folder (`..`, absolute and Windows paths, symlinks, hard
 * links), uses unknown or `__proto__` keys, or claims offsets/lengths it does not have.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import { mulberry32 } from '../src/ir/random.js';

const { onnx } = onnxProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type INodeProto = onnxProto.onnx.INodeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export interface HostileCase {
  name: string;
  /** The model file's bytes. */
  bytes: () => Uint8Array;
  /** Writes the files beside the model (external data, links) into the case's folder. */
  files?: (dir: string) => void;
  /** The error every command must report (besides naming the model file). */
  message: RegExp;
  /**
   * `inspect` describes models that import (it lists unsupported ops, it does not run them):
   * for such rows it must exit 0 and its output must match this instead.
   */
  inspectReports?: RegExp;
}

// ---------------------------------------------------------------------------------------------
// Builders

const vi = (name: string, elemType = 1, dims: (number | string)[] = [4]): IValueInfoProto => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const nd = (op: string, input: string[], output: string[], domain = ''): INodeProto => ({ opType: op, input, output, name: `${op}_${output[0]}`, domain });

function model(graph: IGraphProto, opts: { opset?: number; domain?: string } = {}): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: 'gen-hostile',
    opsetImport: [{ domain: opts.domain ?? '', version: opts.opset ?? 17 }],
    graph: { name: 'hostile', ...graph },
  }).finish();
}

/** y = x + w with x, y float32[4] and the given initializer w. */
const addWith = (w: ITensorProto, xDims: number[] = [4]): Uint8Array =>
  model({ node: [nd('Add', ['x', 'w'], ['y'])], input: [vi('x', 1, xDims)], initializer: [w], output: [vi('y', 1, xDims)] });

/** A valid small model (y = relu(x + w)), the base of the truncated case. */
function validModel(): Uint8Array {
  return model({
    node: [nd('Add', ['x', 'w'], ['s']), nd('Relu', ['s'], ['y'])],
    input: [vi('x')],
    initializer: [{ name: 'w', dims: [4], dataType: 1, floatData: [1, -2, 3, -4] }],
    output: [vi('y')],
  });
}

/** y = x + w with w's external_data entries as given ([key, value] pairs). */
function externalModel(entries: [string, string][], dims: number[] = [4]): Uint8Array {
  return addWith({
    name: 'w',
    dims,
    dataType: 1,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: entries.map(([key, value]) => ({ key, value })),
  });
}

/** 16 bytes of float32 [1, 2, 3, 4]: the tensor w of the external-data rows. */
const WEIGHTS = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
const writeWeights = (dir: string, name = 'weights.bin'): void => fs.writeFileSync(path.join(dir, name), WEIGHTS);
/** A file outside the model's folder (its parent), which no row may read. */
const writeOutside = (dir: string, name: string): string => {
  const p = path.join(path.dirname(dir), `${path.basename(dir)}-${name}`);
  fs.writeFileSync(p, WEIGHTS);
  return p;
};

/** Protobuf wire-format pieces, for files onnx-proto's encoder cannot express. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wire: number): number[] => varint(field * 8 + wire);
const lenField = (field: number, body: number[]): number[] => [...tag(field, 2), ...varint(body.length), ...body];
const strField = (field: number, s: string): number[] => lenField(field, [...Buffer.from(s)]);

/**
 * ModelProto whose graph nests `depth` GraphProtos (If.then_branch), built without recursion and in
 * linear time (each level is a prefix whose length fields depend only on the inner length).
 */
function nestedIf(depth: number): Uint8Array {
  const leaf = strField(2, 'leaf');
  const prefixes: number[][] = [];
  let inner = leaf.length;
  for (let i = 1; i < depth; i++) {
    const attrHead = [...strField(1, 'then_branch'), ...tag(20, 0), ...varint(5), ...tag(6, 2), ...varint(inner)];
    const nodeHead = [...strField(4, 'If'), ...tag(5, 2), ...varint(attrHead.length + inner)];
    const graphHead = [...tag(1, 2), ...varint(nodeHead.length + attrHead.length + inner)];
    const prefix = [...graphHead, ...nodeHead, ...attrHead];
    prefixes.push(prefix);
    inner += prefix.length;
  }
  const head = [...tag(1, 0), ...varint(8), ...lenField(8, [...tag(2, 0), ...varint(17)]), ...tag(7, 2), ...varint(inner)];
  const out = new Uint8Array(head.length + inner);
  out.set(head, 0);
  let pos = head.length;
  for (let i = prefixes.length - 1; i >= 0; i--) {
    out.set(prefixes[i]!, pos);
    pos += prefixes[i]!.length;
  }
  out.set(leaf, pos);
  return out;
}

/** ModelProto whose graph input's type is sequence(sequence(...tensor)) `depth` levels deep. */
function nestedType(depth: number): Uint8Array {
  let type = lenField(1, [...tag(1, 0), ...varint(1)]);
  for (let i = 1; i < depth; i++) type = lenField(4, lenField(1, type));
  const input = [...strField(1, 'x'), ...lenField(2, type)];
  return Uint8Array.from([...tag(1, 0), ...varint(8), ...lenField(8, [...tag(2, 0), ...varint(17)]), ...lenField(7, lenField(11, input))]);
}

/** `n` bytes of a fixed pseudo-random sequence. */
function randomBytes(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

// ---------------------------------------------------------------------------------------------
// The table

const NOT_ONNX = /not a valid ONNX model/;

export const HOSTILE_CASES: readonly HostileCase[] = [
  // Not a model at all.
  { name: 'empty-file', bytes: () => new Uint8Array(0), message: /the file is empty/ },
  { name: 'truncated', bytes: () => validModel().subarray(0, 40), message: NOT_ONNX },
  { name: 'truncated-one-byte-short', bytes: () => validModel().subarray(0, validModel().length - 1), message: NOT_ONNX },
  { name: 'random-4k', bytes: () => randomBytes(4096, 8), message: NOT_ONNX },
  { name: 'text-file', bytes: () => Buffer.from('ir_version: 8\ngraph { node { op_type: "Relu" } }\n'), message: NOT_ONNX },
  { name: 'no-graph', bytes: () => onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }).finish(), message: /has no graph/ },

  // Nesting.
  { name: 'nested-subgraphs-150', bytes: () => nestedIf(150), message: /deeper than 100 levels/ },
  { name: 'nested-types-150', bytes: () => nestedType(150), message: /deeper than 100 levels/ },
  { name: 'nested-subgraphs-100000', bytes: () => nestedIf(100_000), message: /deeper than 100 levels/ },

  // Types and data.
  {
    name: 'unknown-dtype-initializer',
    bytes: () => addWith({ name: 'w', dims: [4], dataType: 99, rawData: new Uint8Array(16) }),
    message: /tensor "w": unknown data_type 99/,
  },
  {
    name: 'unknown-dtype-input',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x', 77)], output: [vi('y')] }),
    message: /tensor "x": unknown element type 77/,
  },
  {
    name: 'raw-data-dims-mismatch',
    bytes: () => addWith({ name: 'w', dims: [4], dataType: 1, rawData: new Uint8Array(12) }),
    message: /raw_data holds 12 bytes but dims \[4\] of float32 need 16/,
  },
  {
    name: 'float-data-count-mismatch',
    bytes: () => addWith({ name: 'w', dims: [4], dataType: 1, floatData: [1, 2, 3] }),
    message: /float_data holds 3 elements but dims \[4\] need 4/,
  },
  {
    name: 'zero-sized-dim-with-data',
    bytes: () => addWith({ name: 'w', dims: [0, 4], dataType: 1, rawData: new Uint8Array(16) }),
    message: /raw_data holds 16 bytes but dims \[0,4\] of float32 need 0/,
  },
  { name: 'negative-dim-initializer', bytes: () => addWith({ name: 'w', dims: [-4], dataType: 1, rawData: new Uint8Array(16) }), message: /tensor "w".*-4/ },
  {
    name: 'negative-dim-input',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x', 1, [-3])], output: [vi('y', 1, [3])] }),
    message: /invalid dimension -3/,
  },
  {
    name: 'dim-beyond-2^53',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x', 1, [2 ** 60])], output: [vi('y', 1, [2])] }),
    message: /invalid dimension/,
  },
  {
    name: 'dims-product-beyond-2^53-initializer',
    bytes: () => addWith({ name: 'w', dims: [2 ** 30, 2 ** 30, 2 ** 30], dataType: 1, rawData: new Uint8Array(16) }),
    message: /tensor "w".*(too large|2\^53|elements)/,
  },
  {
    name: 'dims-product-beyond-2^53-external',
    bytes: () => externalModel([['location', 'weights.bin']], [2 ** 30, 2 ** 30, 2 ** 30]),
    files: (dir) => writeWeights(dir),
    message: /tensor "w".*(too large|2\^53|elements)/,
  },

  {
    name: 'input-dims-product-beyond-2^53',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x', 1, [2 ** 30, 2 ** 30, 2 ** 30])], output: [vi('y', 1, [2 ** 30, 2 ** 30, 2 ** 30])] }),
    message: /tensor "x": declared shape \[1073741824,1073741824,1073741824\] holds more than 2\^53 elements/,
  },

  // Graph structure.
  {
    name: 'cycle',
    bytes: () => model({ node: [nd('Add', ['x', 'b'], ['a']), nd('Relu', ['a'], ['b'])], input: [vi('x')], output: [vi('b')] }),
    message: /cycle/,
  },
  {
    name: 'self-loop',
    bytes: () => model({ node: [nd('Add', ['x', 'a'], ['a'])], input: [vi('x')], output: [vi('a')] }),
    message: /cycle/,
  },
  {
    name: 'undefined-input',
    bytes: () => model({ node: [nd('Add', ['x', 'nowhere'], ['y'])], input: [vi('x')], output: [vi('y')] }),
    message: /input "nowhere" is not defined/,
  },
  {
    name: 'undefined-graph-output',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x')], output: [vi('z')] }),
    message: /graph output "z" is not defined/,
  },
  {
    name: 'duplicate-output-names',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y']), nd('Neg', ['x'], ['y'])], input: [vi('x')], output: [vi('y')] }),
    message: /value "y" is defined twice/,
  },
  {
    name: 'output-shadows-input',
    bytes: () => model({ node: [nd('Relu', ['x'], ['x'])], input: [vi('x')], output: [vi('x')] }),
    message: /value "x" is defined twice/,
  },
  {
    name: 'unsupported-op',
    bytes: () => model({ node: [nd('NotAnOnnxOp', ['x'], ['y'])], input: [vi('x')], output: [vi('y')] }),
    message: /unsupported ops: NotAnOnnxOp/,
    inspectReports: /unsupported: 1 op\n {2}NotAnOnnxOp: 1 node/,
  },
  {
    name: 'unsupported-domain',
    bytes: () =>
      onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }, { domain: 'com.evil', version: 1 }],
        graph: { name: 'g', node: [nd('Relu', ['x'], ['y'], 'com.evil')], input: [vi('x')], output: [vi('y')] },
      }).finish(),
    message: /unsupported ops: Relu/,
    inspectReports: /unsupported: 1 op\n {2}Relu: 1 node/,
  },
  {
    name: 'opset-too-new',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x')], output: [vi('y')] }, { opset: 99 }),
    message: /opset 99 of the default ONNX domain is not supported/,
  },
  {
    name: 'opset-zero',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x')], output: [vi('y')] }, { opset: 0 }),
    message: /opset 0 of the default ONNX domain is not supported/,
  },
  {
    name: 'opset-old-form',
    bytes: () => model({ node: [nd('Add', ['x', 'x'], ['y'])], input: [vi('x')], output: [vi('y')] }, { opset: 5 }),
    message: /Add at opset 5 uses a form older than opset 7/,
  },
  {
    name: 'no-default-opset',
    bytes: () => model({ node: [nd('Relu', ['x'], ['y'])], input: [vi('x')], output: [vi('y')] }, { domain: 'com.other' }),
    message: /imports no opset for the default ONNX domain/,
  },

  // External data that tries to leave the model's folder.
  { name: 'external-dotdot', bytes: () => externalModel([['location', '../secret.bin']]), files: (d) => void writeOutside(d, 'secret.bin'), message: /must not contain '\.\.'/ },
  { name: 'external-nested-dotdot', bytes: () => externalModel([['location', 'a/../../x.bin']]), files: (d) => void writeOutside(d, 'x.bin'), message: /must not contain '\.\.'/ },
  { name: 'external-absolute', bytes: () => externalModel([['location', '/etc/passwd']]), message: /must be a relative path/ },
  { name: 'external-windows-drive', bytes: () => externalModel([['location', 'C:\\x.bin']]), message: /must be a relative path/ },
  { name: 'external-windows-drive-relative', bytes: () => externalModel([['location', 'C:x.bin']]), message: /must be a relative path/ },
  { name: 'external-windows-unc', bytes: () => externalModel([['location', '\\\\server\\share\\x.bin']]), message: /must be a relative path/ },
  { name: 'external-windows-dotdot', bytes: () => externalModel([['location', 'a\\..\\..\\x.bin']]), message: /must not contain '\.\.'/ },
  { name: 'external-nul', bytes: () => externalModel([['location', 'weights.bin\0.txt']]), files: (d) => writeWeights(d), message: /NUL character/ },
  {
    name: 'external-symlink-out',
    bytes: () => externalModel([['location', 'weights.bin']]),
    files: (d) => fs.symlinkSync(writeOutside(d, 'target.bin'), path.join(d, 'weights.bin')),
    message: /is a symbolic link/,
  },
  {
    name: 'external-symlinked-folder-out',
    bytes: () => externalModel([['location', 'sub/weights.bin']]),
    files: (d) => {
      const out = path.join(path.dirname(d), `${path.basename(d)}-outside`);
      fs.mkdirSync(out);
      writeWeights(out);
      fs.symlinkSync(out, path.join(d, 'sub'));
    },
    message: /resolves outside the model's folder/,
  },
  {
    name: 'external-hard-link-out',
    bytes: () => externalModel([['location', 'weights.bin']]),
    files: (d) => fs.linkSync(writeOutside(d, 'hard.bin'), path.join(d, 'weights.bin')),
    message: /is a hard link/,
  },
  { name: 'external-missing-file', bytes: () => externalModel([['location', 'nothing.bin']]), message: /"nothing\.bin" does not exist/ },
  {
    name: 'external-location-is-folder',
    bytes: () => externalModel([['location', 'dir.bin']]),
    files: (d) => fs.mkdirSync(path.join(d, 'dir.bin')),
    message: /is not a regular file/,
  },
  { name: 'external-no-location', bytes: () => externalModel([['offset', '0']]), files: (d) => writeWeights(d), message: /has no location/ },
  { name: 'external-no-entries', bytes: () => externalModel([]), message: /marked EXTERNAL but has no external_data entries/ },

  // External data keys and numbers.
  { name: 'external-unknown-key', bytes: () => externalModel([['location', 'weights.bin'], ['sneaky', '1']]), files: (d) => writeWeights(d), message: /unknown external data key "sneaky"/ },
  { name: 'external-proto-key', bytes: () => externalModel([['location', 'weights.bin'], ['__proto__', '{"polluted":1}']]), files: (d) => writeWeights(d), message: /unknown external data key "__proto__"/ },
  { name: 'external-constructor-key', bytes: () => externalModel([['constructor', 'x'], ['location', 'weights.bin']]), files: (d) => writeWeights(d), message: /unknown external data key "constructor"/ },
  { name: 'external-duplicate-key', bytes: () => externalModel([['location', 'weights.bin'], ['location', 'other.bin']]), files: (d) => writeWeights(d), message: /key "location" is given twice/ },
  { name: 'external-negative-offset', bytes: () => externalModel([['location', 'weights.bin'], ['offset', '-16']]), files: (d) => writeWeights(d), message: /offset "-16" is not a non-negative integer/ },
  { name: 'external-negative-length', bytes: () => externalModel([['location', 'weights.bin'], ['length', '-1']]), files: (d) => writeWeights(d), message: /length "-1" is not a non-negative integer/ },
  { name: 'external-non-numeric-offset', bytes: () => externalModel([['location', 'weights.bin'], ['offset', '0x10']]), files: (d) => writeWeights(d), message: /offset "0x10" is not a non-negative integer/ },
  { name: 'external-exponent-length', bytes: () => externalModel([['location', 'weights.bin'], ['length', '1.6e1']]), files: (d) => writeWeights(d), message: /length "1.6e1" is not a non-negative integer/ },
  { name: 'external-huge-offset', bytes: () => externalModel([['location', 'weights.bin'], ['offset', '99999999999999999999999']]), files: (d) => writeWeights(d), message: /offset "99999999999999999999999" is not a non-negative integer/ },
  { name: 'external-offset-past-end', bytes: () => externalModel([['location', 'weights.bin'], ['offset', '17']]), files: (d) => writeWeights(d), message: /offset 17 is past the end of the file \(16 bytes\)/ },
  {
    name: 'external-offset-plus-length-past-end',
    bytes: () => externalModel([['location', 'weights.bin'], ['offset', '8'], ['length', '16']]),
    files: (d) => writeWeights(d),
    message: /offset 8 \+ length 16 exceeds the file size \(16 bytes\)/,
  },
  {
    // A 1 KB file whose tensor claims a petabyte (2^48 float32 = 2^50 bytes): must fail on the
    // sizes alone, never allocate.
    name: 'external-1kb-claims-1pb',
    bytes: () => externalModel([['location', 'weights.bin'], ['offset', '0'], ['length', String(2 ** 50)]], [2 ** 48]),
    files: (d) => fs.writeFileSync(path.join(d, 'weights.bin'), new Uint8Array(1024)),
    message: /length 1125899906842624 exceeds the file size \(1024 bytes\)/,
  },
  {
    name: 'external-1kb-claims-1pb-no-length',
    bytes: () => externalModel([['location', 'weights.bin']], [2 ** 48]),
    files: (d) => fs.writeFileSync(path.join(d, 'weights.bin'), new Uint8Array(1024)),
    message: /1024 bytes after offset 0, but the tensor needs 1125899906842624/,
  },
];

/** Writes one case into `dir` (created, must not exist); returns the model file's path. */
export function writeHostileCase(c: HostileCase, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  c.files?.(dir);
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(file, c.bytes());
  return file;
}

/** Writes every case into `<root>/<name>/`; returns name → model path. */
export function writeHostileCases(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of HOSTILE_CASES) out.set(c.name, writeHostileCase(c, path.join(root, c.name)));
  return out;
}

const invokedDirectly = process.argv[1] !== undefined && /gen-hostile\.[cm]?[jt]s$/.test(process.argv[1]);
if (invokedDirectly) {
  const root = process.argv[2];
  if (!root) {
    process.stderr.write('usage: npx tsx scripts/gen-hostile.ts <dir>\n');
    process.exit(1);
  }
  const written = writeHostileCases(path.resolve(root));
  process.stdout.write(`wrote ${written.size} hostile cases under ${root}\n`);
}
