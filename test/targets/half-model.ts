/**
 * Test helper: a float16 or bfloat16 copy of a float32 model (the cuda half-precision tests use
 * the GPT-like example this way; examples/models/transformers.ts has no dtype option). Every
 * float32 initializer, Constant tensor, value type and Cast target becomes the narrow type
 * (values rounded to nearest-even as Tensor.from does); integer tensors stay as they are.
 */
import { writeFileSync } from 'node:fs';
import type { DType } from '../../src/ir/dtype.js';
import type { Graph } from '../../src/ir/graph.js';
import { LazyTensor, Tensor } from '../../src/ir/tensor.js';
import { exportModel } from '../../src/onnx/export.js';
import { loadModel } from '../../src/onnx/import.js';

export type HalfDType = 'float16' | 'bfloat16';

const ONNX_CODE: Record<string, number> = { float32: 1, float16: 10, bfloat16: 16 };

function narrow(t: Tensor, to: HalfDType): Tensor {
  return t.dtype === 'float32' ? Tensor.from(to, t.shape, t.data as Float32Array) : t;
}

/** `graph` with float32 replaced by `to` everywhere (in place; returns it). */
export function toHalfGraph(graph: Graph, to: HalfDType): Graph {
  const seen = new Set<object>();
  const visit = (g: Graph): void => {
    const values = [...g.inputs, ...g.outputs, ...g.initializers, ...g.nodes.flatMap((n) => [...n.inputs.filter((v) => v !== null), ...n.outputs])];
    for (const v of values) {
      if (seen.has(v)) continue;
      seen.add(v);
      if (v.dtype === 'float32') v.dtype = to;
      if (v.constant && v.constant.dtype === 'float32') v.constant = LazyTensor.of(narrow(v.constant.load(), to));
    }
    for (const n of g.nodes) {
      if (n.op === 'Constant') {
        const a = n.attrs.get('value');
        if (a?.kind === 'tensor' && a.value.dtype === 'float32') n.attrs.set('value', { kind: 'tensor', value: LazyTensor.of(narrow(a.value.load(), to)) });
      }
      if (n.op === 'Cast' && n.attrs.get('to')?.value === ONNX_CODE.float32) n.attrs.set('to', { kind: 'int', value: ONNX_CODE[to]! });
      if (n.op === 'ConstantOfShape') {
        const a = n.attrs.get('value');
        if (a?.kind === 'tensor' && a.value.dtype === 'float32') n.attrs.set('value', { kind: 'tensor', value: LazyTensor.of(narrow(a.value.load(), to)) });
      }
    }
  };
  visit(graph);
  return graph;
}

/** Writes a `to` copy of the float32 model at `src` to `dst` (ONNX). */
export function writeHalfModel(src: string, dst: string, to: HalfDType): void {
  writeFileSync(dst, exportModel(toHalfGraph(loadModel(src).graph, to)));
}
