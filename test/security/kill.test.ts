/**
 * Atomic bundles under SIGKILL (issue 8, "Atomic output"): `shardc partition` of a generated GPT
 * with ~20 MB of weights runs as a child process (the CLI from source through tsx) and is killed
 * with SIGKILL while it writes, with no bundle at the target and with an older bundle there (tp=1,
 * so old and new differ). After every kill the target is absent, the complete old bundle (same
 * bytes, manifest hashes verified by readBundle) or the complete new one (verified) — never a
 * partial bundle; and the next partition to the same target succeeds and removes what the killed
 * process left beside it (temporary and set-aside directories).
 *
 * Two kinds of kill: (1) at exact moments of the write protocol, by a preload in the child that
 * SIGKILLs its own process right after creating the temporary directory, after writing the first
 * N bytes of the files (mid-file), after the first rename (old bundle set aside, new one not yet
 * in place) and after the second; (2) from outside, by this process, 0, 10 and 40 ms after the
 * temporary directory appears (inotify through fs.watch), as an operator or OOM killer would.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gptModel } from '../../examples/models/transformers.js';
import { recoverInterrupted } from '../../src/bundle/atomic-dir.js';
import { readBundle } from '../../src/bundle/read.js';
import { PACKAGE_ROOT, cli, digestTree } from '../bundle/cli-helper.js';

jest.setTimeout(180_000);

const TSX = pathToFileURL(require.resolve('tsx/esm')).href;
const OUT = 'bundle';

const RUNNER = `
import { main } from ${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src', 'cli', 'main.ts')).href)};
const [model, out, mesh] = process.argv.slice(2);
process.exitCode = await main(['partition', model, '--mesh', mesh, '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', out], { packageRoot: ${JSON.stringify(PACKAGE_ROOT)} });
`;

/**
 * SHARDC_KILL_AT=mkdir | bytes:<n> | rename:<k>: the process SIGKILLs itself right after creating the
 * bundle's temporary directory, after the write that takes the bytes written past n, or after the
 * k-th rename. Patches node:fs and re-syncs the named ES exports the bundle writer imports.
 */
const KILL_AT = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const [what, arg] = (process.env.SHARDC_KILL_AT ?? '').split(':');
const die = () => process.kill(process.pid, 'SIGKILL');
const { mkdirSync, writeSync, renameSync } = fs;
let bytes = 0;
let renames = 0;
fs.mkdirSync = function (p, ...a) {
  const r = mkdirSync.call(this, p, ...a);
  if (what === 'mkdir' && /\\/\\.[^/]*\\.tmp-[^/]*$/.test(String(p))) die();
  return r;
};
fs.writeSync = function (...a) {
  const n = writeSync.apply(this, a);
  bytes += n;
  if (what === 'bytes' && bytes > Number(arg)) die();
  return n;
};
fs.renameSync = function (...a) {
  const r = renameSync.apply(this, a);
  if (what === 'rename' && ++renames === Number(arg)) die();
  return r;
};
syncBuiltinESMExports();
`;

let tmp = '';
let model = '';
/** An older bundle of the same model at tp=1 (copied to the target before a kill), and its digest. */
let oldBundle = '';
let oldDigest: Record<string, string> = {};
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-kill-'));
  writeFileSync(join(tmp, 'runner.mjs'), RUNNER);
  writeFileSync(join(tmp, 'kill-at.mjs'), KILL_AT);
  model = join(tmp, 'gpt-6l.onnx');
  // ~3.7M parameters (15 MB): the device files take tens of milliseconds to write and fsync.
  writeFileSync(model, gptModel({ vocab: 2048, hidden: 256, heads: 4, layers: 4, ffn: 1024, maxSeq: 64, opset: 17, seed: 11 }).encode());
  oldBundle = join(tmp, 'old-bundle');
  const r = await cli('partition', model, '--mesh', 'tp=1', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', oldBundle);
  expect(r.code).toBe(0);
  oldDigest = digestTree(oldBundle);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Killed {
  /** How the child ended: the signal (SIGKILL) or exit code. */
  ended: string;
  /** Names beside the target after the kill (leftovers of the killed process). */
  leftovers: string[];
}

/**
 * Runs the partition child in `dir` (target `dir/bundle`, mesh tp=2). `killAt`: the preload's
 * moment; `afterTmpMs`: SIGKILL from here that long after the temporary directory appears.
 */
function partitionAndKill(dir: string, opts: { killAt?: string; afterTmpMs?: number }): Promise<Killed> {
  const args = ['--import', TSX, ...(opts.killAt ? ['--import', pathToFileURL(join(tmp, 'kill-at.mjs')).href] : []), join(tmp, 'runner.mjs'), model, OUT, 'tp=2'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, SHARDC_KILL_AT: opts.killAt ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    let timer: NodeJS.Timeout | undefined;
    const watcher =
      opts.afterTmpMs === undefined
        ? undefined
        : watch(dir, (_event, name) => {
            if (timer || !name?.startsWith(`.${OUT}.tmp-`)) return;
            timer = setTimeout(() => child.kill('SIGKILL'), opts.afterTmpMs);
          });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      watcher?.close();
      if (timer) clearTimeout(timer);
      const leftovers = readdirSync(dir).filter((n) => n.startsWith(`.${OUT}.`)).sort();
      if (code !== null && code !== 0) reject(new Error(`partition exited ${code}:\n${log}`));
      else resolve({ ended: signal ?? `exit ${code}`, leftovers });
    });
  });
}

/** What is at the target: nothing, the old bundle (same bytes), or the new one (complete, tp=2). */
function stateOf(target: string, old?: Record<string, string>): 'absent' | 'old' | 'new' {
  if (!existsSync(target)) return 'absent';
  const b = readBundle(target); // checks every file against the manifest's SHA-256
  if (old && JSON.stringify(digestTree(target)) === JSON.stringify(old)) return 'old';
  expect(b.manifest.mesh.spec).toBe('tp=2');
  expect(b.manifest.files.length).toBeGreaterThanOrEqual(8);
  return 'new';
}

/** The next partition (in-process) succeeds, and no leftover of the killed one remains. */
async function partitionAgain(dir: string): Promise<void> {
  const r = await cli('partition', model, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', join(dir, OUT));
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(stateOf(join(dir, OUT))).toBe('new');
  expect(readdirSync(dir)).toEqual([OUT]);
}

/** A fresh folder, with the older bundle (tp=1) at the target when `withOld`; returns its digest. */
function scenario(name: string, withOld: boolean): { dir: string; old?: Record<string, string> } {
  const dir = join(tmp, name);
  mkdirSync(dir);
  if (!withOld) return { dir };
  cpSync(oldBundle, join(dir, OUT), { recursive: true });
  return { dir, old: oldDigest };
}

describe('a partition killed at a moment of the write protocol', () => {
  // [moment, previous bundle?, expected state at the target, leftovers of the killed process]
  const CASES: [string, boolean, 'absent' | 'old' | 'new', RegExp[]][] = [
    ['mkdir', false, 'absent', [/^\.bundle\.tmp-/]],
    ['bytes:3000000', false, 'absent', [/^\.bundle\.tmp-/]],
    ['rename:1', false, 'new', []],
    ['mkdir', true, 'old', [/^\.bundle\.tmp-/]],
    ['bytes:3000000', true, 'old', [/^\.bundle\.tmp-/]],
    // Between the two renames the old bundle is set aside and the target is missing; the next
    // write renames the old bundle back before anything else.
    ['rename:1', true, 'absent', [/^\.bundle\.old-/, /^\.bundle\.tmp-/]],
    ['rename:2', true, 'new', [/^\.bundle\.old-/]],
  ];

  // The killed children run concurrently; each case then checks its own folder.
  const runs = new Map<(typeof CASES)[number], { dir: string; old?: Record<string, string>; k: Killed }>();
  beforeAll(async () => {
    await Promise.all(
      CASES.map(async (c) => {
        const { dir, old } = scenario(`at-${c[0].replace(':', '-')}-${c[1] ? 'old' : 'none'}`, c[1]);
        runs.set(c, { dir, old, k: await partitionAndKill(dir, { killAt: c[0] }) });
      }),
    );
  }, 120_000);

  it.each(CASES)('at %s (previous bundle: %s) leaves %s at the target; the next partition succeeds', async (...c) => {
    const [, withOld, want, leftovers] = c;
    const { dir, old, k } = [...runs].find(([key]) => key.every((x, i) => x === c[i]))![1];
    expect(k.ended).toBe('SIGKILL');
    expect(stateOf(join(dir, OUT), old)).toBe(want);
    expect(k.leftovers.length).toBe(leftovers.length);
    leftovers.forEach((re, i) => expect(k.leftovers[i]).toMatch(re));
    if (want === 'absent' && withOld) {
      // What the next write does first: the old bundle goes back to the target, leftovers go.
      recoverInterrupted(join(dir, OUT));
      expect(stateOf(join(dir, OUT), old)).toBe('old');
      expect(readdirSync(dir)).toEqual([OUT]);
    }
    await partitionAgain(dir);
  });
});

describe('a partition killed from outside while it writes', () => {
  it.each([
    [0, false],
    [0, true],
    [25, true],
  ])('SIGKILL %i ms after the temporary directory appears (previous bundle: %s): no partial bundle', async (ms, withOld) => {
    const { dir, old } = scenario(`ext-${ms}-${withOld ? 'old' : 'none'}`, withOld);
    const k = await partitionAndKill(dir, { afterTmpMs: ms });
    const state = stateOf(join(dir, OUT), old);
    if (k.ended === 'SIGKILL') {
      // Killed while writing (or between renames): the target is as it was, or complete.
      expect(withOld ? ['old', 'absent', 'new'] : ['absent', 'new']).toContain(state);
      if (state === 'absent' && withOld) expect(k.leftovers.some((n) => n.startsWith('.bundle.old-'))).toBe(true);
    } else expect(state).toBe('new'); // finished before the signal
    if (ms === 0) {
      expect(k.ended).toBe('SIGKILL');
      expect(k.leftovers.some((n) => n.startsWith('.bundle.tmp-'))).toBe(true); // it really was mid-write
    }
    await partitionAgain(dir);
  });
});

describe('recoverInterrupted', () => {
  it('repairs only what processes that no longer run left; a running writer\'s directories stay', () => {
    const dir = join(tmp, 'recover');
    mkdirSync(dir);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // has exited
    const live = process.pid;
    for (const n of [`.${OUT}.tmp-${dead}-a1-b2`, `.${OUT}.old-${dead}-a1-b2`, `.${OUT}.tmp-${live}-c3-d4`, `.other.tmp-${dead}-a1-b2`, `.${OUT}.tmp-notapid`]) mkdirSync(join(dir, n));
    writeFileSync(join(dir, `.${OUT}.old-${dead}-a1-b2`, 'manifest.json'), 'old');
    recoverInterrupted(join(dir, OUT));
    // The missing target got the old directory back; the dead writer's temp went; the rest stayed.
    expect(readdirSync(dir).sort()).toEqual([`.${OUT}.tmp-${live}-c3-d4`, `.${OUT}.tmp-notapid`, `.other.tmp-${dead}-a1-b2`, OUT].sort());
    expect(readdirSync(join(dir, OUT))).toEqual(['manifest.json']);
  });
});
