/**
 * Running a generated host module (src/codegen/host/generate.ts) in tests. Jest runs tests as
 * CommonJS in a VM context where `import()` of a file is unavailable, so `loadHostModule` turns the
 * emitted ES module into CommonJS with esbuild and evaluates it in-process; `runHostModuleInNode`
 * imports the real host.mjs in a child Node process (the ES module exactly as a bundle ships it).
 * `recordingRuntime` is a HostRuntime that records every call; its collectives resolve only after
 * a macrotask, so a generated module that forgot an `await` would record calls out of order.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import { Project, ts } from 'ts-morph';
import { CpuHostMachine } from '../../src/codegen/host/cpu-run.js';
import { generateHostModules, type HostModuleInfo } from '../../src/codegen/host/generate.js';
import { groupCollectiveHost, isLocalCollective, localCollectiveHost } from '../../src/codegen/host/lockstep.js';
import type { CollectiveStep, HostProgram, HostRuntime, HostStep } from '../../src/codegen/host/program.js';
import type { Tensor } from '../../src/ir/tensor.js';

export interface HostModule {
  run(rt: HostRuntime): Promise<void>;
  buffers: Record<string, number>;
  kernels: Record<string, number>;
  target: { device: number; coords: number[]; mesh: string; kernels: string };
}

export function recordingRuntime(): { rt: HostRuntime; calls: HostStep[] } {
  const calls: HostStep[] = [];
  return {
    calls,
    rt: {
      dispatch: (s) => void calls.push(s),
      collective: async (s) => {
        await new Promise((r) => setTimeout(r, 0));
        calls.push(s);
      },
    },
  };
}

/** Evaluates host.js (ES module text) in this process. */
export function loadHostModule(js: string): HostModule {
  const code = transformSync(js, { format: 'cjs', target: 'es2022', loader: 'js' }).code;
  const module = { exports: {} as Record<string, unknown> };
  new Function('module', 'exports', code)(module, module.exports);
  return module.exports as unknown as HostModule;
}

/** Imports host.js as host.mjs in a child `node` and returns the calls `run` made (as JSON). */
export function runHostModuleInNode(js: string): unknown[] {
  const dir = mkdtempSync(join(tmpdir(), 'shardc-host-'));
  try {
    writeFileSync(join(dir, 'host.mjs'), js);
    writeFileSync(
      join(dir, 'driver.mjs'),
      [
        "import { run } from './host.mjs';",
        'const calls = [];',
        'await run({ dispatch: (s) => calls.push(s), collective: async (s) => { await new Promise((r) => setTimeout(r, 0)); calls.push(s); } });',
        'process.stdout.write(JSON.stringify(calls));',
      ].join('\n'),
    );
    return JSON.parse(execFileSync(process.execPath, [join(dir, 'driver.mjs')], { encoding: 'utf8' })) as unknown[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * host.js for a program as shardc writes it (generateHostModules), checked against the TypeScript
 * compiler: it must equal `ts.transpileModule` of the host.ts written beside it, byte for byte, and
 * that must report no syntax errors. The printer in generate.ts replaced that emit; this keeps the
 * compiler the judge of both texts.
 */
export function hostJs(p: HostProgram, info: HostModuleInfo): string {
  const { ts: source, js } = generateHostModules(p, info);
  const emitted = ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, noLib: true, noResolve: true, types: [], newLine: ts.NewLineKind.LineFeed },
    fileName: 'host.ts',
    reportDiagnostics: true,
  });
  if (emitted.diagnostics?.length) throw new Error(`host.ts does not parse: ${ts.flattenDiagnosticMessageText(emitted.diagnostics[0]!.messageText, '\n')}`);
  if (js !== emitted.outputText) throw new Error(`host.js differs from TypeScript's emit of host.ts:\n--- printed\n${js}\n--- emitted\n${emitted.outputText}`);
  return js;
}

/**
 * Type errors of a generated host.ts under strict settings, with `shardc` resolved to the
 * HostRuntime types in src/codegen/host/program.ts (the file is checked in memory, never written).
 */
export function hostModuleDiagnostics(source: string): string[] {
  const root = join(__dirname, '..', '..');
  const project = new Project({
    skipAddingFilesFromTsConfig: true,
    compilerOptions: {
      strict: true,
      noUnusedLocals: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts'],
      types: [],
      noEmit: true,
      skipLibCheck: true,
      paths: { shardc: [join(root, 'src', 'codegen', 'host', 'program.ts')] },
    },
  });
  const sf = project.createSourceFile(join(root, 'test', 'codegen', '__generated_host__.ts'), source);
  return sf.getPreEmitDiagnostics().map((d) => ts.flattenDiagnosticMessageText(d.compilerObject.messageText, '\n'));
}

/**
 * HostRuntimes over the kernel-IR CPU executor (src/codegen/host/cpu-run.ts), one per device
 * program: a dispatch runs the step object it is given on that device's planned slots; a
 * collective waits until every member of its group has called it (same node, op and group), then
 * runs with the CPU runtime's semantics. So running the generated modules of all devices
 * concurrently computes what the programs compute, from the calls alone.
 */
export function cpuHostRuntimes(programs: readonly HostProgram[]): {
  runtimes: HostRuntime[];
  /** Writes a device's input buffer (before running). */
  write(device: number, buffer: number, t: Tensor): void;
  outputs(): Map<string, Tensor>[];
} {
  // Each machine runs the steps it is handed (its program's own steps are not consulted).
  const machines = programs.map((p) => new CpuHostMachine({ ...p, steps: [] }));
  const waiting = new Map<string, { step: CollectiveStep; device: number; input: Tensor; done: () => void }[]>();
  const runtimes = machines.map(
    (m, d): HostRuntime => ({
      dispatch(step) {
        m.program.steps.push(step);
        m.runSteps(m.program.steps.length - 1, m.program.steps.length);
      },
      async collective(step) {
        if (isLocalCollective(step)) return void m.write(step.output, localCollectiveHost(step, m.collectiveInput(step), d));
        if (step.op === 'Send' || step.op === 'Recv') throw new Error(`${step.op} is not supported by the test runtime`);
        const key = JSON.stringify([step.node, step.op, step.group]);
        const here = waiting.get(key) ?? [];
        waiting.set(key, here);
        const arrived = new Promise<void>((done) => here.push({ step, device: d, input: m.collectiveInput(step), done }));
        if (here.length === step.group.length) {
          waiting.delete(key);
          const members = step.group.map((g) => here.find((w) => w.device === g)!);
          const outs = groupCollectiveHost(members.map((w) => w.step), step.group, members.map((w) => w.input));
          members.forEach((w, k) => {
            machines[w.device]!.write(w.step.output, outs[k]!);
            w.done();
          });
        }
        await arrived;
      },
    }),
  );
  return { runtimes, write: (d, id, t) => machines[d]!.write(id, t), outputs: () => machines.map((m) => m.outputs()) };
}
