/**
 * Deterministic bundles (issue 8, "Deterministic output"): gpt-tiny partitioned at tp=2 (megatron,
 * batch=1, sequence=8) for every target (cpu, wgsl, cuda) by separate `node` processes running the
 * CLI from source (tsx), each in its own working directory with its own copy of the model and
 * relative paths, under different time zones (UTC, Pacific/Chatham +12:45/+13:45, Asia/Kathmandu
 * +5:45) and locales (C, tr_TR with its dotless i, de_DE), with and without SOURCE_DATE_EPOCH, and
 * with a preload that shifts the clock by ~31 years, replaces Math.random by another sequence and
 * reverses every directory listing. Every file of every bundle must be byte-identical; with
 * SOURCE_DATE_EPOCH set, the manifest differs only by its `created` field.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readBundle } from '../../src/bundle/read.js';
import { GPT_TINY, PACKAGE_ROOT, listFiles } from '../bundle/cli-helper.js';

jest.setTimeout(120_000);

const TARGETS = ['cpu', 'wgsl', 'cuda'] as const;
const TSX = pathToFileURL(require.resolve('tsx/esm')).href;

/** The CLI as a process from source: partitions `model` for every target into `<out>/<target>`. */
const RUNNER = `
import { main } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src', 'cli', 'main.ts')).href)};
const [model, out] = process.argv.slice(2);
for (const target of ${JSON.stringify(TARGETS)}) {
  const argv = ['partition', model, '--mesh', 'tp=2', '--strategy', 'megatron', '--target', target, '--dim', 'batch=1,sequence=8', '--out', out + '/' + target];
  const code = await main(argv, { packageRoot: ${JSON.stringify(PACKAGE_ROOT)} });
  if (code !== 0) { process.exitCode = code; break; }
}
`;

/** Perturbs what output must not depend on: the clock, Math.random, directory listing order. */
const PERTURB = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const RealDate = Date;
const SHIFT = 1e12;
globalThis.Date = class extends RealDate {
  constructor(...a) { super(...(a.length ? a : [RealDate.now() + SHIFT])); }
  static now() { return RealDate.now() + SHIFT; }
};
let seed = 987654321;
Math.random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const readdir = fs.readdirSync;
fs.readdirSync = function (...a) { const r = readdir.apply(this, a); return Array.isArray(r) ? r.slice().reverse() : r; };
syncBuiltinESMExports();
`;

interface Env {
  name: string;
  cwd: string;
  tz: string;
  locale: string;
  epoch?: string;
  perturb?: boolean;
}

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-determinism-'));
  writeFileSync(join(tmp, 'runner.mjs'), RUNNER);
  writeFileSync(join(tmp, 'perturb.mjs'), PERTURB);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the runner in `env.cwd` (a fresh folder with its own copy of the model); resolves to its bundles' root. */
function partitionAll(env: Env): Promise<string> {
  mkdirSync(env.cwd, { recursive: true });
  copyFileSync(GPT_TINY, join(env.cwd, 'gpt-tiny.onnx'));
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(LANG|LANGUAGE|LC_.*|TZ|SOURCE_DATE_EPOCH)$/.test(k)) base[k] = v;
  const childEnv = { ...base, TZ: env.tz, LANG: env.locale, LC_ALL: env.locale, ...(env.epoch ? { SOURCE_DATE_EPOCH: env.epoch } : {}) };
  const args = ['--import', TSX, ...(env.perturb ? ['--import', pathToFileURL(join(tmp, 'perturb.mjs')).href] : []), join(tmp, 'runner.mjs'), 'gpt-tiny.onnx', 'bundles'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: env.cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(join(env.cwd, 'bundles')) : reject(new Error(`${env.name}: exit ${code}\n${out}`))));
  });
}

/** Every file of `dir` by path. */
function tree(dir: string): Map<string, Buffer> {
  return new Map(listFiles(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

/** Paths whose bytes differ between two trees (missing on either side included). */
function differences(a: Map<string, Buffer>, b: Map<string, Buffer>): string[] {
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  return paths.filter((p) => !a.has(p) || !b.has(p) || !a.get(p)!.equals(b.get(p)!));
}

describe('partition gives byte-identical bundles for every target', () => {
  let roots: Record<string, string> = {};
  const ENVS = (): Env[] => [
    { name: 'utc-c', cwd: join(tmp, 'a'), tz: 'UTC', locale: 'C' },
    { name: 'chatham-tr-perturbed', cwd: join(tmp, 'b', 'deeper', 'still'), tz: 'Pacific/Chatham', locale: 'tr_TR.UTF-8', perturb: true },
    { name: 'stjohns-de-epoch', cwd: join(tmp, 'c'), tz: 'America/St_Johns', locale: 'de_DE.UTF-8', epoch: '1700000000' },
    { name: 'kathmandu-tr-epoch-perturbed', cwd: join(tmp, 'd d'), tz: 'Asia/Kathmandu', locale: 'tr_TR.UTF-8', epoch: '1700000000', perturb: true },
  ];

  beforeAll(async () => {
    const envs = ENVS();
    const done = await Promise.all(envs.map((e) => partitionAll(e)));
    roots = Object.fromEntries(envs.map((e, i) => [e.name, done[i]!]));
  }, 120_000);

  it.each(TARGETS)('%s: different cwd, time zone, locale, clock, Math.random and readdir order give the same bytes', (target) => {
    const a = tree(join(roots['utc-c']!, target));
    const b = tree(join(roots['chatham-tr-perturbed']!, target));
    expect(a.size).toBeGreaterThanOrEqual(9);
    expect(a.has('device-1/weights.safetensors')).toBe(true);
    if (target === 'wgsl') for (const f of ['kernels.wgsl', 'host.ts', 'host.js', 'host-program.json']) expect(a.has(`device-1/${f}`)).toBe(true);
    if (target === 'cuda') for (const f of ['device-1/kernels.cu', 'device-1/program.txt', 'CMakeLists.txt', 'runtime/host.cpp']) expect(a.has(f)).toBe(true);
    expect(differences(a, b)).toEqual([]);
    // The manifest lists a SHA-256 per file and every file matches it; no timestamp without SOURCE_DATE_EPOCH.
    const loaded = readBundle(join(roots['utc-c']!, target));
    expect(loaded.manifest.created).toBeUndefined();
    expect(loaded.manifest.files.map((f) => f.path).sort()).toEqual([...a.keys()].filter((p) => p !== 'manifest.json').sort());
  });

  it.each(TARGETS)('%s: with SOURCE_DATE_EPOCH the bytes are the same again, and only the manifest records the time', (target) => {
    const c = tree(join(roots['stjohns-de-epoch']!, target));
    const d = tree(join(roots['kathmandu-tr-epoch-perturbed']!, target));
    expect(differences(c, d)).toEqual([]);
    const a = tree(join(roots['utc-c']!, target));
    expect(differences(a, c)).toEqual(['manifest.json']);
    const ma = JSON.parse(a.get('manifest.json')!.toString('utf8')) as Record<string, unknown>;
    const mc = JSON.parse(c.get('manifest.json')!.toString('utf8')) as Record<string, unknown>;
    expect(mc).toEqual({ ...ma, created: '2023-11-14T22:13:20.000Z' });
    expect(readBundle(join(roots['kathmandu-tr-epoch-perturbed']!, target)).manifest.created).toBe('2023-11-14T22:13:20.000Z');
  });

  it('the bundles of different targets share their plan and schedule', () => {
    const plans = TARGETS.map((t) => readFileSync(join(roots['utc-c']!, t, 'plan.json')));
    expect(plans[1]!.equals(plans[0]!)).toBe(true);
    expect(plans[2]!.equals(plans[0]!)).toBe(true);
  });
});
