/**
 * Writes the example models that shardc ships (deterministic: the same bytes every run).
 *   npx tsx examples/generate.ts
 * The outputs are checked in; test/examples checks that they are up to date.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXAMPLE_MODELS } from './models/index.js';

const here = dirname(fileURLToPath(import.meta.url));
for (const [name, make] of Object.entries(EXAMPLE_MODELS)) {
  const bytes = make();
  writeFileSync(join(here, name), bytes);
  console.log(`wrote examples/${name} (${bytes.length} bytes)`);
}
