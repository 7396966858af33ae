/** Small builders for hand-made ONNX protobufs in tests. */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export const AT = onnx.AttributeProto.AttributeType;

export function valueInfo(name: string, elemType = 1, dims?: (number | string | null)[]): onnxProto.onnx.IValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType };
  if (dims)
    tensorType.shape = {
      dim: dims.map((d) => (d === null ? {} : typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
    };
  return { name, type: { tensorType } };
}

export function node(op: string, inputs: string[], outputs: string[], attribute: onnxProto.onnx.IAttributeProto[] = [], name = ''): onnxProto.onnx.INodeProto {
  return { opType: op, input: inputs, output: outputs, attribute, name };
}

export const intsAttr = (name: string, ints: number[]): onnxProto.onnx.IAttributeProto => ({ name, type: AT.INTS, ints });
export const intAttr = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: AT.INT, i });
export const floatAttr = (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, type: AT.FLOAT, f });
export const graphAttr = (name: string, g: onnxProto.onnx.IGraphProto): onnxProto.onnx.IAttributeProto => ({ name, type: AT.GRAPH, g });

export function floatTensor(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: 1, floatData: values };
}

export function model(graph: onnxProto.onnx.IGraphProto, opset = 17, irVersion = 8): Uint8Array {
  return onnx.ModelProto.encode({ irVersion, opsetImport: [{ domain: '', version: opset }], producerName: 'test', graph }).finish();
}

/** Expects `fn` to throw a UserError whose message matches every pattern. */
export function userError(fn: () => unknown): Error & { name: string; location: Record<string, string | undefined> } {
  try {
    fn();
  } catch (e) {
    if ((e as Error).name !== 'UserError') throw e;
    return e as never;
  }
  throw new Error('expected a UserError, nothing was thrown');
}
