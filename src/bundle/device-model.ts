/**
 * One device's program for target cpu: its local graph as ONNX (device-<r>/model.onnx) whose
 * initializers are not inlined but stored in device-<r>/weights.safetensors. The ONNX file refers
 * to each weight with standard ONNX external data (location `weights.safetensors`, offset and
 * length of the tensor's bytes inside the safetensors file), which works because both formats store
 * raw little-endian tensor bytes. So the device model loads with the ordinary importer (and
 * onnxruntime, collectives aside), and the weights file is a normal safetensors file for other tools.
 */
import { dtypeFromOnnx } from '../ir/dtype.js';
import { encodeRaw, tensorFromProto } from '../onnx/tensor-file.js';
import { decodeModelProto, onnx, type TensorProto } from '../onnx/proto.js';
import { type EncodedSafetensors, encodeSafetensorsRaw, type NumericDType, type SafetensorsItem } from './safetensors.js';

export const DEVICE_MODEL_FILE = 'model.onnx';
export const DEVICE_WEIGHTS_FILE = 'weights.safetensors';

export interface DeviceModelFiles {
  model: Uint8Array;
  weights: EncodedSafetensors;
}

/**
 * Moves every numeric top-level initializer of an encoded ONNX model into a safetensors file and
 * points the model at it. String tensors (no safetensors dtype) and subgraph constants stay inline.
 */
export function externalizeWeights(modelBytes: Uint8Array, opts: { file: string; metadata?: Record<string, string> }): DeviceModelFiles {
  const proto = decodeModelProto(modelBytes, { file: opts.file });
  const inits = (proto.graph?.initializer ?? []) as TensorProto[];
  const items: SafetensorsItem[] = [];
  const moved: TensorProto[] = [];
  for (const p of inits) {
    const dtype = dtypeFromOnnx(p.dataType ?? 0);
    if (!dtype || dtype === 'string') continue;
    if (p.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (p.externalData?.length ?? 0) > 0)
      throw new Error(`initializer ${JSON.stringify(p.name)} of ${opts.file} already uses external data`);
    const shape = (p.dims ?? []).map(Number);
    const raw = p.rawData && p.rawData.length > 0 ? p.rawData : undefined;
    const bytes = raw ?? encodeRaw(tensorFromProto(p, { file: opts.file }).load());
    items.push({ name: p.name ?? '', dtype: dtype as NumericDType, shape, bytes });
    moved.push(p);
  }
  const weights = encodeSafetensorsRaw(items, opts.metadata ?? {});
  const where = new Map(weights.entries.map((e) => [e.name, e]));
  for (const p of moved) {
    const e = where.get(p.name ?? '')!;
    for (const k of ['rawData', 'floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data', 'stringData'] as const) delete (p as Record<string, unknown>)[k];
    p.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    p.externalData = [
      { key: 'location', value: DEVICE_WEIGHTS_FILE },
      { key: 'offset', value: String(e.offset) },
      { key: 'length', value: String(e.length) },
    ];
  }
  return { model: onnx.ModelProto.encode(proto).finish(), weights };
}

