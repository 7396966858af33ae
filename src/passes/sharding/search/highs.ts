/**
 * The HiGHS MILP solver (npm `highs`, WebAssembly) called synchronously.
 *
 * shardGraph is synchronous, but the `highs` loader is asynchronous (it compiles a 3.5 MB wasm
 * module). So the solver lives in one worker thread, started on the first solve and kept for the
 * process (unref'd: it never keeps the process alive); a solve posts the model text to it and
 * blocks on Atomics.wait until the worker has posted the result back, which is then read with
 * receiveMessageOnPort. The first solve pays the worker start and the wasm compile (about 0.2 s);
 * later ones only the solve.
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
const { port, flag, path } = workerData;
let ready;
port.on('message', async (m) => {
  let out;
  try {
    ready ??= require(path)();
    const h = await ready;
    const r = h.solve(m.lp, m.options);
    const cols = {};
    for (const k of Object.keys(r.Columns || {})) cols[k] = { Primal: r.Columns[k].Primal };
    out = { ok: { Status: r.Status, ObjectiveValue: r.ObjectiveValue, Columns: cols } };
  } catch (e) {
    out = { err: String((e && e.message) || e) };
  }
  port.postMessage(out);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
`;

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
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, flag, path }, transferList: [port2] });
  worker.unref();
  port1.unref();
  return { port: port1, flag };
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
