/**
 * Kernel fusion (src/codegen/fuse.ts) on host programs, run on the kernel-IR CPU executor over the
 * memory plan's slots (cpu-run.ts): hand-built programs give exactly the same numbers before and
 * after fusion with fewer dispatches, and fusion refuses what would be wrong (a temp with two
 * readers, a graph output, a producer input overwritten before the consumer, loop lets under a
 * recomputing index); the recorded example transformers (one device and tp=2) equal the CPU
 * reference runtime after fusion, on the CPU executor and on WebGPU (SwiftShader: the fused
 * kernels compile and bind); a fused MatMul + bias + GELU kernel's WGSL is pinned (golden).
 */
import { type Expr, add, cmp, div, f32, i32, load, mul, param, rem, select, un, variable } from '../../src/codegen/expr.js';
import { dispatchCount, fuseHostProgram, fuseLaunches } from '../../src/codegen/fuse.js';
import { runHostProgramCpu, runHostProgramsCpu } from '../../src/codegen/host/cpu-run.js';
import { liveIntervals, planMemory } from '../../src/codegen/host/memory.js';
import { HOST_PROGRAM_FORMAT, type HostBuffer, type HostProgram, type HostStep } from '../../src/codegen/host/program.js';
import { recordHostProgram } from '../../src/codegen/host/record.js';
import { type Kernel, type KernelBody, type Let, makeKernel } from '../../src/codegen/kernel.js';
import { renderKernel } from '../../src/codegen/wgsl/kernel.js';
import { Attrs } from '../../src/ir/attrs.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { importModel } from '../../src/onnx/import.js';
import { shardGraph } from '../../src/passes/sharding/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { DeviceMesh } from '../../src/passes/sharding/mesh.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { type WebGPUDevice, acquireDevice } from '../../src/targets/webgpu/device.js';
import { WebGPUSession } from '../../src/targets/webgpu/session.js';
import { assembleOutputs, scatterFeeds } from '../../src/targets/cpu/spmd.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';
import { bertModel, gptModel, llamaModel } from '../../examples/models/transformers.js';
import { expectGolden } from '../passes/golden.js';

const registry = createCoreRegistry();

// ---- hand-built programs ------------------------------------------------------------------

const I = variable('i');
const x0 = (t: 'f32' | 'i32' = 'f32', index: Expr = I): Expr => load('x0', t, index);
const x1 = (index: Expr = I): Expr => load('x1', 'f32', index);

/** A map kernel `y0[i] = value` over param n. */
const mapKernel = (name: string, value: Expr, lets: Let[] = []): Kernel =>
  makeKernel(name, { kind: 'map', count: param('n'), lets, stores: [{ buf: 'y0', index: I, value }] });

/** A program builder: buffers by value name, dispatch steps binding them. */
class ProgramBuilder {
  readonly buffers: HostBuffer[] = [];
  readonly steps: HostStep[] = [];
  readonly kernels: Kernel[] = [];
  private readonly ids = new Map<string, number>();

  buffer(name: string, length: number, role: HostBuffer['role'] = 'temp', constant?: Tensor): number {
    const id = this.buffers.length;
    this.buffers.push({ id, type: 'f32', length, role, value: name, slot: id, ...(constant ? { constant } : {}) });
    this.ids.set(name, id);
    return id;
  }

  /** A dispatch of `k` binding its buffers to values (`x0: 'a'`), params given. */
  dispatch(node: string, k: Kernel, params: Record<string, number>, bind: Record<string, string>): this {
    this.kernels.push(k);
    const bindings = Object.fromEntries(Object.entries(bind).map(([b, v]) => [b, this.ids.get(v)!]));
    this.steps.push({ kind: 'dispatch', node, op: node, kernel: this.kernels.length - 1, params, bindings });
    return this;
  }

  build(inputs: string[], outputs: string[]): HostProgram {
    const ref = (name: string) => {
      const b = this.buffers[this.ids.get(name)!]!;
      return { name, dtype: 'float32' as const, shape: [b.length], buffer: b.id };
    };
    return planMemory({
      format: HOST_PROGRAM_FORMAT, device: 0, kernels: this.kernels, buffers: this.buffers,
      slots: this.buffers.map((b) => ({ bytes: b.length * 4 })), inputs: inputs.map(ref), outputs: outputs.map(ref), steps: this.steps,
    });
  }
}

const ramp = (n: number, scale = 1, offset = 0): Tensor => Tensor.from('float32', [n], Array.from({ length: n }, (_, i) => Math.sin(i * scale) + offset));

/** Runs before and after fusion: exactly equal outputs; returns the fused program. */
function expectSameAfterFusion(p: HostProgram, feeds: Map<string, Tensor>, opts?: Parameters<typeof fuseHostProgram>[1]): HostProgram {
  const f = fuseHostProgram(p, opts);
  const want = runHostProgramCpu(p, feeds);
  const got = runHostProgramCpu(f, feeds);
  for (const [k, t] of want) expect({ k, v: got.get(k)!.toArray() }).toEqual({ k, v: t.toArray() });
  return f;
}

const kernelsOf = (p: HostProgram): KernelBody['kind'][] => p.steps.map((s) => (s.kind === 'dispatch' ? p.kernels[s.kernel]!.body.kind : 'map'));

describe('map → map fusion', () => {
  it('collapses an elementwise chain into one kernel (Add → Mul → Erf → Sub) and drops the temps', () => {
    const n = 37;
    const b = new ProgramBuilder();
    b.buffer('x', n, 'input');
    b.buffer('c', n, 'constant', ramp(n, 0.3));
    for (const t of ['t1', 't2', 't3', 'y']) b.buffer(t, n);
    b.dispatch('add', mapKernel('add', add(x0(), x1())), { n }, { x0: 'x', x1: 'c', y0: 't1' })
      .dispatch('mul', mapKernel('mul', mul(x0(), f32(0.5))), { n }, { x0: 't1', y0: 't2' })
      .dispatch('erf', mapKernel('erf', un('erf', x0())), { n }, { x0: 't2', y0: 't3' })
      .dispatch('sub', mapKernel('sub', add(x0(), x1())), { n }, { x0: 't3', x1: 'x', y0: 'y' });
    const p = b.build(['x'], ['y']);
    const f = expectSameAfterFusion(p, new Map([['x', ramp(n, 0.7)]]));
    expect([dispatchCount(p), dispatchCount(f)]).toEqual([4, 1]);
    expect(f.buffers.map((x) => x.value)).toEqual(['x', 'c', 'y']);
    // One name per buffer: x is read by the first and the last op through one binding.
    expect(f.kernels[0]!.inputs.map((x) => x.name)).toEqual(['x0', 'x1']);
    expect((f.steps[0] as { node: string }).node).toBe('add + mul + erf + sub');
  });

  it('inlines a producer under a broadcast load (index let-bound, params renamed where they collide)', () => {
    // t[j] = x[j] * 2 over 3; y[r, j] = t[j] + z[r, j] over 4 × 3 (broadcast over rows).
    const b = new ProgramBuilder();
    b.buffer('x', 3, 'input');
    b.buffer('z', 12, 'input');
    b.buffer('t', 3);
    b.buffer('y', 12);
    const col: Let = { name: 'c1', value: rem(I, param('c_dim1')) };
    b.dispatch('scale', mapKernel('scale', mul(x0(), f32(2)), [{ name: 'c1', value: add(I, i32(0)) }]), { n: 3 }, { x0: 'x', y0: 't' })
      .dispatch('bcast', mapKernel('bcast', add(x0('f32', variable('c1')), x1()), [col]), { n: 12, c_dim1: 3 }, { x0: 't', x1: 'z', y0: 'y' });
    const p = b.build(['x', 'z'], ['y']);
    const f = expectSameAfterFusion(p, new Map([['x', ramp(3)], ['z', ramp(12, 0.4)]]));
    expect(dispatchCount(f)).toBe(1);
    const body = f.kernels[0]!.body as Extract<KernelBody, { kind: 'map' }>;
    expect(body.lets.map((l) => l.name)).toEqual(['c1', 'pi', 'c1_1', 'pv']);
    expect(f.kernels[0]!.params).toEqual(['c_dim1', 'n']);
  });

  it('fuses a loop-let producer only where the consumer reads at i', () => {
    // t[i] = Σ_{j<3} x[i + j] (a window sum) over 6; consumer A reads t[i], consumer B reads t[5 - i].
    const n = 6;
    const windowSum = (): Kernel =>
      mapKernel('window', variable('s', 'f32'), [{ name: 's', value: x0('f32', add(I, variable('j'))), loop: { var: 'j', count: i32(3), op: 'sum' } }]);
    for (const [index, fuses] of [[I, true], [add(i32(5), mul(I, i32(-1))), false]] as const) {
      const b = new ProgramBuilder();
      b.buffer('x', n + 2, 'input');
      b.buffer('t', n);
      b.buffer('y', n);
      b.dispatch('window', windowSum(), { n }, { x0: 'x', y0: 't' }).dispatch('use', mapKernel('use', mul(x0('f32', index), x0('f32', index))), { n }, { x0: 't', y0: 'y' });
      const p = b.build(['x'], ['y']);
      const f = expectSameAfterFusion(p, new Map([['x', ramp(n + 2)]]));
      expect(dispatchCount(f)).toBe(fuses ? 1 : 2);
    }
  });

  it('refuses a temp with two readers, a graph output, and a producer input overwritten in between', () => {
    const n = 5;
    const twoReaders = new ProgramBuilder();
    twoReaders.buffer('x', n, 'input');
    for (const t of ['t', 'a', 'b']) twoReaders.buffer(t, n);
    twoReaders
      .dispatch('neg', mapKernel('neg', un('neg', x0())), { n }, { x0: 'x', y0: 't' })
      .dispatch('a', mapKernel('a', un('exp', x0())), { n }, { x0: 't', y0: 'a' })
      .dispatch('b', mapKernel('b', un('sin', x0())), { n }, { x0: 't', y0: 'b' });
    const feeds = new Map([['x', ramp(n)]]);
    expect(dispatchCount(expectSameAfterFusion(twoReaders.build(['x'], ['a', 'b']), feeds))).toBe(3);
    // t is also an output: a and b stay separate, t stays written.
    const out = new ProgramBuilder();
    out.buffer('x', n, 'input');
    for (const t of ['t', 'a']) out.buffer(t, n);
    out.dispatch('neg', mapKernel('neg', un('neg', x0())), { n }, { x0: 'x', y0: 't' }).dispatch('a', mapKernel('a', un('exp', x0())), { n }, { x0: 't', y0: 'a' });
    expect(dispatchCount(expectSameAfterFusion(out.build(['x'], ['t', 'a']), feeds))).toBe(2);
    // w is written twice (like two Concat parts); the producer of t reads w before the second write.
    const clob = new ProgramBuilder();
    clob.buffer('x', n, 'input');
    for (const t of ['w', 't', 'y']) clob.buffer(t, n);
    clob
      .dispatch('w1', mapKernel('w1', un('neg', x0())), { n }, { x0: 'x', y0: 'w' })
      .dispatch('p', mapKernel('p', mul(x0(), f32(3))), { n }, { x0: 'w', y0: 't' })
      .dispatch('w2', mapKernel('w2', un('exp', x0())), { n }, { x0: 'x', y0: 'w' })
      .dispatch('c', mapKernel('c', add(x0(), x1())), { n }, { x0: 't', x1: 'w', y0: 'y' });
    expect(dispatchCount(expectSameAfterFusion(clob.build(['x'], ['y']), feeds))).toBe(4);
  });

  it('stays within the storage-buffer limit', () => {
    // y = ((x + a) + b) + c ... each add reads a new constant: 5 inputs + 1 output fit in 6.
    const n = 4;
    const b = new ProgramBuilder();
    b.buffer('x', n, 'input');
    const names = ['x'];
    for (let k = 0; k < 6; k++) {
      b.buffer(`c${k}`, n, 'constant', ramp(n, k + 1));
      b.buffer(`t${k}`, n);
      b.dispatch(`add${k}`, mapKernel(`add${k}`, add(x0(), x1())), { n }, { x0: names[k]!, x1: `c${k}`, y0: `t${k}` });
      names.push(`t${k}`);
    }
    const p = b.build(['x'], ['t5']);
    const f = expectSameAfterFusion(p, new Map([['x', ramp(n)]]), { maxBuffers: 6 });
    for (const k of f.kernels) expect(k.inputs.length + k.outputs.length).toBeLessThanOrEqual(6);
    expect(dispatchCount(f)).toBe(2);
    expect(dispatchCount(expectSameAfterFusion(p, new Map([['x', ramp(n)]])))).toBe(1);
  });
});

// ---- epilogues (graphs recorded from IR nodes) --------------------------------------------

function constant(name: string, t: Tensor): Value {
  const v = new Value(name, t.dtype, [...t.shape]);
  v.constant = { load: () => t } as unknown as Value['constant'];
  return v;
}

/** x[M, K] · W[K, N] + b, then GELU as ONNX exporters write it (x·0.5·(1 + erf(x/√2))), then + residual. */
function mlpGraph(M: number, K: number, N: number): { g: Graph; feeds: Map<string, Tensor> } {
  const g = new Graph('mlp');
  const x = new Value('x', 'float32', [M, K]);
  const r = new Value('r', 'float32', [M, N]);
  const w = constant('w', Tensor.from('float32', [K, N], Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.37) * 0.5)));
  const bias = constant('bias', Tensor.from('float32', [N], Array.from({ length: N }, (_, i) => i / N - 0.5)));
  const sqrt2 = constant('sqrt2', Tensor.scalar('float32', Math.SQRT2));
  const one = constant('one', Tensor.scalar('float32', 1));
  const half = constant('half', Tensor.scalar('float32', 0.5));
  g.inputs = [x, r];
  g.initializers = [w, bias, sqrt2, one, half];
  const v = (name: string) => new Value(name);
  const [mm, h, d, e, e1, hx, gelu, y] = ['mm', 'h', 'd', 'e', 'e1', 'hx', 'gelu', 'y'].map(v) as Value[];
  g.addNode(new Node('MatMul', [x, w], [mm!], new Attrs(), 'fc'));
  g.addNode(new Node('Add', [mm!, bias], [h!], new Attrs(), 'fc_bias'));
  g.addNode(new Node('Div', [h!, sqrt2], [d!], new Attrs(), 'gelu_div'));
  g.addNode(new Node('Erf', [d!], [e!], new Attrs(), 'gelu_erf'));
  g.addNode(new Node('Add', [e!, one], [e1!], new Attrs(), 'gelu_add'));
  g.addNode(new Node('Mul', [h!, e1!], [hx!], new Attrs(), 'gelu_mul'));
  g.addNode(new Node('Mul', [hx!, half], [gelu!], new Attrs(), 'gelu_half'));
  g.addNode(new Node('Add', [gelu!, r], [y!], new Attrs(), 'residual'));
  g.outputs = [y!];
  const feeds = new Map([
    ['x', Tensor.from('float32', [M, K], Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.11)))],
    ['r', Tensor.from('float32', [M, N], Array.from({ length: M * N }, (_, i) => Math.cos(i * 0.05)))],
  ]);
  return { g, feeds };
}

const shapesOf = (feeds: ReadonlyMap<string, Tensor>) => [...feeds].map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] }));

describe('epilogue fusion', () => {
  for (const [M, K, N] of [[5, 7, 9], [70, 20, 66]] as const)
    it(`MatMul → bias → GELU → residual is one matmul kernel (${M}×${K}×${N}) with the same numbers`, () => {
      const { g, feeds } = mlpGraph(M, K, N);
      const p = planMemory(recordHostProgram(g, shapesOf(feeds), { registry }));
      const f = expectSameAfterFusion(p, feeds);
      expect([dispatchCount(p), dispatchCount(f)]).toEqual([8, 1]);
      expect(kernelsOf(f)).toEqual(['matmul']);
      expect(f.buffers.filter((b) => b.role === 'temp').map((b) => b.value)).toEqual(['y']);
      const want = runGraph(g, feeds, { registry }).get('y')!;
      expect(compareTensors(runHostProgramCpu(f, feeds).get('y')!, want, { rtol: 1e-5, atol: 1e-5 }).message).toBe('');
    });

  it('fused MatMul + bias + GELU kernel, register-blocked (golden WGSL)', () => {
    const { g, feeds } = mlpGraph(64, 16, 64);
    g.nodes.pop();
    g.outputs = [g.nodes[g.nodes.length - 1]!.outputs[0]!];
    feeds.delete('r');
    g.inputs = g.inputs.filter((v) => v.name !== 'r');
    const f = fuseHostProgram(recordHostProgram(g, shapesOf(feeds), { registry }));
    expect(dispatchCount(f)).toBe(1);
    expect(f.kernels[0]!.body).toMatchObject({ kind: 'matmul', block: 4 });
    expectGolden('wgsl/matmul-bias-gelu.wgsl', renderKernel(f.kernels[0]!));
  });

  it('folds a map into a reduce template and into a norm template', () => {
    const g = new Graph('rows');
    const x = new Value('x', 'float32', [3, 10]);
    const scale = constant('scale', Tensor.from('float32', [10], Array.from({ length: 10 }, (_, i) => 1 + i / 10)));
    const biasN = constant('bias', Tensor.from('float32', [10], Array.from({ length: 10 }, (_, i) => i / 20)));
    const axes = constant('axes', Tensor.from('int64', [1], [1]));
    g.inputs = [x];
    g.initializers = [scale, biasN, axes];
    const [ln, relu, s, sq] = ['ln', 'relu', 's', 'sq'].map((n) => new Value(n)) as Value[];
    g.addNode(new Node('LayerNormalization', [x, scale, biasN], [ln!], new Attrs(), 'ln'));
    g.addNode(new Node('Relu', [ln!], [relu!], new Attrs(), 'relu'));
    g.addNode(new Node('ReduceSum', [x, axes], [s!], new Attrs(), 'sum'));
    g.addNode(new Node('Sqrt', [s!], [sq!], new Attrs(), 'sqrt'));
    g.outputs = [relu!, sq!];
    const feeds = new Map([['x', Tensor.from('float32', [3, 10], Array.from({ length: 30 }, (_, i) => Math.sin(i) + 1))]]);
    const p = planMemory(recordHostProgram(g, shapesOf(feeds), { registry }));
    const f = expectSameAfterFusion(p, feeds);
    expect(kernelsOf(f)).toEqual(['norm', 'reduce']);
    expect(dispatchCount(f)).toBe(dispatchCount(p) - 2);
  });

  it('reads a transposed operand in place (Transpose → MatMul prologue) and a transposed result (MatMul → Transpose is a prologue of the next matmul)', () => {
    const g = new Graph('attn');
    const q = new Value('q', 'float32', [2, 5, 3, 4]); // [batch, seq, heads, dim]
    const k = new Value('k', 'float32', [2, 3, 4, 5]); // [batch, heads, dim, seq]
    const w = constant('w', Tensor.from('float32', [15, 6], Array.from({ length: 90 }, (_, i) => Math.cos(i * 0.3))));
    const shape = constant('shape', Tensor.from('int64', [3], [2, 5, 15]));
    g.inputs = [q, k];
    g.initializers = [w, shape];
    const [qt, s, st, flat, y] = ['qt', 's', 'st', 'flat', 'y'].map((n) => new Value(n)) as Value[];
    const perm = (p: number[]) => new Attrs([['perm', { kind: 'ints', value: p }]]);
    g.addNode(new Node('Transpose', [q], [qt!], perm([0, 2, 1, 3]), 'q_heads'));
    g.addNode(new Node('MatMul', [qt!, k], [s!], new Attrs(), 'scores')); // [2, 3, 5, 5]
    g.addNode(new Node('Transpose', [s!], [st!], perm([0, 2, 1, 3]), 'merge')); // [2, 5, 3, 5]
    g.addNode(new Node('Reshape', [st!, shape], [flat!], new Attrs(), 'flat')); // [2, 5, 15] (a view)
    g.addNode(new Node('MatMul', [flat!, w], [y!], new Attrs(), 'proj'));
    g.outputs = [y!];
    const feeds = new Map([
      ['q', Tensor.from('float32', [2, 5, 3, 4], Array.from({ length: 120 }, (_, i) => Math.sin(i * 0.7)))],
      ['k', Tensor.from('float32', [2, 3, 4, 5], Array.from({ length: 120 }, (_, i) => Math.cos(i * 0.3)))],
    ]);
    const p = planMemory(recordHostProgram(g, shapesOf(feeds), { registry }));
    const f = expectSameAfterFusion(p, feeds);
    expect([kernelsOf(p), kernelsOf(f)]).toEqual([['map', 'matmul', 'map', 'matmul'], ['matmul', 'matmul']]);
    expect(compareTensors(runHostProgramCpu(f, feeds).get('y')!, runGraph(g, feeds, { registry }).get('y')!, { rtol: 1e-5, atol: 1e-5 }).message).toBe('');
    // A producer too big to recompute per operand load stays a kernel.
    expect(kernelsOf(fuseHostProgram(p, { maxPrologueNodes: 8 }))).toEqual(['map', 'matmul', 'map', 'matmul']);
  });

  it('fuseLaunches explains a refusal (a consumer reading the matmul output at another index)', () => {
    const mm = makeKernel('mm', {
      kind: 'matmul', tile: 16, batch: i32(1), m: param('M'), n: param('N'), k: param('K'),
      a: load('x0', 'f32', add(mul(variable('m'), param('K')), variable('k'))),
      b: load('x1', 'f32', add(mul(variable('k'), param('N')), variable('n'))),
      out: { buf: 'y0', index: add(mul(variable('m'), param('N')), variable('n')), value: variable('acc', 'f32') },
    });
    const shifted = mapKernel('shift', x0('f32', select(cmp('>', I, i32(0)), add(I, i32(-1)), I)));
    const res = fuseLaunches(
      { kernel: mm, params: { M: 2, N: 3, K: 4 }, bindings: { x0: 0, x1: 1, y0: 2 } },
      { kernel: shifted, params: { n: 6 }, bindings: { x0: 2, y0: 3 } },
      2,
      6,
    );
    expect(res).toEqual({ reason: 'consumer loads the temp at an index other than i' });
    const ok = fuseLaunches(
      { kernel: mm, params: { M: 2, N: 3, K: 4 }, bindings: { x0: 0, x1: 1, y0: 2 } },
      { kernel: mapKernel('half', div(x0(), f32(2))), params: { n: 6 }, bindings: { x0: 2, y0: 3 } },
      2,
      6,
    );
    expect('fused' in ok && ok.fused.bindings).toEqual({ x0: 0, x1: 1, y0: 3 });
  });
});

// ---- the example transformers -------------------------------------------------------------

const TOL = { rtol: 1e-5, atol: 1e-5 };
const bindings = { batch: 2, sequence: 5 };
const models: Record<string, () => Uint8Array> = {
  'gpt-tiny': () => gptModel().encode(),
  'bert-tiny': () => bertModel().encode(),
  'llama-tiny': () => llamaModel().encode(),
};

function expectClose(got: ReadonlyMap<string, Tensor>, want: ReadonlyMap<string, Tensor>): void {
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, t] of want) expect({ k, message: compareTensors(got.get(k)!, t, TOL).message }).toEqual({ k, message: '' });
}

/** No two simultaneously live buffers share a slot. */
function expectSoundPlan(p: HostProgram): void {
  const live = liveIntervals(p);
  const ids = [...live.keys()];
  for (let a = 0; a < ids.length; a++)
    for (let b = a + 1; b < ids.length; b++) {
      const x = live.get(ids[a]!)!, y = live.get(ids[b]!)!;
      if (p.buffers[ids[a]!]!.slot === p.buffers[ids[b]!]!.slot) expect(x.start > y.end || y.start > x.end).toBe(true);
    }
}

const counts: string[] = [];
afterAll(() => counts.length && console.log(`dispatches before → after fusion:\n${counts.join('\n')}`));

describe('example transformers: fused host programs equal the reference runtime', () => {
  test.each(Object.keys(models))('%s (one device)', (model) => {
    const graph = importModel(models[model]!(), { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(graph, { seed: 5, dims: bindings });
    const want = runGraph(graph, feeds, { registry });
    const p = planMemory(recordHostProgram(graph, shapesOf(feeds), { registry }));
    const f = fuseHostProgram(p);
    expectSoundPlan(f);
    counts.push(`${model}: ${dispatchCount(p)} → ${dispatchCount(f)} (kernels ${p.kernels.length} → ${f.kernels.length})`);
    expect(dispatchCount(f)).toBeLessThan(dispatchCount(p) * 0.8);
    const before = runHostProgramCpu(p, feeds);
    const after = runHostProgramCpu(f, feeds);
    expectClose(after, want);
    // Fusion changes no rounding on the CPU executor: bit-identical to the unfused program.
    for (const [k, t] of before) expect({ k, v: Array.from(after.get(k)!.data as Float32Array) }).toEqual({ k, v: Array.from(t.data as Float32Array) });
    // Deterministic.
    expect(JSON.stringify(fuseHostProgram(p))).toBe(JSON.stringify(f));
  });

  test.each(['gpt-tiny', 'llama-tiny'])('%s (tp=2 megatron, collectives between fused kernels)', (model) => {
    const reference = importModel(models[model]!(), { file: `${model}.onnx` }).graph;
    const feeds = randomInputs(reference, { seed: 7, dims: bindings });
    const want = runGraph(reference, feeds, { registry });
    const mesh = DeviceMesh.parse('tp=2');
    const rules = createCoreShardingRules();
    const plan = shardGraph(importModel(models[model]!(), { file: `${model}.onnx` }).graph, mesh, { strategy: 'megatron', registry, rules, bindings });
    const programs = lowerPlan(plan, { registry, rules });
    const local = scatterFeeds(programs, plan, mesh, feeds);
    const hosts = programs.map((prog, d) => planMemory(recordHostProgram(prog.graph, shapesOf(local[d]!), { registry, device: d, mesh })));
    const fused = hosts.map((h) => fuseHostProgram(h));
    counts.push(`${model} tp=2 device 0: ${dispatchCount(hosts[0]!)} → ${dispatchCount(fused[0]!)}`);
    for (const [k, h] of fused.entries()) {
      expectSoundPlan(h);
      expect(dispatchCount(h)).toBeLessThan(dispatchCount(hosts[k]!));
      expect(h.steps.filter((s) => s.kind === 'collective').length).toBe(hosts[k]!.steps.filter((s) => s.kind === 'collective').length);
    }
    expectClose(assembleOutputs(plan, runHostProgramsCpu(fused, local), mesh), want);
  });
});

describe('fused programs on WebGPU (SwiftShader) equal the reference runtime', () => {
  let gpu: WebGPUDevice;
  beforeAll(async () => {
    gpu = await acquireDevice();
  });
  afterAll(() => gpu?.destroy());

  async function runOnGpu(p: HostProgram, feeds: Map<string, Tensor>): Promise<Map<string, Tensor>> {
    const session = await WebGPUSession.create(gpu.device, p);
    try {
      return await session.run(feeds);
    } finally {
      session.destroy();
    }
  }
  const GPU_TOL = { rtol: 1e-4, atol: 1e-5 };

  it('MatMul (register-blocked, 70×20×66) + bias + GELU + residual as one kernel', async () => {
    const { g, feeds } = mlpGraph(70, 20, 66);
    const f = fuseHostProgram(recordHostProgram(g, shapesOf(feeds), { registry }));
    expect(dispatchCount(f)).toBe(1);
    expect((f.kernels[0]!.body as { block?: number }).block).toBe(4);
    const got = (await runOnGpu(f, feeds)).get('y')!;
    expect(compareTensors(got, runGraph(g, feeds, { registry }).get('y')!, GPU_TOL).message).toBe('');
  });

  it('gpt-tiny, fused', async () => {
    const graph = importModel(models['gpt-tiny']!(), { file: 'gpt-tiny.onnx' }).graph;
    const feeds = randomInputs(graph, { seed: 5, dims: bindings });
    const f = fuseHostProgram(recordHostProgram(graph, shapesOf(feeds), { registry }));
    const got = await runOnGpu(f, feeds);
    for (const [k, t] of runGraph(graph, feeds, { registry })) expect({ k, m: compareTensors(got.get(k)!, t, GPU_TOL).message }).toEqual({ k, m: '' });
  });
});
