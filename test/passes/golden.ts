/**
 * Golden baselines under test/golden/. A test compares its text with the checked-in file;
 * `SHARDC_ACCEPT=1 npx jest test/passes test/ir` rewrites the files (review the diff, then commit).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const GOLDEN_DIR = path.join(__dirname, '..', 'golden');

export function expectGolden(name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env.SHARDC_ACCEPT === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    return;
  }
  if (!fs.existsSync(file)) throw new Error(`golden file ${name} is missing: run SHARDC_ACCEPT=1 npx jest to create it`);
  const expected = fs.readFileSync(file, 'utf8');
  if (expected !== actual) {
    // toBe shows a readable diff.
    expect({ golden: name, text: actual }).toEqual({ golden: name, text: expected });
  }
}
