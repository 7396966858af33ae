import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadModel } from '../../src/onnx/import.js';
import { model, node, onnx, userError, valueInfo } from './proto-helpers.js';

let root: string;
let n = 0;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-ext-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A fresh model folder with `weights.bin` = float32 [1..8] and a model whose initializer w uses `entries`. */
function setup(entries: Record<string, string> | [string, string][], dims = [4]): { dir: string; file: string } {
  const dir = path.join(root, `m${n++}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).buffer));
  const externalData = (Array.isArray(entries) ? entries : Object.entries(entries)).map(([key, value]) => ({ key, value }));
  const bytes = model({
    node: [node('Add', ['x', 'w'], ['y'])],
    input: [valueInfo('x', 1, [4])],
    initializer: [{ name: 'w', dims, dataType: 1, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData }],
    output: [valueInfo('y', 1, [4])],
  });
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(file, bytes);
  return { dir, file };
}

const w = (file: string) => loadModel(file).graph.initializers.find((v) => v.name === 'w')!;

describe('external data', () => {
  it('reads the referenced range lazily', () => {
    const { file, dir } = setup({ location: 'weights.bin', offset: '16', length: '16' });
    const v = w(file);
    expect(v.constant!.loaded).toBe(false);
    expect(v.constant!.location).toMatchObject({ kind: 'external', offset: 16, length: 16, path: fs.realpathSync(path.join(dir, 'weights.bin')) });
    expect(v.constant!.load().toArray()).toEqual([5, 6, 7, 8]);
  });

  it('without offset/length the whole file must be the tensor; subfolders are fine', () => {
    const { file, dir } = setup({ location: 'sub/w.bin' }, [2]);
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'w.bin'), Buffer.from(Float32Array.from([9, 10]).buffer));
    expect(w(file).constant!.load().toArray()).toEqual([9, 10]);
    const whole = setup({ location: 'weights.bin' }, [4]);
    expect(userError(() => w(whole.file)).message).toMatch(/32 bytes after offset 0, but the tensor needs 16/);
  });

  it.each([
    ['/etc/passwd', /must be a relative path/],
    ['C:\\weights.bin', /must be a relative path/],
    ['C:weights.bin', /must be a relative path/],
    ['\\\\server\\share\\weights.bin', /must be a relative path/],
    ['../weights.bin', /must not contain '\.\.'/],
    ['sub/../../weights.bin', /must not contain '\.\.'/],
    ['sub\\..\\weights.bin', /must not contain '\.\.'/],
    ['', /location is empty/],
    ['missing.bin', /does not exist/],
  ])('rejects location %j', (location, re) => {
    const { file } = setup({ location, offset: '0', length: '16' });
    const e = userError(() => w(file));
    expect(e.message).toMatch(re);
    expect(e.message).toContain(file);
    expect(e.message).toContain('tensor "w"');
  });

  it('rejects a symlinked file, a symlinked folder leading outside, and a hard link', () => {
    const outside = path.join(root, 'secret.bin');
    fs.writeFileSync(outside, Buffer.alloc(16));
    const a = setup({ location: 'link.bin', length: '16' });
    fs.symlinkSync(path.join(a.dir, 'weights.bin'), path.join(a.dir, 'link.bin'));
    expect(userError(() => w(a.file)).message).toMatch(/symbolic link/);
    const b = setup({ location: 'out/secret.bin', length: '16' });
    fs.symlinkSync(root, path.join(b.dir, 'out'));
    expect(userError(() => w(b.file)).message).toMatch(/resolves outside the model's folder/);
    const c = setup({ location: 'hard.bin', length: '16' });
    fs.linkSync(outside, path.join(c.dir, 'hard.bin'));
    expect(userError(() => w(c.file)).message).toMatch(/hard link/);
  });

  it('rejects unknown, duplicate and prototype-polluting keys', () => {
    expect(userError(() => w(setup({ location: 'weights.bin', length: '16', sha: 'x' }).file)).message).toMatch(/unknown external data key "sha"/);
    expect(userError(() => w(setup([['location', 'weights.bin'], ['__proto__', 'x']]).file)).message).toMatch(/unknown external data key "__proto__"/);
    expect(userError(() => w(setup([['location', 'weights.bin'], ['location', 'weights.bin']]).file)).message).toMatch(/given twice/);
    expect(userError(() => w(setup({ offset: '0' }).file)).message).toMatch(/no location/);
  });

  it.each([
    [{ offset: '-4', length: '16' }, /offset "-4" is not a non-negative integer/],
    [{ offset: '0x10', length: '16' }, /offset "0x10"/],
    [{ offset: '1e1', length: '16' }, /offset "1e1"/],
    [{ offset: '0', length: ' 16' }, /length " 16"/],
    [{ offset: '24', length: '16' }, /offset 24 \+ length 16 exceeds the file size \(32 bytes\)/],
    [{ offset: '40', length: '16' }, /offset 40 is past the end/],
    [{ offset: '0', length: '12' }, /length 12 does not match the tensor's 16 bytes/],
  ])('rejects offset/length %j', (kv, re) => {
    expect(userError(() => w(setup({ location: 'weights.bin', ...kv }).file)).message).toMatch(re);
  });

  it('a 32-byte file claiming a petabyte fails at import without allocating', () => {
    const { file } = setup({ location: 'weights.bin', offset: '0', length: String(2 ** 50) }, [2 ** 48]);
    const before = process.memoryUsage().rss;
    expect(userError(() => w(file)).message).toMatch(/exceeds the file size \(32 bytes\)/);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 2 ** 20);
  });

  it('a file that shrinks after import fails on load with a user error', () => {
    const { file, dir } = setup({ location: 'weights.bin', offset: '16', length: '16' });
    const v = w(file);
    fs.truncateSync(path.join(dir, 'weights.bin'), 8);
    expect(userError(() => v.constant!.load()).message).toMatch(/shrank/);
  });
});
