import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDirAtomic } from '../../src/bundle/atomic-dir.js';
import { UserError } from '../../src/ir/errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-atomic-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

const files = [
  { path: 'manifest.json', parts: [enc('{"format":"shardc-bundle"}')] },
  { path: 'device-0/model.onnx', parts: [enc('ab'), enc('cd')] },
];

describe('writeDirAtomic', () => {
  it('writes every file, creating missing parents', () => {
    const out = join(tmp, 'a', 'b', 'out');
    writeDirAtomic(out, files);
    expect(readFileSync(join(out, 'device-0', 'model.onnx'), 'utf8')).toBe('abcd');
    expect(readdirSync(join(tmp, 'a', 'b'))).toEqual(['out']);
  });

  it('leaves nothing behind when a write fails midway (new target)', () => {
    const out = join(tmp, 'x', 'out');
    expect(() =>
      writeDirAtomic(out, files, {
        beforeFile: (p) => {
          if (p === 'device-0/model.onnx') throw new Error('disk full');
        },
      }),
    ).toThrow('disk full');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('leaves an existing target untouched when a write fails, and replaces it on success', () => {
    const out = join(tmp, 'out');
    writeDirAtomic(out, [{ path: 'manifest.json', parts: [enc('old')] }, { path: 'old.txt', parts: [enc('1')] }]);
    expect(() => writeDirAtomic(out, files, { force: true, beforeRename: () => { throw new Error('killed'); } })).toThrow('killed');
    expect(readdirSync(out).sort()).toEqual(['manifest.json', 'old.txt']);
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe('old');
    expect(readdirSync(tmp)).toEqual(['out']);
    writeDirAtomic(out, files, { force: true });
    expect(readdirSync(out).sort()).toEqual(['device-0', 'manifest.json']);
    expect(readdirSync(tmp)).toEqual(['out']);
  });

  it('refuses a non-empty directory unless it is replaceable or forced, and a plain file', () => {
    const out = join(tmp, 'mine');
    mkdirSync(out);
    writeFileSync(join(out, 'notes.txt'), 'keep me');
    expect(() => writeDirAtomic(out, files, { what: 'bundle' })).toThrow(UserError);
    expect(() => writeDirAtomic(out, files, { what: 'bundle' })).toThrow(/refusing to overwrite a directory that is not a shardc bundle \(use --force/);
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('keep me');
    writeDirAtomic(out, files, { isReplaceable: () => true });
    expect(existsSync(join(out, 'notes.txt'))).toBe(false);
    const f = join(tmp, 'file');
    writeFileSync(f, 'x');
    expect(() => writeDirAtomic(f, files, { force: true })).toThrow(/exists and is not a directory/);
    // An empty directory is fine.
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    writeDirAtomic(empty, files);
    expect(readFileSync(join(empty, 'manifest.json'), 'utf8')).toBe('{"format":"shardc-bundle"}');
  });

  it('a file system refusal is a user error naming the target, and leaves nothing', () => {
    const f = join(tmp, 'plain-file');
    writeFileSync(f, 'x');
    expect(() => writeDirAtomic(join(f, 'sub', 'out'), files, { what: 'bundle' })).toThrow(/plain-file\/sub\/out: cannot write the bundle \(ENOTDIR\)/);
    expect(readdirSync(tmp)).toEqual(['plain-file']);
  });

  it('rejects paths that leave the directory', () => {
    expect(() => writeDirAtomic(join(tmp, 'o'), [{ path: '../evil', parts: [] }])).toThrow(/not a plain relative path/);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
