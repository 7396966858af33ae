import { importModel } from '../../src/onnx/import.js';
import { guardWireFormat } from '../../src/onnx/proto.js';
import { model, node, onnx, userError, valueInfo } from './proto-helpers.js';

/** Protobuf varint. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wire: number) => varint(field * 8 + wire);
const str = (field: number, s: string) => [...tag(field, 2), ...varint(s.length), ...Buffer.from(s)];

/**
 * A ModelProto whose graph nests `depth` GraphProtos through If nodes' then_branch attributes,
 * built without recursion (so the test itself can make very deep files): each level is a prefix
 * `GraphProto.node { op_type: "If", attribute { name, type: GRAPH, g: <inner graph> } }`.
 */
function nestedIfModel(depth: number): Uint8Array {
  const innermost = [...str(2, 'leaf')]; // GraphProto.name
  // Per level, bytes before the inner graph given the inner graph's length.
  const prefix = (innerLen: number): number[] => {
    const gField = [...tag(6, 2), ...varint(innerLen)]; // AttributeProto.g
    const attrBody = [...str(1, 'then_branch'), ...tag(20, 0), ...varint(5), ...gField];
    const attrLen = attrBody.length + innerLen;
    const nodeBody = [...str(4, 'If'), ...tag(5, 2), ...varint(attrLen), ...attrBody];
    const nodeLen = nodeBody.length + innerLen;
    return [...tag(1, 2), ...varint(nodeLen), ...nodeBody]; // GraphProto.node
  };
  const prefixes: number[][] = [];
  let len = innermost.length;
  for (let i = 1; i < depth; i++) {
    const p = prefix(len);
    prefixes.push(p);
    len += p.length;
  }
  const head = [...tag(1, 0), ...varint(8), ...tag(8, 2), ...varint(2), ...tag(2, 0), ...varint(17), ...tag(7, 2), ...varint(len)];
  const out = new Uint8Array(head.length + len);
  out.set(head, 0);
  let pos = head.length;
  for (let i = prefixes.length - 1; i >= 0; i--) {
    out.set(prefixes[i]!, pos);
    pos += prefixes[i]!.length;
  }
  out.set(innermost, pos);
  return out;
}

/** A ModelProto whose graph input type is sequence(sequence(...(tensor))) `depth` levels deep. */
function nestedTypeModel(depth: number): Uint8Array {
  let type: number[] = [...tag(1, 2), ...varint(2), ...tag(1, 0), ...varint(1)]; // TypeProto.tensor_type{elem_type=1}
  for (let i = 1; i < depth; i++) {
    const seq = [...tag(1, 2), ...varint(type.length), ...type]; // TypeProto.Sequence.elem_type
    type = [...tag(4, 2), ...varint(seq.length), ...seq]; // TypeProto.sequence_type
  }
  const vi = [...str(1, 'x'), ...tag(2, 2), ...varint(type.length), ...type];
  const graph = [...tag(11, 2), ...varint(vi.length), ...vi];
  return Uint8Array.from([...tag(8, 2), ...varint(2), ...tag(2, 0), ...varint(17), ...tag(7, 2), ...varint(graph.length), ...graph]);
}

describe('wire-format guard', () => {
  it('the hand-built nested file is a valid ModelProto (decodes at small depth)', () => {
    const m = onnx.ModelProto.decode(nestedIfModel(3));
    expect(m.graph!.node![0]!.attribute![0]!.g!.node![0]!.attribute![0]!.g!.name).toBe('leaf');
  });

  it('accepts nesting up to maxDepth and rejects one more level, before decoding', () => {
    const ok = importModel(nestedIfModel(100), { file: 'ok.onnx' });
    let depth = 1;
    for (let g = ok.graph; g.nodes.length > 0; g = g.nodes[0]!.attrs.graph('then_branch')!) depth++;
    expect(depth).toBe(100);
    const e = userError(() => importModel(nestedIfModel(101), { file: 'deep.onnx' }));
    expect(e.message).toMatch(/deep\.onnx: .*deeper than 100 levels/);
    expect(userError(() => importModel(nestedIfModel(11), { file: 'd.onnx', maxDepth: 10 })).message).toMatch(/deeper than 10 levels/);
  });

  it('a 200,000-level file fails with a message, not a stack overflow', () => {
    const bytes = nestedIfModel(200_000);
    const e = userError(() => importModel(bytes, { file: 'bomb.onnx' }));
    expect(e.message).toMatch(/bomb\.onnx: .*deeper than 100 levels/);
  });

  it('deeply nested sequence types are rejected too', () => {
    expect(userError(() => importModel(nestedTypeModel(2000), { file: 't.onnx' })).message).toMatch(/TypeProto deeper than 100 levels/);
    expect(() => guardWireFormat(nestedTypeModel(20), 'Model', { file: 't.onnx' })).not.toThrow();
    expect(onnx.ModelProto.decode(nestedTypeModel(3)).graph!.input![0]!.type!.sequenceType!.elemType!.sequenceType!.elemType!.tensorType!.elemType).toBe(1);
  });

  it('rejects wire types the decoder would misread, field 0, groups and overlong lengths', () => {
    const bad = (bytes: number[], re: RegExp) => expect(userError(() => importModel(Uint8Array.from(bytes), { file: 'w.onnx' })).message).toMatch(re);
    bad([...tag(7, 0), ...varint(5)], /field 7 of ModelProto must be a message/);
    bad([...tag(2, 0), ...varint(5)], /field 2 of ModelProto has wire type 0, expected 2/);
    bad([...tag(0, 0), 1], /field number 0/);
    bad([...tag(99, 3), ...tag(99, 4)], /unsupported wire type 3/);
    bad([...tag(7, 2), ...varint(1000), 0, 0], /length 1000 runs past the end/);
    bad([...tag(1, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /varint longer than 10 bytes/);
  });

  it('skips unknown fields of every wire type', () => {
    const good = model({ node: [node('Relu', ['x'], ['y'])], input: [valueInfo('x')], output: [valueInfo('y')] });
    const extra = Uint8Array.from([...tag(90, 0), 5, ...tag(91, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...tag(92, 5), 1, 2, 3, 4, ...str(93, 'zz'), ...good]);
    expect(importModel(extra, { file: 'u.onnx' }).graph.nodes[0]!.op).toBe('Relu');
  });
});
