/**
 * The pass manager. A pass is a typed object `{ name, run(graph, ctx) }` that edits the graph in
 * place and may return whether it changed anything. A PassManager runs an ordered list of passes,
 * optionally verifying the graph after each one (tests always do), and records per-pass timings.
 * User code registers its own passes with `add`, `insertBefore` and `insertAfter`.
 */
import { UserError } from '../ir/errors.js';
import type { Graph } from '../ir/graph.js';
import { createCoreRegistry } from '../ir/ops/index.js';
import type { OpRegistry } from '../ir/registry.js';
import { verifyGraph } from '../ir/verify.js';
import { canonicalizePass } from './canonicalize.js';
import { constantFoldingPass } from './constant-folding.js';
import { deadCodePass } from './dead-code.js';
import { patternsPass } from './patterns.js';
import { shapeInferencePass } from './shape-inference.js';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {} };

export interface PassContext {
  registry: OpRegistry;
  /** Bindings of symbolic dims (`--dim batch=1`). */
  bindings: Record<string, number>;
  logger: Logger;
  /** Free-form options, by convention keyed `<pass-name>.<option>` (e.g. `constant-folding.maxElements`). */
  options: Record<string, unknown>;
}

export interface Pass {
  readonly name: string;
  /** Edits the graph in place; returns whether it changed anything (undefined: unknown). */
  run(graph: Graph, ctx: PassContext): void | boolean;
}

export interface PassTiming {
  name: string;
  ms: number;
  changed?: boolean;
}

export interface PassManagerOptions {
  registry?: OpRegistry;
  bindings?: Record<string, number>;
  logger?: Logger;
  options?: Record<string, unknown>;
  /** Verify the graph before the first pass and after each pass. */
  verifyEach?: boolean;
}

export class PassManager {
  private passes: Pass[] = [];
  readonly ctx: PassContext;
  verifyEach: boolean;
  /** Timings of the latest run. */
  timings: PassTiming[] = [];

  constructor(passes: readonly Pass[] = [], opts: PassManagerOptions = {}) {
    this.ctx = {
      registry: opts.registry ?? createCoreRegistry(),
      bindings: opts.bindings ?? {},
      logger: opts.logger ?? silentLogger,
      options: opts.options ?? {},
    };
    this.verifyEach = opts.verifyEach ?? false;
    for (const p of passes) this.add(p);
  }

  /** Pass names in run order. */
  get names(): string[] {
    return this.passes.map((p) => p.name);
  }

  has(name: string): boolean {
    return this.passes.some((p) => p.name === name);
  }

  private indexOf(name: string): number {
    const i = this.passes.findIndex((p) => p.name === name);
    if (i < 0) throw new UserError(`no pass named ${JSON.stringify(name)} (passes: ${this.names.join(', ')})`);
    return i;
  }

  private checkNew(pass: Pass): void {
    if (!pass.name) throw new UserError('a pass needs a name');
    if (this.has(pass.name)) throw new UserError(`a pass named ${JSON.stringify(pass.name)} is already in the pipeline`);
  }

  add(pass: Pass): this {
    this.checkNew(pass);
    this.passes.push(pass);
    return this;
  }

  insertBefore(name: string, pass: Pass): this {
    this.checkNew(pass);
    this.passes.splice(this.indexOf(name), 0, pass);
    return this;
  }

  insertAfter(name: string, pass: Pass): this {
    this.checkNew(pass);
    this.passes.splice(this.indexOf(name) + 1, 0, pass);
    return this;
  }

  remove(name: string): this {
    this.passes.splice(this.indexOf(name), 1);
    return this;
  }

  /**
   * Runs every pass in order on `graph` (in place). With verifyEach, an invalid input graph is a
   * UserError and a pass that leaves an invalid graph is a bug (Error naming the pass).
   */
  run(graph: Graph): PassTiming[] {
    const { registry, logger } = this.ctx;
    if (this.verifyEach) verifyGraph(graph, registry);
    this.timings = [];
    for (const pass of this.passes) {
      const t0 = performance.now();
      const result = pass.run(graph, this.ctx);
      const ms = performance.now() - t0;
      const timing: PassTiming = { name: pass.name, ms };
      if (typeof result === 'boolean') timing.changed = result;
      this.timings.push(timing);
      logger.debug(`pass ${pass.name}: ${ms.toFixed(1)} ms${result === undefined ? '' : result ? ', changed' : ', unchanged'}`);
      if (this.verifyEach) {
        try {
          verifyGraph(graph, registry);
        } catch (e) {
          if (e instanceof UserError) throw new Error(`pass ${JSON.stringify(pass.name)} left an invalid graph: ${e.message}`);
          throw e;
        }
      }
    }
    return this.timings;
  }
}

/** canonicalize → shape inference → constant folding → dead code → pattern annotation. */
export function defaultPipeline(opts: PassManagerOptions = {}): PassManager {
  return new PassManager([canonicalizePass, shapeInferencePass, constantFoldingPass, deadCodePass, patternsPass], opts);
}
