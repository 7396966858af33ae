/**
 * The hostile-input suite (issue 8): every row of scripts/gen-hostile.ts goes through `inspect`,
 * `partition --mesh tp=2 --out X` and `run`, in-process. Each must exit 1 with exactly one
 * `shardc: ` line that names the model file and the reason, print no stack trace, write nothing
 * (the bundle / output folder stays absent) and leave Object.prototype untouched.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HOSTILE_CASES, writeHostileCase } from '../../scripts/gen-hostile.js';
import { cli } from '../bundle/cli-helper.js';

let root: string;
let inputs: string;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-hostile-'));
  inputs = path.join(root, 'empty-inputs');
  fs.mkdirSync(inputs);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function expectPrototypeClean(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
}
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

it('the table has the cases issue 8 asks for', () => {
  expect(HOSTILE_CASES.length).toBeGreaterThanOrEqual(50);
  expect(new Set(HOSTILE_CASES.map((c) => c.name)).size).toBe(HOSTILE_CASES.length);
});

describe.each(HOSTILE_CASES.map((c) => [c.name, c] as const))('%s', (name, c) => {
  let file: string;
  beforeAll(() => {
    file = writeHostileCase(c, path.join(root, name));
  });

  /** One line `shardc: <file>: ... <reason>`, exit 1, nothing on stdout, no stack. */
  function expectRejected(r: { code: number; stdout: string; stderr: string }): void {
    const lines = r.stderr.trimEnd().split('\n');
    expect({ code: r.code, lines: lines.length }).toEqual({ code: 1, lines: 1 });
    expect(lines[0]).toMatch(/^shardc: /);
    expect(lines[0]).toMatch(new RegExp(escapeRegExp(file)));
    expect(lines[0]).toMatch(c.message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout).toBe('');
    expectPrototypeClean();
  }

  it('inspect', async () => {
    const r = await cli('inspect', file);
    if (c.inspectReports) {
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(c.inspectReports);
      expectPrototypeClean();
    } else expectRejected(r);
  });

  it('partition --mesh tp=2 writes nothing', async () => {
    const out = path.join(root, `${name}.bundle`);
    expectRejected(await cli('partition', file, '--mesh', 'tp=2', '--out', out));
    expect(fs.existsSync(out)).toBe(false);
    // No temporary folder (`.<name>.bundle.tmp-*`) left beside the target either.
    expect(fs.readdirSync(root).filter((f) => f.includes(`${name}.bundle`) || f.includes('.shardc-tmp'))).toEqual([]);
  });

  it('run writes nothing', async () => {
    const out = path.join(root, `${name}.outputs`);
    expectRejected(await cli('run', file, '--inputs', inputs, '--outputs', out));
    expect(fs.existsSync(out)).toBe(false);
  });
});
