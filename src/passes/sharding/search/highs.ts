/**
 * The HiGHS MILP solver (npm `highs`, WebAssembly) called synchronously.
 *
 * shardGraph is synchronous, but the `highs` loader is asynchronous (it compiles a 3.5 MB wasm
 * module). So the solver lives in one worker thread, started on the first solve and kept for the
 * process (unref'd: it never keeps the process alive); a solve posts the model text to it and
 * blocks on Atomics.wait until the worker has posted the result back, which is then read with
 * receiveMessageOnPort. startSolver() starts the worker and has it load `highs` ahead of the first
 * solve (auto calls it before planning its presets, so the two overlap).
 *
 * Tiering: V8 runs wasm on its baseline compiler (Liftoff) and recompiles hot functions with
 * TurboFan in the background. HiGHS's functions are large: that recompilation takes about 1.3 s of
 * CPU, and on a busy machine the first solve of gpt-tiny's tp=2 program took 0.4-1.4 s with it
 * against 0.2-0.3 s without (2 shared cores). But Liftoff's code is slower: 0.13 s against 0.08 s
 * per solve of that program once tiered up, 23 s against 15 s for a hard branch and bound. A
 * partition solves one program per mesh axis, so the worker starts with an instance compiled by
 * Liftoff alone (V8's `--liftoff-only` is set while its module is compiled, the tiers being fixed
 * per module when it is created, and restored at once, so wasm compiled later in the process —
 * the interpreter's matmul kernel, ir/ops/matmul-kernel.ts — tiers up as usual). Once its solves
 * have taken TIER_UP_AFTER_MS in all (many meshes, benches, test runs), the recompilation pays for
 * itself, and a second instance, compiled with the default tiers, takes the later solves (rent or
 * buy: never much worse than the better of the two). When the process was started with its own
 * wasm flags (execArgv, NODE_OPTIONS) they are left alone and one instance serves. Both compute
 * the same results (wasm arithmetic is deterministic).
 *
 * The worker is plain CommonJS evaluated from a string (`eval: true`), so it needs no file next to
 * this module and runs the same under tsx, jest and the compiled dist/. It loads `highs` by an
 * absolute path resolved here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';

/** The parts of a HiGHS result the search reads. */
export interface HighsResult {
  Status: string;
  ObjectiveValue: number;
  Columns: Record<string, { Primal?: number }>;
}

export type HighsOptions = Record<string, string | number | boolean>;

const WORKER = `
const { workerData } = require('node:worker_threads');
const v8 = require('node:v8');
const { port, flag, path, liftoff, switchMs } = workerData;
let quick;
let tiered;
let spent = 0;
// The first instance: Liftoff only (see the file comment), from the module's bytes with a custom
// section appended (ignored by the engine), so that V8 compiles them apart from the file's bytes
// that the tiered instance loads (it keeps one compiled module per distinct bytes).
const loadQuick = () => {
  if (quick) return quick;
  if (!liftoff) return (quick = require(path)());
  const fs = require('node:fs');
  const bytes = fs.readFileSync(require('node:path').join(require('node:path').dirname(path), 'highs.wasm'));
  const tag = Buffer.from('shardc.liftoff');
  const binary = Buffer.concat([bytes, Buffer.from([0, tag.length + 1, tag.length]), tag]);
  v8.setFlagsFromString('--liftoff-only');
  quick = new Promise((resolve, reject) => {
    const instantiateWasm = (imports, done) => {
      WebAssembly.instantiate(binary, imports).then((r) => done(r.instance), reject);
      return {};
    };
    require(path)({ instantiateWasm }).then(resolve, reject);
  });
  quick.finally(() => { v8.setFlagsFromString('--no-liftoff-only'); v8.setFlagsFromString('--wasm-dynamic-tiering'); }).catch(() => {});
  return quick;
};
port.on('message', async (m) => {
  if (m.load) return void loadQuick().catch(() => {});
  let out;
  try {
    const h = tiered && spent > switchMs ? await tiered : await loadQuick();
    const t0 = performance.now();
    const r = h.solve(m.lp, m.options);
    spent += performance.now() - t0;
    const cols = {};
    for (const k of Object.keys(r.Columns || {})) cols[k] = { Primal: r.Columns[k].Primal };
    out = { ok: { Status: r.Status, ObjectiveValue: r.ObjectiveValue, Columns: cols } };
  } catch (e) {
    out = { err: String((e && e.message) || e) };
  }
  port.postMessage(out);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  // Past switchMs of solving: the instance with the default tiers, for the later solves.
  if (liftoff && spent > switchMs && !tiered) tiered = require(path)();
});
`;

/** Milliseconds of solving after which the worker moves to an instance that tiers up (see the file comment). */
export const TIER_UP_AFTER_MS = 1500;

interface Solver {
  port: MessagePort;
  flag: Int32Array;
}
let solver: Solver | undefined;

function thisFile(): string {
  const frame = (new Error().stack ?? '').split('\n').find((l) => /highs\.(js|ts)/.test(l));
  const m = frame && /(file:\/\/[^\s)]+?|\/[^\s)]+?)(:\d+)+\)?$/.exec(frame.trim());
  if (!m) return `${process.cwd()}/`;
  return m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!;
}

function start(): Solver {
  // jest runs the sources as CommonJS (`require` exists); as ESM a require is made for this file.
  const req = typeof require === 'function' ? require : createRequire(thisFile());
  const path = req.resolve('highs');
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  // The process's own wasm flags win (see the file comment).
  const liftoff = ![...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => /liftoff|wasm/.test(a));
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, flag, path, liftoff, switchMs: TIER_UP_AFTER_MS }, transferList: [port2] });
  worker.unref();
  port1.unref();
  return { port: port1, flag };
}

/** Starts the solver's worker and has it load `highs` now (no-op when started): the first solve then waits less. */
export function startSolver(): void {
  if (solver) return;
  solver = start();
  solver.port.postMessage({ load: true });
}

/**
 * Solves a model in CPLEX LP format; throws when the solver fails to run (a bug: the model text is
 * ours). The result's Status says whether it is optimal, infeasible or time-limited.
 */
export function solveLp(lp: string, options: HighsOptions): HighsResult {
  solver ??= start();
  const { port, flag } = solver;
  Atomics.store(flag, 0, 0);
  port.postMessage({ lp, options });
  // The worker answers even on error; the timeout only guards against a dead worker.
  const limit = typeof options.time_limit === 'number' ? options.time_limit : 60;
  if (Atomics.wait(flag, 0, 0, (limit + 30) * 1000) === 'timed-out') throw new Error('the highs solver did not answer');
  const msg = receiveMessageOnPort(port)?.message as { ok?: HighsResult; err?: string } | undefined;
  if (!msg) throw new Error('the highs solver gave no result');
  if (msg.err !== undefined) throw new Error(`highs: ${msg.err}`);
  return msg.ok!;
}
