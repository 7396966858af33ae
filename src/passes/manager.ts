/**
 * The pass manager. A pass is a typed object `{ name, run(graph, ctx) }` that edits the graph in
 * place and may return whether it changed anything. A PassManager runs an ordered list of passes,
 * optionally verifying the graph after each one (tests always do), and records per-pass timings.
 * User code controls the pipeline by pass name: `add`, `insertBefore`, `insertAfter`, `replace`,
 * `remove`, `names`; an unknown name is a UserError listing the passes there are. shardGraph takes
 * the pipeline it runs as ShardOptions.pipeline (a factory like defaultPipeline), so a custom pass
 * can change what gets sharded (examples/api/custom-pass.ts).
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

/** What a pass may report beyond editing the graph. */
export interface PassResult {
  /** Whether the pass changed the graph (undefined: unknown). */
  changed?: boolean;
  /** Counts for --verbose and tests, e.g. { pinned: 2 } (printed sorted by key). */
  stats?: Record<string, number>;
}

export interface Pass {
  readonly name: string;
  /** Edits the graph in place; returns whether it changed anything (undefined: unknown), or a PassResult. */
  run(graph: Graph, ctx: PassContext): void | boolean | PassResult;
}

/** A pass from a name and a function (the object form `{ name, run }` works just as well). */
export function definePass(name: string, run: Pass['run']): Pass {
  return { name, run };
}

export interface PassTiming {
  name: string;
  ms: number;
  changed?: boolean;
  stats?: Record<string, number>;
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

  /** Puts `pass` where the pass called `name` is (the new pass may keep the name or bring its own). */
  replace(name: string, pass: Pass): this {
    const i = this.indexOf(name);
    if (!pass.name) throw new UserError('a pass needs a name');
    if (pass.name !== name && this.has(pass.name)) throw new UserError(`a pass named ${JSON.stringify(pass.name)} is already in the pipeline`);
    this.passes[i] = pass;
    return this;
  }

  /** The pass called `name` (a UserError when there is none). */
  get(name: string): Pass {
    return this.passes[this.indexOf(name)]!;
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
      else if (result && typeof result === 'object') {
        if (result.changed !== undefined) timing.changed = result.changed;
        if (result.stats) timing.stats = { ...result.stats };
      }
      this.timings.push(timing);
      const stats = timing.stats
        ? Object.keys(timing.stats)
            .sort()
            .map((k) => `, ${k} ${timing.stats![k]}`)
            .join('')
        : '';
      logger.debug(`pass ${pass.name}: ${ms.toFixed(1)} ms${timing.changed === undefined ? '' : timing.changed ? ', changed' : ', unchanged'}${stats}`);
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

/** Builds a pass pipeline from the context it will run in (defaultPipeline is one). */
export type PipelineFactory = (opts: PassManagerOptions) => PassManager;

/** The names of defaultPipeline's passes, in order (anchors for insertBefore/insertAfter). */
export const DEFAULT_PASS_NAMES = ['canonicalize', 'shape-inference', 'constant-folding', 'dead-code', 'patterns'] as const;

/** canonicalize → shape inference → constant folding → dead code → pattern annotation. */
export function defaultPipeline(opts: PassManagerOptions = {}): PassManager {
  return new PassManager([canonicalizePass, shapeInferencePass, constantFoldingPass, deadCodePass, patternsPass], opts);
}
