/** The example models shardc ships, by file name (examples/generate.ts writes them). */
import { bertModel, gptModel, llamaModel } from './transformers.js';

export const EXAMPLE_MODELS: Record<string, () => Uint8Array> = {
  'gpt-tiny.onnx': () => gptModel().encode(),
  'bert-tiny.onnx': () => bertModel().encode(),
  'llama-tiny.onnx': () => llamaModel().encode(),
};
