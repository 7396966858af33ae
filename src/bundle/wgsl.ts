/**
 * device-<r>/kernels.wgsl of a wgsl bundle: every distinct kernel of that device's program, in the
 * order the program first dispatches it. The kernels are found by running the program once with
 * zero inputs on the CPU executor of the kernel IR (the same lowering the WebGPU runtime uses;
 * collectives are skipped), so shape math that reads values on the host is exact. Symbolic dims
 * left unbound are taken as 1 (kernels do not depend on sizes: sizes travel in uniforms).
 *
 * Each kernel is its own shader module (entry point `main`), introduced by a comment block with a
 * sanitised identifier and the node's original name escaped (JSON string; `*` and `/` pairs
 * broken up), so no model name can end a comment or inject code.
 */
import { cpuKernelBackend } from '../codegen/cpu-backend.js';
import type { DeviceArray } from '../codegen/cpu.js';
import type { Launch } from '../codegen/kernel.js';
import type { KernelBackend } from '../codegen/run-graph.js';
import { runGraphOnBackend } from '../codegen/run-graph.js';
import { renderKernel } from '../codegen/wgsl/kernel.js';
import { commentSafe, identifier } from '../codegen/names.js';
import type { OpRegistry } from '../ir/registry.js';
import { Tensor } from '../ir/tensor.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import { spmdLoweringTable } from '../targets/webgpu/spmd.js';
import { collectiveCall } from '../targets/webgpu/collectives.js';

export const DEVICE_KERNELS_FILE = 'kernels.wgsl';

/** A WGSL identifier from a model name (src/codegen/names.ts). */
export function wgslIdentifier(name: string): string {
  return identifier(name, 'k');
}

export { commentSafe };

interface Recorded {
  code: string;
  name: string;
  op: string;
  node: string;
}

/** The kernels.wgsl text of one device program. */
export async function deviceKernelsWgsl(program: DeviceProgram, registry: OpRegistry): Promise<string> {
  const found = new Map<string, Recorded>();
  const labels = new Map<string, { op: string; label: string }>();
  for (const n of program.graph.nodes) labels.set(n.name || n.op, { op: n.op, label: n.label });
  const backend: KernelBackend<DeviceArray> = {
    ...cpuKernelBackend,
    dispatch: (launch: Launch, bindings) => {
      if (collectiveCall(launch.kernel)) return; // staged through the host at run time
      const code = renderKernel(launch.kernel);
      if (!found.has(code)) {
        const base = launch.kernel.name;
        const owner = [...labels.entries()].find(([k]) => base === k || base.startsWith(`${k} `));
        found.set(code, { code, name: base, op: owner?.[1].op ?? '', node: owner?.[1].label ?? base });
      }
      return cpuKernelBackend.dispatch(launch, bindings);
    },
  };
  const feeds = new Map<string, Tensor>();
  for (const v of program.graph.inputs) {
    if (v.constant) continue;
    const shape = (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 1));
    feeds.set(v.name, Tensor.zeros(v.dtype ?? 'float32', shape));
  }
  await runGraphOnBackend(program.graph, feeds, backend, { registry: hostCollectives(registry), table: spmdLoweringTable() });

  const lines = [
    `// shardc kernels for device ${program.device} (coordinates ${program.coords.join(',')}), in first-dispatch order.`,
    `// Each section is a separate WGSL shader module with entry point main; collectives run on the host.`,
  ];
  const used = new Map<string, number>();
  [...found.values()].forEach((k, i) => {
    let id = wgslIdentifier(k.name);
    const n = used.get(id) ?? 0;
    used.set(id, n + 1);
    if (n) id = `${id}_${n + 1}`;
    lines.push('', `// ---- kernel ${i}: ${id} ----`, `// node ${commentSafe(k.node)}${k.op ? ` (${k.op})` : ''}`, k.code.trimEnd());
  });
  return `${lines.join('\n')}\n`;
}

/** Collectives on host values during the dry run: the input passed through with the output's shape. */
function hostCollectives(registry: OpRegistry): OpRegistry {
  const wrapped = Object.create(registry) as OpRegistry;
  wrapped.forNode = (node) => {
    const def = registry.forNode(node);
    if (def.family !== 'collective') return def;
    return {
      ...def,
      evaluate: (ctx) => {
        const t = def.infer({ node, attrs: node.attrs, inputs: ctx.inputs.map((x) => (x ? { dtype: x.dtype, shape: x.shape.slice() } : undefined)), constant: (k) => ctx.inputs[k] });
        return t.map((o) => Tensor.zeros(o.dtype, (o.shape ?? []).map((d) => (typeof d === 'number' ? d : 1))));
      },
    };
  };
  return wrapped;
}
