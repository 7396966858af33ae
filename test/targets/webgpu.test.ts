/**
 * The WebGPU runtime on a real adapter (in CI: SwiftShader from Debian's chromium package): small
 * graphs and the example models against the CPU reference runtime. One device for the file,
 * destroyed in afterAll so the process exits.
 */
import { Attrs } from '../../src/ir/attrs.js';
import { Graph, Node, Value } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadModel } from '../../src/onnx/import.js';
import { defaultPipeline } from '../../src/passes/manager.js';
import { runGraph } from '../../src/targets/cpu/interpreter.js';
import { WebGPUBackend } from '../../src/targets/webgpu/backend.js';
import { type WebGPUDevice, acquireDevice } from '../../src/targets/webgpu/device.js';
import { runGraphWebGPU } from '../../src/targets/webgpu/run.js';
import { compareTensors } from '../../src/verify/compare.js';
import { randomInputs } from '../../src/verify/random-inputs.js';

const registry = createCoreRegistry();
let gpu: WebGPUDevice;

beforeAll(async () => {
  gpu = await acquireDevice();
});
afterAll(() => gpu?.destroy());

/** x → MatMul(w) → Add(b) → Softmax → Where(x > 0, ., -1) → Gather rows; w, b constants. */
function smallGraph(): { g: Graph; feeds: Map<string, Tensor> } {
  const g = new Graph('small');
  const x = new Value('x', 'float32', [3, 4]);
  const w = new Value('w', 'float32', [4, 5]);
  w.constant = { load: () => Tensor.from('float32', [4, 5], Array.from({ length: 20 }, (_, i) => ((i * 5) % 7) / 7 - 0.4)) } as unknown as Value['constant'];
  const b = new Value('b', 'float32', [5]);
  b.constant = { load: () => Tensor.from('float32', [5], [0.1, -0.2, 0.3, 0, 0.5]) } as unknown as Value['constant'];
  const idx = new Value('idx', 'int64', [2]);
  g.inputs.push(x, idx);
  g.initializers.push(w, b);
  const mm = new Value('mm');
  const biased = new Value('biased');
  const sm = new Value('sm');
  const pos = new Value('pos');
  const zero = new Value('zero', 'float32', []);
  zero.constant = { load: () => Tensor.scalar('float32', 0) } as unknown as Value['constant'];
  const minus = new Value('minus', 'float32', []);
  minus.constant = { load: () => Tensor.scalar('float32', -1) } as unknown as Value['constant'];
  g.initializers.push(zero, minus);
  const sel = new Value('sel');
  const y = new Value('y');
  g.nodes.push(
    new Node('MatMul', [x, w], [mm], new Attrs(), 'mm'),
    new Node('Add', [mm, b], [biased], new Attrs(), 'add'),
    new Node('Softmax', [biased], [sm], new Attrs(), 'softmax'),
    new Node('Greater', [biased, zero], [pos], new Attrs(), 'gt'),
    new Node('Where', [pos, sm, minus], [sel], new Attrs(), 'where'),
    new Node('Gather', [sel, idx], [y], new Attrs(), 'gather'),
  );
  g.outputs.push(y);
  const feeds = new Map([
    ['x', Tensor.from('float32', [3, 4], Array.from({ length: 12 }, (_, i) => Math.sin(i)))],
    ['idx', Tensor.from('int64', [2], [2, -3])],
  ]);
  return { g, feeds };
}

describe('WebGPU runtime (Dawn)', () => {
  it('runs a small graph node by node and matches the CPU runtime', async () => {
    const { g, feeds } = smallGraph();
    const want = runGraph(g, feeds, { registry }).get('y')!;
    const got = (await runGraphWebGPU(g, feeds, { registry, device: gpu })).get('y')!;
    expect(got.shape).toEqual([2, 5]);
    expect(compareTensors(got, want, { rtol: 1e-5, atol: 1e-6 }).message).toBe('');
  });

  it('compiles each distinct kernel once (cache keyed by the emitted code, not by sizes)', async () => {
    const backend = new WebGPUBackend(gpu.device, gpu.description);
    const { g, feeds } = smallGraph();
    await runGraphWebGPU(g, feeds, { registry, backend });
    const compiled = backend.stats.pipelinesCompiled;
    await runGraphWebGPU(g, feeds, { registry, backend });
    expect(backend.stats.pipelinesCompiled).toBe(compiled);
    expect(backend.stats.dispatches).toBeGreaterThan(0);
  });

  for (const name of ['gpt-tiny', 'bert-tiny', 'llama-tiny'])
    it(`${name} (after the default pipeline, batch=2, sequence=6) matches the CPU runtime at rtol 1e-4, atol 1e-5`, async () => {
      const model = loadModel(`${__dirname}/../../examples/${name}.onnx`);
      const feeds = randomInputs(model.graph, { seed: 3, dims: { batch: 2, sequence: 6 } });
      defaultPipeline({ registry }).run(model.graph);
      const want = runGraph(model.graph, feeds, { registry });
      const got = await runGraphWebGPU(model.graph, feeds, { registry, device: gpu });
      for (const [k, t] of want) expect({ k, m: compareTensors(got.get(k)!, t, { rtol: 1e-4, atol: 1e-5 }).message }).toEqual({ k, m: '' });
    });
});
