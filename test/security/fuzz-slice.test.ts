/**
 * The fixed-seed slice of the model-reader fuzzer (issue 8 §2) that runs in `npm test`: 300
 * mutants of the example models through import, shape inference and a CPU run, each in a worker
 * under a time limit. Every mutant must end as ok or a UserError: no internal error, hang or
 * crash. The long run is `npx tsx scripts/fuzz.ts --iterations 100000`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkMutant, formatFuzzSummary, loadSeedModels, mutantFor, runFuzz } from '../../src/verify/fuzz.js';

const ROOT = path.join(__dirname, '..', '..');
const WORKER = path.join(ROOT, 'src', 'verify', 'fuzz.ts');
const models = loadSeedModels(
  fs
    .readdirSync(path.join(ROOT, 'examples'))
    .filter((f) => f.endsWith('.onnx'))
    .sort()
    .map((f) => path.join(ROOT, 'examples', f)),
);

describe('mutations', () => {
  it('are a pure function of (seed, iteration)', () => {
    const a = mutantFor(models, 5, 17);
    const b = mutantFor(models, 5, 17);
    expect(a.mutation).toBe(b.mutation);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    const others = [18, 19, 20, 21].map((i) => mutantFor(models, 5, i).mutation);
    expect(new Set([a.mutation, ...others]).size).toBeGreaterThan(1);
  });

  it('change the model', () => {
    for (let i = 0; i < 20; i++) {
      const m = mutantFor(models, 1, i);
      expect(m.mutation).not.toBe('');
      if (!/skipped|nothing to mutate/.test(m.mutation)) expect(Buffer.from(m.bytes).equals(Buffer.from(m.model.bytes))).toBe(false);
    }
  });

  it('the unmutated models run ok', () => {
    for (const m of models) expect({ model: m.name, ...checkMutant(m.bytes, { baseDir: m.baseDir, seed: 0 }) }).toMatchObject({ model: m.name, outcome: 'ok' });
  });

  it('classifies user errors by stage', () => {
    expect(checkMutant(new Uint8Array(0), { baseDir: os.tmpdir(), seed: 0 })).toMatchObject({ outcome: 'user-error', stage: 'import' });
    // A truncated varint (field 1, wire type 0, no value).
    expect(checkMutant(Uint8Array.from([0x08]), { baseDir: os.tmpdir(), seed: 0 })).toMatchObject({ outcome: 'user-error', stage: 'import' });
  });
});

describe('worker', () => {
  it('a hang is a timeout, and the next mutant gets a fresh worker', async () => {
    // A worker module whose serveFuzzWorker never answers the first request.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-fuzz-'));
    const hang = path.join(dir, 'hang.mjs');
    fs.writeFileSync(
      hang,
      `import { parentPort } from 'node:worker_threads';
       export function serveFuzzWorker() {
         parentPort.on('message', (req) => { if (req.id === 0) for (;;) {} parentPort.postMessage({ id: req.id, result: { outcome: 'ok', stage: 'run', message: '' } }); });
         parentPort.postMessage('ready');
       }`,
    );
    try {
      const s = await runFuzz({ models: models.slice(0, 1), iterations: 3, seed: 1, timeoutMs: 1000, workerModule: hang });
      expect(s.counts).toMatchObject({ timeout: 1, ok: 2 });
      expect(s.failures.map((f) => [f.iteration, f.outcome])).toEqual([[0, 'timeout']]);
      expect(s.workerRestarts).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('300 mutants (seed 1): no internal error, hang or crash', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'shardc-fuzz-slice-'));
  try {
    const s = await runFuzz({ models, iterations: 300, seed: 1, timeoutMs: 20_000, outDir: out, workerModule: WORKER });
    if (s.failures.length) process.stderr.write(`${formatFuzzSummary(s).join('\n')}\n`);
    expect(s.failures).toEqual([]);
    expect(s.counts.ok + s.counts['user-error']).toBe(300);
    // The slice reaches every stage: some mutants still run, some fail in inference or the run.
    expect(s.counts.ok).toBeGreaterThan(10);
    expect(Object.keys(s.userErrorsByStage).sort()).toEqual(['import', 'infer', 'run']);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
