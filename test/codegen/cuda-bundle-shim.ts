/**
 * Runs a whole cuda bundle without a GPU: each device's own `device-<r>/kernels.cu` (its launch
 * table included; the `<<<grid, block, 0, stream>>>` launches rewritten to the shim's
 * `shim_launch`) is compiled as host C++ with test/codegen/cuda-shim.h, together with a small
 * driver that reads the bundle's `program.txt` and `constants.safetensors` through the runtime's
 * own parser (runtime/cuda/host.cpp) and runs dispatch steps [from, to) over the memory plan's
 * slots, kept in a state file (the slots back to back) between calls.
 *
 * TypeScript drives the devices in lockstep (src/codegen/host/lockstep.ts, on the same host
 * programs the bundle was written from: src/bundle/cuda.ts cudaHostProgram) and does the
 * collectives between kernels with the CPU runtime's semantics, reading and writing the members'
 * buffers in the state. What this checks: the kernels' CUDA text and launchers, launch geometry,
 * program.txt, constants, the memory plan and the local collectives rendered as box kernels.
 *
 * Half storage (float16/bfloat16 buffers, HostBuffer.storage): the shim header defines __half and
 * __nv_bfloat16 as bit patterns with round-to-nearest-even conversions; TypeScript reads and
 * writes those buffers through f32ToF16Bits / f32ToBf16Bits. The tensor-core (WMMA) launch
 * variants run their scalar path here (g++ has no __CUDA_ARCH__): same launch geometry, operand
 * offsets and epilogue as on the GPU, products summed in f32 in k order instead of by fragments.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromDeviceArray, toDeviceArray } from '../../src/codegen/device-data.js';
import type { DeviceArray } from '../../src/codegen/cpu.js';
import { groupCollectiveHost, lockstepSchedule } from '../../src/codegen/host/lockstep.js';
import type { CollectiveStep, HostBuffer, HostProgram } from '../../src/codegen/host/program.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/ir/dtype.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { SHIM } from './cuda-harness.js';

const RUNTIME = join(__dirname, '..', '..', 'runtime', 'cuda');

/** device-<r>/kernels.cu with its launches rewritten for the shim. */
export function shimKernelsSource(kernelsCu: string): string {
  const launch = /(\w+)<<<dim3\(g\[0\], g\[1\], g\[2\]\), dim3\(t\[0\], t\[1\], t\[2\]\), 0, static_cast<cudaStream_t>\(s\)>>>\((.*)\);/g;
  const out = kernelsCu.replace(launch, (_, fn: string, args: string) => `(void)s; shim_launch(dim3{g[0], g[1], g[2]}, dim3{t[0], t[1], t[2]}, [&] { ${fn}(${args}); });`);
  if (out.includes('<<<')) throw new Error('kernels.cu has a launch the shim rewrite does not know');
  return out;
}

const driver = (d: number): string => `
// Driver: shim <bundle> init <state>  |  shim <bundle> run <state> <from> <to>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
int main(int argc, char** argv) {
  using namespace shardc;
  const std::string bundle = argv[1], mode = argv[2], state = argv[3];
  Program p = read_program(bundle + "/device-${d}/program.txt");
  std::vector<size_t> offset;
  size_t total = 0;
  for (auto b : p.slot_bytes) { offset.push_back(total); total += (size_t)b; }
  std::vector<unsigned char> mem(total);
  if (mode == "init") {
    SafeTensors st = read_safetensors(bundle + "/device-${d}/constants.safetensors");
    for (auto& b : p.buffers) {
      if (b.role != Role::Constant) continue;
      const SafeTensor* t = st.find("b" + std::to_string(b.id));
      if (!t || t->end - t->begin != (uint64_t)b.length * elem_bytes(b.type)) { std::fprintf(stderr, "constant b%d missing\\n", b.id); return 1; }
      std::memcpy(mem.data() + offset[b.slot], st.data.data() + t->begin, t->end - t->begin);
    }
  } else {
    std::ifstream in(state, std::ios::binary);
    in.read((char*)mem.data(), (std::streamsize)total);
    const int from = std::atoi(argv[4]), to = std::atoi(argv[5]);
    for (int i = from; i < to; i++) {
      const Step& s = p.steps[i];
      if (s.is_collective) { std::fprintf(stderr, "step %d is a collective\\n", i); return 1; }
      std::vector<void*> bufs;
      for (int b : s.d.bindings) bufs.push_back(mem.data() + offset[p.buffers[b].slot]);
      shardc_launchers_d${d}[s.d.kernel](s.d.params.data(), bufs.data(), s.d.grid, s.d.block, nullptr);
    }
  }
  std::ofstream out(state, std::ios::binary);
  out.write((const char*)mem.data(), (std::streamsize)total);
  return 0;
}
`;

/** The runtime's host.cpp compiled once into `dir` (program and safetensors readers). */
function hostObject(dir: string): string {
  const obj = join(dir, 'host.o');
  if (!existsSync(obj)) execFileSync('g++', ['-std=c++17', '-O0', '-c', '-o', obj, join(RUNTIME, 'host.cpp')], { stdio: 'pipe' });
  return obj;
}

/**
 * Compiles the shim executable of device `d` of `bundle` into `dir` (host.cpp's object cached in
 * `objectDir`); returns its path. -O0: the kernels are tiny and compile time dominates.
 */
export function buildDeviceShim(bundle: string, d: number, dir: string, objectDir = dir): string {
  const src = join(dir, `shim-d${d}.cpp`);
  const kernels = shimKernelsSource(readFileSync(join(bundle, `device-${d}`, 'kernels.cu'), 'utf8'));
  writeFileSync(src, `typedef void* cudaStream_t;\n${kernels}\n${driver(d)}`);
  const exe = join(dir, `shim-d${d}`);
  execFileSync('g++', ['-std=c++17', '-O0', '-fwrapv', '-pthread', '-include', SHIM, '-I', RUNTIME, '-o', exe, src, hostObject(objectDir)], { stdio: 'pipe' });
  return exe;
}

/** Typed view of a buffer in a device's state (its slot, offset 0); 2-byte floats as bit patterns. */
function view(state: Buffer, offsets: number[], b: HostBuffer): DeviceArray | Uint16Array {
  const at = state.byteOffset + offsets[b.slot]!;
  const n = Math.max(1, b.length);
  if (b.storage) return new Uint16Array(state.buffer, at, n);
  return b.type === 'f32' ? new Float32Array(state.buffer, at, n) : b.type === 'i32' ? new Int32Array(state.buffer, at, n) : new Uint32Array(state.buffer, at, n);
}

/** Device words of a buffer as the CPU side sees them (2-byte floats widened to f32). */
function wordsOf(state: Buffer, offsets: number[], b: HostBuffer): DeviceArray {
  const v = view(state, offsets, b);
  if (!(v instanceof Uint16Array)) return v;
  const f = b.storage === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  return Float32Array.from(v, (h) => f(h));
}

/** Writes device words into a buffer (f32 rounded to nearest-even into 2-byte storage). */
function setWords(state: Buffer, offsets: number[], b: HostBuffer, data: DeviceArray): void {
  const v = view(state, offsets, b);
  const n = Math.min(data.length, b.length);
  if (v instanceof Uint16Array) {
    const f = b.storage === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < n; i++) v[i] = f(data[i]!);
  } else v.set(data.subarray(0, n));
}

/**
 * Runs every device's bundle program through its shim executable in lockstep; `feeds` are each
 * device's local inputs. Returns each device's outputs and the number of kernel launches run.
 */
export function runBundleOnShim(bundle: string, programs: readonly HostProgram[], exes: readonly string[], feeds: readonly ReadonlyMap<string, Tensor>[], dir: string): { outputs: Map<string, Tensor>[]; dispatches: number } {
  const files = programs.map((_, d) => join(dir, `state-d${d}.bin`));
  const states: Buffer[] = [];
  const offsets = programs.map((p) => {
    let at = 0;
    return p.slots.map((s) => ((at += s.bytes), at - s.bytes));
  });
  const write = (d: number, id: number, t: Tensor): void => {
    const b = programs[d]!.buffers[id]!;
    setWords(states[d]!, offsets[d]!, b, toDeviceArray(t, b.value));
  };
  const read = (d: number, id: number, s: { dtype: Tensor['dtype']; shape: readonly number[] }): Tensor => fromDeviceArray(wordsOf(states[d]!, offsets[d]!, programs[d]!.buffers[id]!), s.dtype, s.shape);
  programs.forEach((p, d) => {
    execFileSync(exes[d]!, [bundle, 'init', files[d]!], { stdio: 'pipe' });
    states.push(readFileSync(files[d]!));
    for (const i of p.inputs) write(d, i.buffer!, feeds[d]!.get(i.name)!);
  });
  let dispatches = 0;
  const sent = new Map<string, Tensor>();
  const input = (d: number, s: CollectiveStep): Tensor => read(d, s.input!, { dtype: s.dtype, shape: s.inputShape! });
  for (const e of lockstepSchedule(programs)) {
    if (e.kind === 'local') {
      writeFileSync(files[e.device]!, states[e.device]!);
      execFileSync(exes[e.device]!, [bundle, 'run', files[e.device]!, String(e.from), String(e.to)], { stdio: 'pipe', maxBuffer: 1 << 26 });
      states[e.device] = readFileSync(files[e.device]!);
      dispatches += e.to - e.from;
    } else if (e.kind === 'send') {
      sent.set(`${e.device}:${e.step}`, input(e.device, programs[e.device]!.steps[e.step] as CollectiveStep));
    } else if (e.kind === 'recv') {
      write(e.device, (programs[e.device]!.steps[e.step] as CollectiveStep).output, sent.get(`${e.from.device}:${e.from.step}`)!);
    } else {
      const steps = e.members.map((m) => programs[m.device]!.steps[m.step] as CollectiveStep);
      const outs = groupCollectiveHost(steps, e.members.map((m) => m.device), steps.map((s, k) => input(e.members[k]!.device, s)));
      e.members.forEach((m, k) => write(m.device, steps[k]!.output, outs[k]!));
    }
  }
  const outputs = programs.map((p, d) => new Map(p.outputs.map((o) => [o.name, o.host ?? read(d, o.buffer!, o)])));
  return { outputs, dispatches };
}
