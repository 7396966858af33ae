/**
 * The terminal experience (issue 9): every command's --help has an "Examples:" section; progress
 * bars appear on stderr only when stderr is a TTY and never with --json or --quiet; colour appears
 * only on a TTY and never with NO_COLOR or --json. The CLI runs in-process (main()) with output
 * objects that say whether they are a TTY, so nothing here depends on how jest was started.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { type Output, ROOT_HELP_EXAMPLES } from '../../src/cli/context.js';
import { createStyle, paintReport, stripAnsi } from '../../src/cli/style.js';
import { timeRuns } from '../../src/bench/stats.js';
import { partitionModel } from '../../src/index.js';

const ROOT = join(__dirname, '..', '..');
const GPT = join(ROOT, 'examples', 'gpt-tiny.onnx');
const NODE_TESTS = join(ROOT, '..', 'shared', 'onnx-node-tests');
const COMMANDS = ['inspect', 'partition', 'run', 'verify', 'explain', 'conformance', 'demo', 'bench'];
const ESC = '\x1b[';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs shardc in-process; `tty` says which of the outputs are terminals. */
async function cli(argv: string[], tty: { stdout?: boolean; stderr?: boolean } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = (isTTY: boolean, add: (s: string) => void): Output => ({ write: add, isTTY, columns: 100 });
  const code = await main(argv, {
    packageRoot: ROOT,
    stdout: out(!!tty.stdout, (s) => void (stdout += s)),
    stderr: out(!!tty.stderr, (s) => void (stderr += s)),
  });
  return { code, stdout, stderr };
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-terminal-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('help', () => {
  test.each(COMMANDS)('shardc %s --help exits 0 with an Examples: section of shardc command lines', async (cmd) => {
    const r = await cli([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^Usage: shardc ${cmd} `));
    const examples = r.stdout.slice(r.stdout.indexOf('\nExamples:\n'));
    expect(examples).toMatch(/^\nExamples:\n/);
    const lines = examples.split('\n').filter((l) => l.startsWith('  $ '));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(new RegExp(`^  \\$ shardc (--quiet )?${cmd}( |$)`));
  });

  test('shardc --help ends with examples and the exit codes', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(ROOT_HELP_EXAMPLES);
    expect(r.stdout).toMatch(/Exit codes: 0 done, 1 bad input, 2 internal error .*, 3 verification mismatch/);
  });
});

describe('progress bars', () => {
  const partitionArgs = (out: string): string[] => ['partition', GPT, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', out];

  test('partition on a TTY draws bars on stderr (weights read, bytes written) and clears them; stdout stays plain', async () => {
    const r = await cli(partitionArgs(join(tmp, 'tty')), { stderr: true });
    expect(r.code).toBe(0);
    const drawn = stripAnsi(r.stderr);
    expect(drawn).toMatch(/reading weights \[[█░]{30}\] \d+% \d \/ 2/);
    expect(drawn).toMatch(/writing bundle \[[█░]{30}\] \d+% [\d.]+ [KM]?i?B \/ [\d.]+ [KM]iB/);
    expect(drawn).toContain('writing bundle [██████████████████████████████] 100%');
    // Cleared at the end: the cursor is shown again and the bar's line erased.
    expect(r.stderr).toMatch(/\x1b\[\?25h[^█░]*\x1b\[2K$/);
    expect(r.stdout).toMatch(/^wrote bundle .*tty \(2 devices, 6 collectives\)\nmanifest sha256 [0-9a-f]{64}\n$/);
  });

  test('no bars when stderr is not a TTY, with --json, or with --quiet', async () => {
    const plain = await cli(partitionArgs(join(tmp, 'plain')));
    expect(plain.stderr).toBe('');
    const json = await cli([...partitionArgs(join(tmp, 'json')), '--json'], { stdout: true, stderr: true });
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)).toMatchObject({ devices: 2, collectives: 6 });
    const quiet = await cli(['--quiet', ...partitionArgs(join(tmp, 'quiet'))], { stderr: true });
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toMatch(/^\S+quiet [0-9a-f]{64}\n$/);
  });

  test('partitionModel onProgress: devices read, then every byte of the bundle written', () => {
    const events: [number, number, string][] = [];
    const out = join(tmp, 'lib');
    partitionModel(GPT, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out, shardcVersion: 't', onProgress: (d, t, l) => void events.push([d, t, l]) });
    const reads = events.filter((e) => e[2] === 'reading weights');
    expect(reads).toEqual([[0, 2, 'reading weights'], [1, 2, 'reading weights'], [2, 2, 'reading weights']]);
    const writes = events.filter((e) => e[2] === 'writing bundle');
    const onDisk = (dir: string): number =>
      readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? onDisk(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
    const total = onDisk(out);
    expect(writes[0]).toEqual([0, total, 'writing bundle']);
    expect(writes[writes.length - 1]).toEqual([total, total, 'writing bundle']);
    for (let i = 1; i < writes.length; i++) expect(writes[i]![0]).toBeGreaterThanOrEqual(writes[i - 1]![0]);
    expect(events.length).toBe(reads.length + writes.length);
  });

  test('conformance on a TTY: a bar of tests, the result lines above it', async () => {
    const r = await cli(['conformance', NODE_TESTS, '--filter', '^test_(add|abs)$'], { stderr: true });
    expect(r.code).toBe(0);
    expect(stripAnsi(r.stderr)).toMatch(/tests \[[█░]{30}\] \d+% [012] \/ 2/);
    expect(r.stdout).toBe('pass test_abs\npass test_add\n2 tests: 2 pass, 0 fail, 0 unsupported\n');
  });

  test('timeRuns reports warm-up and timed runs between runs', async () => {
    const seen: string[] = [];
    let runs = 0;
    const { times } = await timeRuns(async () => ++runs, 2, 3, (d, t, l) => void seen.push(`${d}/${t} ${l}`));
    expect(times).toHaveLength(3);
    expect(seen).toEqual(['0/5 runs', '1/5 runs', '2/5 runs', '3/5 runs', '4/5 runs', '5/5 runs']);
  });
});

describe('colour', () => {
  const verifyArgs = ['verify', GPT, '--dim', 'batch=1,sequence=4'];
  const withEnv = async <T>(env: Record<string, string | undefined>, f: () => Promise<T>): Promise<T> => {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
    try {
      return await f();
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };

  test('verify on a TTY: a bold heading and green ok; the same text without the codes', async () => {
    const coloured = await withEnv({ NO_COLOR: undefined, FORCE_COLOR: undefined }, () => cli(verifyArgs, { stdout: true }));
    const plain = await withEnv({ NO_COLOR: undefined, FORCE_COLOR: undefined }, () => cli(verifyArgs));
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toMatch(/^\x1b\[1m.*gpt-tiny\.onnx: cpu vs onnxruntime-node .*\x1b\[22m\n/);
    expect(coloured.stdout).toContain(`  ${ESC}32mok${ESC}39m logits float32[1,4,96] max |diff|`);
    expect(plain.stdout).not.toContain(ESC);
    expect(stripAnsi(coloured.stdout)).toBe(plain.stdout);
  });

  test('NO_COLOR and --json turn colour off on a TTY', async () => {
    const noColor = await withEnv({ NO_COLOR: '1' }, () => cli(verifyArgs, { stdout: true }));
    expect(noColor.code).toBe(0);
    expect(noColor.stdout).toMatch(/\n  ok logits /);
    expect(noColor.stdout).not.toContain(ESC);
    const json = await withEnv({ NO_COLOR: undefined }, () => cli([...verifyArgs, '--json'], { stdout: true, stderr: true }));
    expect(json.stdout).not.toContain(ESC);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true });
  });

  test('paintReport colours result words by kind and leaves other lines alone', () => {
    const style = createStyle({ write: () => {}, isTTY: true }, { env: {} });
    const lines = paintReport(style, ['heading', '  ok a', '  MISMATCH b: worst', 'unsupported c', '  outputs DIFFER with x', 'okay d']);
    expect(lines).toEqual([
      `${ESC}1mheading${ESC}22m`,
      `  ${ESC}32mok${ESC}39m a`,
      `  ${ESC}31mMISMATCH${ESC}39m b: worst`,
      `${ESC}33munsupported${ESC}39m c`,
      `  outputs ${ESC}31mDIFFER${ESC}39m with x`,
      'okay d',
    ]);
    expect(createStyle({ write: () => {}, isTTY: false }, { env: {} }).enabled).toBe(false);
    expect(createStyle({ write: () => {}, isTTY: false }, { env: { FORCE_COLOR: '1' } }).enabled).toBe(true);
    expect(createStyle({ write: () => {}, isTTY: true }, { env: { NO_COLOR: '1' } }).enabled).toBe(false);
    expect(createStyle({ write: () => {}, isTTY: true }, { json: true, env: {} }).enabled).toBe(false);
  });
});
