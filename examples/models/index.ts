/** The example models shardc ships, by file name (examples/generate.ts writes them). */
import { cnnModel } from './cnn.js';
import { gptKvModel } from './kv-cache.js';
import { MOE_DENSE_TINY, MOE_TOPK_TINY, moeModel } from './moe.js';
import { bertModel, gptModel, llamaModel } from './transformers.js';

export const EXAMPLE_MODELS: Record<string, () => Uint8Array> = {
  'gpt-tiny.onnx': () => gptModel().encode(),
  'bert-tiny.onnx': () => bertModel().encode(),
  'llama-tiny.onnx': () => llamaModel().encode(),
  'moe-dense-tiny.onnx': () => moeModel(MOE_DENSE_TINY).encode(),
  'moe-topk-tiny.onnx': () => moeModel(MOE_TOPK_TINY).encode(),
  'cnn-tiny.onnx': () => cnnModel().encode(),
  'gpt-kv-tiny.onnx': () => gptKvModel().encode(),
};
