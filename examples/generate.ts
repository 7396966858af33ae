/**
 * Writes the example models that shardc ships (deterministic: the same bytes every run).
 *   npx tsx examples/generate.ts
 * The outputs are checked in; test/examples checks that they are up to date.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bertModel, gptModel, llamaModel } from './models/transformers.js';

export const EXAMPLE_MODELS = {
  'gpt-tiny.onnx': () => gptModel().encode(),
  'bert-tiny.onnx': () => bertModel().encode(),
  'llama-tiny.onnx': () => llamaModel().encode(),
};

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [name, make] of Object.entries(EXAMPLE_MODELS)) {
    const bytes = make();
    writeFileSync(join(here, name), bytes);
    console.log(`wrote examples/${name} (${bytes.length} bytes)`);
  }
}
