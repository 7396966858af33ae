/**
 * The per-device files of a wgsl bundle, all from one ahead-of-time host program
 * (src/codegen/host: recordHostProgram, then planMemory):
 *   device-<r>/kernels.wgsl           exactly program.kernels, in order (first-dispatch order)
 *   device-<r>/host-program.json      the program (src/bundle/host-program.ts describes the format)
 *   device-<r>/constants.safetensors  its constant tensors that are not weights
 *   device-<r>/host.ts, host.js       the program as a readable TypeScript module and its JavaScript
 *                                     (src/codegen/host/generate.ts)
 * The program is recorded for the device graph's input shapes; a symbolic dim still left in them is
 * taken from the partition's --dim bindings, else 1 (sharding already requires bound input dims).
 * A node whose lowering needs a value computed on the device cannot be compiled ahead of time:
 * recordHostProgram rejects it with a UserError naming the node.
 *
 * In kernels.wgsl each kernel is its own shader module (entry point `main`), introduced by a
 * comment block with its identifier (the same as in host.ts `kernels`) and its first node's
 * original name escaped (commentSafe), so no model name can end a comment or inject code.
 */
import { emitHostJs, generateHostModule, kernelIdentifiers } from '../codegen/host/generate.js';
import type { HostProgram } from '../codegen/host/program.js';
import { recordHostProgram } from '../codegen/host/record.js';
import { commentSafe, identifier } from '../codegen/names.js';
import { renderKernel } from '../codegen/wgsl/kernel.js';
import { compileHostProgram } from '../targets/webgpu/mesh-session.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import { utf8 } from './canonical.js';
import { encodeHostProgram, HOST_CONSTANTS_FILE, HOST_PROGRAM_FILE } from './host-program.js';

export const DEVICE_KERNELS_FILE = 'kernels.wgsl';
export const HOST_MODULE_FILE = 'host.ts';
export const HOST_JS_FILE = 'host.js';

/** A WGSL identifier from a model name (src/codegen/names.ts). */
export function wgslIdentifier(name: string): string {
  return identifier(name, 'k');
}

export { commentSafe };

/** The host program of one device, for its graph inputs' shapes (symbols from `bindings`, else 1). */
/** The ahead-of-time program of one device: recorded, fused (unless `fuse: false`) and memory-planned. */
export function deviceHostProgram(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number>; fuse?: boolean }): HostProgram {
  const inputs = program.graph.inputs
    .filter((v) => !v.constant)
    .map((v) => ({ name: v.name, dtype: v.dtype ?? 'float32', shape: (v.shape ?? []).map((d) => (typeof d === 'number' ? d : (opts.bindings?.[d] ?? 1))) }));
  const recorded = recordHostProgram(program.graph, inputs, { registry: opts.registry, device: program.device, mesh: opts.mesh });
  return compileHostProgram(recorded, opts.fuse);
}

/** Every wgsl file of one device, by file name. */
export function deviceWgslFiles(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number> }): Map<string, Uint8Array> {
  const hp = deviceHostProgram(program, opts);
  const { json, constants } = encodeHostProgram(hp, program.graph);
  const ts = generateHostModule(hp, { mesh: opts.mesh.toString(), device: program.device, coords: program.coords.slice(), kernelsFile: DEVICE_KERNELS_FILE });
  return new Map([
    [DEVICE_KERNELS_FILE, utf8(hostKernelsWgsl(hp, program.coords))],
    [HOST_PROGRAM_FILE, json],
    [HOST_CONSTANTS_FILE, constants],
    [HOST_MODULE_FILE, utf8(ts)],
    [HOST_JS_FILE, utf8(emitHostJs(ts))],
  ]);
}

/** The kernels.wgsl text of a host program: section i is program.kernels[i]. */
export function hostKernelsWgsl(p: HostProgram, coords: readonly number[]): string {
  const lines = [
    `// shardc kernels for device ${p.device} (coordinates ${coords.join(',')}), in first-dispatch order.`,
    `// Each section is a separate WGSL shader module with entry point main; collectives run on the host.`,
  ];
  const ids = kernelIdentifiers(p);
  p.kernels.forEach((k, i) => {
    const first = p.steps.find((s) => s.kind === 'dispatch' && s.kernel === i);
    const node = first ? `// node ${commentSafe(first.node)} (${commentSafe(first.op).slice(1, -1)})` : '// not dispatched';
    lines.push('', `// ---- kernel ${i}: ${ids[i]} ----`, node, renderKernel(k).trimEnd());
  });
  return `${lines.join('\n')}\n`;
}
