/**
 * The files of a cuda bundle (`partition --target cuda`), from each device's ahead-of-time host
 * program (src/codegen/host: recordHostProgram + planMemory, the same program the wgsl target uses):
 *
 *   CMakeLists.txt                    project(LANGUAGES CXX CUDA); one executable `shardc_run` for
 *                                     every rank, plus `shardc_runtime_selftest` (no GPU needed)
 *   README.md                         build and launch commands (mpirun, torchrun, single process)
 *   devices.cpp                       the table rank → program, constants and launch table
 *   wmma_selfcheck.cu                 `shardc_run --selfcheck`: the tensor-core matmul against the
 *                                     f32 kernel on the GPU (src/codegen/cuda/wmma.ts)
 *   runtime/*                         the C++ host runtime (runtime/cuda of the package)
 *   device-<r>/kernels.cu             the device's distinct kernels (CUDA renderer of the kernel IR)
 *                                     and its launch table: kernel index → a function that unpacks
 *                                     the i32 params into the kernel's struct and launches it
 *   device-<r>/program.txt            the host program as lines the runtime reads (format below)
 *   device-<r>/constants.safetensors  every constant buffer `b<id>` in device words
 *
 * program.txt: `shardc-host-program 1`, `device <r>`, one `slot <bytes>` per memory-plan slot,
 * `buffer <id> <f32|i32|u32|f16|bf16> <length> <role 0 input|1 constant|2 temp> <slot>`,
 * `input|output <buffer> <type> <rank> <dims...>\t<name as JSON>`, and the steps in order:
 * `dispatch <kernel> <grid x y z> <block x y z> <n> <params...> <n> <buffers...> <outputs>\t<node>`
 * and `collective <op> <reduce> <dim> <n> <group...> <input|-1> <output> <type> <rank> <in dims...>
 * <rank> <out dims...> <n> <args...>\t<node>`, args per op: AllGather/ReduceScatter `unit`,
 * AllToAll `from_dim to_dim unit`, Broadcast `root`, Send/Recv `peer tag` (group = [sender,
 * receiver]). Grids are computed here (the params are fixed per step).
 *
 * Collectives a device does alone (LocalShard, LocalPartial, any collective over a group of one)
 * never reach the runtime: `expandLocalCollectives` turns each into dispatches of the box-copy
 * kernels of src/codegen/host/collective-kernels.ts (the kernels the WebGPU session runs for
 * them), rendered to CUDA like every other kernel.
 *
 * Half precision: a buffer holding a float16 / bfloat16 IR value (its HostBuffer.value's dtype in
 * the device graph) is stored as `__half` / `__nv_bfloat16` (`HostBuffer.storage`; buffer type
 * `f16` / `bf16` in program.txt, F16 / BF16 in the safetensors shard, slots sized in 2-byte
 * elements). The kernel IR stays f32: each kernel is rendered once per combination of storage
 * types it is dispatched with (a launch variant; program.txt's kernel index is the variant's),
 * loads convert to float and stores round to nearest-even. A matmul launch whose operands are
 * plain loads of half buffers with fitting shapes and strides gets the tensor-core variant
 * (src/codegen/cuda/wmma.ts wmmaPlan; grid [N/16, M/16, batch], block 32).
 */
import { type CudaVariant, cudaBlockDim, cudaGridDim, paramsStructName, renderCudaKernel, CUDA_PRELUDE } from '../codegen/cuda/kernel.js';
import { HALF_TYPE, type HalfStorage } from '../codegen/cuda/expr.js';
import { wmmaPlan, wmmaVariantGeometry } from '../codegen/cuda/wmma.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../ir/dtype.js';
import { toDeviceArray } from '../codegen/device-data.js';
import { collectiveLaunches } from '../codegen/host/collective-kernels.js';
import { describeStep, isLocalCollective } from '../codegen/host/lockstep.js';
import type { CollectiveStep, HostBuffer, HostProgram, HostStep } from '../codegen/host/program.js';
import type { Kernel } from '../codegen/kernel.js';
import { splitDim } from '../passes/sharding/shards.js';
import { commentSafe, identifier, stringLiteral } from '../codegen/names.js';
import { UserError } from '../ir/errors.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import { wmmaSelfcheckSource } from '../codegen/cuda/wmma.js';
import { cudaRuntimeSources } from '../targets/cuda/runtime-files.js';
import { utf8 } from './canonical.js';
import { concatParts, encodeSafetensorsRaw } from './safetensors.js';
import { deviceHostProgram } from './wgsl.js';

export const CUDA_KERNELS_FILE = 'kernels.cu';
export const CUDA_PROGRAM_FILE = 'program.txt';
export const CUDA_CONSTANTS_FILE = 'constants.safetensors';
export const WMMA_SELFCHECK_FILE = 'wmma_selfcheck.cu';
export const DEFAULT_CUDA_ARCHITECTURES = '70;80;86;89;90';

const COLLECTIVES = new Set(['AllReduce', 'AllGather', 'ReduceScatter', 'AllToAll', 'Broadcast', 'Send', 'Recv']);

/** The most buffers one box-copy kernel binds (local collectives use at most two). */
const MAX_BOX_BUFFERS = 16;

/**
 * The host program a cuda device runs: `deviceHostProgram` with local collectives as kernels and
 * float16/bfloat16 buffers in 2-byte storage (`withHalfStorage`).
 */
export function cudaHostProgram(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number> }): HostProgram {
  return withHalfStorage(expandLocalCollectives(deviceHostProgram(program, opts)), program);
}

/** Bytes of one element of a buffer on the cuda target. */
export const cudaElementBytes = (b: HostBuffer): number => (b.storage ? 2 : 4);

/**
 * `hp` with `storage` set on every f32 buffer whose IR value (or constant) is float16/bfloat16,
 * and each memory-plan slot resized to the largest buffer it holds in these element sizes (a
 * multiple of 4 bytes; the slot assignment, which depends only on lifetimes, is kept).
 */
export function withHalfStorage(hp: HostProgram, program: DeviceProgram): HostProgram {
  const dtypes = new Map<string, string>();
  const g = program.graph;
  for (const v of [...g.inputs, ...g.outputs, ...g.initializers, ...g.nodes.flatMap((n) => n.outputs)]) if (v.dtype) dtypes.set(v.name, v.dtype);
  const half = (d: string | undefined): HalfStorage | undefined => (d === 'float16' ? 'f16' : d === 'bfloat16' ? 'bf16' : undefined);
  let any = false;
  const buffers = hp.buffers.map((b) => {
    const storage = b.type === 'f32' ? half(dtypes.get(b.value) ?? b.constant?.dtype) : undefined;
    if (!storage) return b;
    any = true;
    return { ...b, storage };
  });
  if (!any) return hp;
  const need = hp.slots.map(() => 4);
  for (const b of buffers) need[b.slot] = Math.max(need[b.slot]!, Math.ceil((Math.max(1, b.length) * cudaElementBytes(b)) / 4) * 4);
  return { ...hp, buffers, slots: hp.slots.map((_, i) => ({ bytes: need[i]! })) };
}

/** One rendered kernel function of a device: a HostProgram kernel with a storage/WMMA variant. */
export interface CudaLaunchVariant extends CudaVariant {
  kernel: number;
}

const variantCache = new WeakMap<HostProgram, { variants: CudaLaunchVariant[]; ofStep: number[] }>();

/**
 * The distinct launch variants of a device's dispatches, in first-dispatch order, and for each
 * step the variant it launches (-1 for collectives). The variant of a dispatch: the storage of
 * each bound buffer, and WMMA where `wmmaPlan` accepts this launch.
 */
export function cudaLaunchVariants(hp: HostProgram): { variants: CudaLaunchVariant[]; ofStep: number[] } {
  const hit = variantCache.get(hp);
  if (hit) return hit;
  const variants: CudaLaunchVariant[] = [];
  const byKey = new Map<string, number>();
  const ofStep = hp.steps.map((s) => {
    if (s.kind !== 'dispatch') return -1;
    const k = hp.kernels[s.kernel]!;
    const storage: Record<string, HalfStorage> = {};
    for (const b of [...k.inputs, ...k.outputs]) {
      const h = hp.buffers[s.bindings[b.name]!]?.storage;
      if (h) storage[b.name] = h;
    }
    const wmma = k.body.kind === 'matmul' ? wmmaPlan(k.body, s.params, (name) => storage[name]) : undefined;
    const v: CudaLaunchVariant = { kernel: s.kernel, ...(Object.keys(storage).length ? { storage } : {}), ...(wmma ? { wmma } : {}) };
    const key = JSON.stringify([v.kernel, Object.entries(storage).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), wmma ?? null]);
    let i = byKey.get(key);
    if (i === undefined) {
      i = variants.push(v) - 1;
      byKey.set(key, i);
    }
    return i;
  });
  const out = { variants, ofStep };
  variantCache.set(hp, out);
  return out;
}

/**
 * `hp` with every collective its device does alone replaced by dispatches of box-copy kernels
 * (collective-kernels.ts); the new kernels are appended to `kernels`, deduplicated by CUDA text.
 */
export function expandLocalCollectives(hp: HostProgram): HostProgram {
  if (!hp.steps.some((s) => s.kind === 'collective' && isLocalCollective(s))) return hp;
  const kernels = hp.kernels.slice();
  const byCode = new Map<string, number>();
  const keyOf = (k: Kernel): string => renderCudaKernel(k, 'k').code.replace(/^\/\/ kernel .*\n/, '');
  kernels.forEach((k, i) => byCode.set(keyOf(k), i));
  const steps: HostStep[] = [];
  for (const s of hp.steps) {
    if (s.kind !== 'collective' || !isLocalCollective(s)) {
      steps.push(s);
      continue;
    }
    const launches = collectiveLaunches([s], MAX_BOX_BUFFERS, s.group.indexOf(hp.device));
    if (!launches) throw new Error(`local collective ${describeStep(s)} has no kernels`);
    for (const { launch, bind } of launches) {
      const key = keyOf(launch.kernel);
      let index = byCode.get(key);
      if (index === undefined) {
        index = kernels.push(launch.kernel) - 1;
        byCode.set(key, index);
      }
      const bindings: Record<string, number> = {};
      for (const [name, m] of Object.entries(bind)) {
        const id = m.which === 'input' ? s.input : s.output;
        if (id === undefined) throw new Error(`local collective ${describeStep(s)} has no ${m.which} buffer`);
        bindings[name] = id;
      }
      steps.push({ kind: 'dispatch', node: s.node, op: s.op, kernel: index, params: launch.params, bindings });
    }
  }
  return { ...hp, kernels, steps };
}

/** Every cuda file of one device, by file name. */
export function deviceCudaFiles(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number> }): Map<string, Uint8Array> {
  const hp = cudaHostProgram(program, opts);
  return new Map([
    [CUDA_KERNELS_FILE, utf8(cudaKernelsFile(hp, program.coords))],
    [CUDA_PROGRAM_FILE, utf8(cudaProgramText(hp))],
    [CUDA_CONSTANTS_FILE, cudaConstants(hp)],
  ]);
}

const kernelFn = (device: number, k: number): string => `d${device}_k${k}`;

/** device-<r>/kernels.cu: prelude, kernels, launchers and the launch table. */
export function cudaKernelsFile(hp: HostProgram, coords: readonly number[]): string {
  const d = hp.device;
  const out = [
    `// shardc CUDA kernels for device ${d} (coordinates ${coords.join(',')}), in first-dispatch order,`,
    '// and the launch table the host runtime indexes by kernel number (device-<r>/program.txt).',
    '#include "shardc_runtime.h"',
    '',
    CUDA_PRELUDE,
  ];
  const { variants } = cudaLaunchVariants(hp);
  if (variants.some((v) => v.storage))
    out.push('', '// 2-byte float storage (__half, __nv_bfloat16) and tensor-core fragments.', '#if defined(__CUDACC__)', '#include <cuda_fp16.h>', '#include <cuda_bf16.h>', '#endif', '#if defined(__CUDA_ARCH__)', '#include <mma.h>', '#endif');
  variants.forEach((v, i) => {
    const k = hp.kernels[v.kernel]!;
    const fn = kernelFn(d, i);
    const how = [v.storage ? `storage ${Object.entries(v.storage).map(([b, t]) => `${b}:${t}`).join(' ')}` : '', v.wmma ? 'WMMA' : ''].filter(Boolean).join(', ');
    out.push('', `// ---- kernel ${i}: ${identifier(k.name, 'k')}${how ? ` (${how})` : ''} ----`, renderCudaKernel(k, fn, v).code.trimEnd());
    const ty = (name: string, t: string): string => (v.storage?.[name] ? HALF_TYPE[v.storage[name]!].type : cType(t));
    const args = [
      ...k.inputs.map((b, j) => `static_cast<const ${ty(b.name, b.type)}*>(b[${j}])`),
      ...k.outputs.map((b, j) => `static_cast<${ty(b.name, b.type)}*>(b[${k.inputs.length + j}])`),
      'p',
    ];
    out.push(
      `static void launch_${fn}(const int* a, void* const* b, const unsigned* g, const unsigned* t, void* s) {`,
      `  ${paramsStructName(fn)} p{};`,
      ...k.params.map((name, j) => `  p.${identifier(name, 'p')} = a[${j}];`),
      `  ${fn}<<<dim3(g[0], g[1], g[2]), dim3(t[0], t[1], t[2]), 0, static_cast<cudaStream_t>(s)>>>(${args.join(', ')});`,
      '}',
    );
  });
  out.push(
    '',
    `extern const shardc::Launcher shardc_launchers_d${d}[] = {${variants.map((_, i) => `launch_${kernelFn(d, i)}`).join(', ') || 'nullptr'}};`,
    `extern const int shardc_launcher_count_d${d} = ${variants.length};`,
  );
  return out.join('\n') + '\n';
}

const cType = (t: string): string => (t === 'f32' ? 'float' : t === 'i32' ? 'int' : 'unsigned int');
const ROLE = { input: 0, constant: 1, temp: 2 } as const;
const typeOf = (t: string): string => (t === 'bool' ? 'u32' : t);
/** A buffer's element type in program.txt: its storage (f16, bf16) or its device type. */
const bufType = (b: HostBuffer): string => b.storage ?? typeOf(b.type);
const dims = (s: readonly number[]): string => [s.length, ...s].join(' ');

/** device-<r>/program.txt. */
export function cudaProgramText(hp: HostProgram): string {
  const lines = ['shardc-host-program 1', `device ${hp.device}`];
  for (const s of hp.slots) lines.push(`slot ${s.bytes}`);
  for (const b of hp.buffers) lines.push(`buffer ${b.id} ${bufType(b)} ${b.length} ${ROLE[b.role]} ${b.slot}`);
  const ref = (kw: string, r: HostProgram['inputs'][number]): void => {
    if (r.buffer === undefined) throw new UserError(`${kw} ${r.name} is computed on the host; the cuda target needs it in a device buffer`, { tensor: r.name });
    lines.push(`${kw} ${r.buffer} ${bufType(hp.buffers[r.buffer]!)} ${dims(r.shape)}\t${stringLiteral(r.name)}`);
  };
  hp.inputs.forEach((r) => ref('input', r));
  hp.outputs.forEach((r) => ref('output', r));
  const { variants, ofStep } = cudaLaunchVariants(hp);
  for (const [i, s] of hp.steps.entries()) {
    if (s.kind === 'dispatch') {
      const k = hp.kernels[s.kernel]!;
      const variant = ofStep[i]!;
      const wmma = variants[variant]!.wmma && k.body.kind === 'matmul' ? wmmaVariantGeometry(k.body, s.params) : undefined;
      const launch = { kernel: k, params: s.params };
      const params = k.params.map((p) => {
        const v = s.params[p];
        if (v === undefined) throw new Error(`dispatch of ${s.node} lacks param ${p}`);
        return v;
      });
      const binds = [...k.inputs, ...k.outputs].map((b) => {
        const id = s.bindings[b.name];
        if (id === undefined) throw new Error(`dispatch of ${s.node} does not bind ${b.name}`);
        return id;
      });
      lines.push(
        `dispatch ${variant} ${(wmma?.grid ?? cudaGridDim(launch)).join(' ')} ${(wmma?.block ?? cudaBlockDim(k)).join(' ')} ${params.length} ${params.join(' ')} ${binds.length} ${binds.join(' ')} ${k.outputs.length}\t${stringLiteral(s.node)}`.replace(/ {2,}/g, ' '),
      );
    } else lines.push(collectiveLine(s, hp));
  }
  return lines.join('\n') + '\n';
}

function collectiveLine(s: CollectiveStep, hp: HostProgram): string {
  if (!COLLECTIVES.has(s.op)) throw new UserError(`collective ${s.op} is not supported by the cuda target (${[...COLLECTIVES].join(', ')}; local ones become kernels)`, { node: s.node });
  const reduce = String(s.attributes['reduce'] ?? 'sum');
  if (!['sum', 'max', 'min'].includes(reduce)) throw new UserError(`reduction ${reduce} is not supported by the cuda target`, { node: s.node });
  const rank = s.outputShape.length;
  const int = (name: string, def: number): number => {
    const v = s.attributes[name] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new UserError(`${s.op} attribute ${name} must be an integer, got ${JSON.stringify(v)}`, { node: s.node });
    return v;
  };
  const dimOf = (name: string): number => {
    let d = int(name, 0);
    if (d < 0) d += rank;
    if (!(d >= 0 && d < rank)) throw new UserError(`${s.op} ${name} ${d} is out of range for rank ${rank}`, { node: s.node });
    return d;
  };
  let dim = 0;
  let args: number[] = [];
  const inShape = s.inputShape ?? s.outputShape;
  switch (s.op) {
    case 'AllGather':
    case 'ReduceScatter':
      dim = dimOf('dim');
      args = [int('unit', 1)];
      break;
    case 'AllToAll': {
      const from = dimOf('from_dim');
      const to = dimOf('to_dim');
      const unit = int('unit', 1);
      const k = s.group.length;
      const me = s.group.indexOf(hp.device);
      // The runtime derives every peer's block from this member's shapes: members must hold equal
      // shapes (the sharding passes produce balanced shards; an uneven AllToAll is refused here).
      const split = splitDim(inShape[to]!, k, unit);
      const even = inShape.every((n, d) => (d === from ? s.outputShape[d] === n * k : d === to ? s.outputShape[d] === split[me]!.size : s.outputShape[d] === n));
      if (from === to || !even || new Set(split.map((r) => r.size)).size !== 1)
        throw new UserError(`AllToAll from [${inShape.join(',')}] to [${s.outputShape.join(',')}] over ${k} devices is uneven; the cuda target needs equal blocks`, { node: s.node });
      args = [from, to, unit];
      break;
    }
    case 'Broadcast':
      args = [int('root', 0)];
      if (args[0]! < 0 || args[0]! >= s.group.length) throw new UserError(`Broadcast root ${args[0]} is outside a group of ${s.group.length}`, { node: s.node });
      break;
    case 'Send':
    case 'Recv':
      if (s.group.length !== 2) throw new UserError(`${s.op} needs a group of [sender, receiver], got ${s.group.length} devices`, { node: s.node });
      args = [s.op === 'Send' ? s.group[1]! : s.group[0]!, int('tag', 0)];
      break;
  }
  const type = bufType(hp.buffers[s.output]!);
  if (s.input !== undefined && bufType(hp.buffers[s.input]!) !== type) throw new Error(`collective ${describeStep(s)} moves ${bufType(hp.buffers[s.input]!)} into ${type}`);
  return `collective ${s.op} ${reduce} ${dim} ${s.group.length} ${s.group.join(' ')} ${s.input ?? -1} ${s.output} ${type} ${dims(inShape)} ${dims(s.outputShape)} ${args.length}${args.length ? ' ' + args.join(' ') : ''}\t${stringLiteral(s.node)}`;
}

/** device-<r>/constants.safetensors: constant buffers as device words (`b<id>`). */
export function cudaConstants(hp: HostProgram): Uint8Array {
  const items = hp.buffers
    .filter((b) => b.role === 'constant')
    .map((b) => {
      if (!b.constant) throw new Error(`constant buffer ${b.id} has no contents`);
      const words = toDeviceArray(b.constant, b.value);
      if (b.storage) {
        // 2-byte floats, rounded to nearest-even (exact for values already of that dtype).
        const bits = new Uint16Array(b.length);
        const f = b.storage === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
        for (let i = 0; i < Math.min(words.length, b.length); i++) bits[i] = f(words[i]!);
        return { name: `b${b.id}`, dtype: b.storage === 'f16' ? 'float16' : 'bfloat16', shape: [b.length], bytes: new Uint8Array(bits.buffer) } as const;
      }
      const bytes = new Uint8Array(b.length * 4);
      bytes.set(new Uint8Array(words.buffer, words.byteOffset, Math.min(words.byteLength, bytes.length)));
      return { name: `b${b.id}`, dtype: b.type === 'f32' ? 'float32' : b.type === 'i32' ? 'int32' : 'uint32', shape: [b.length], bytes } as const;
    });
  return concatParts(encodeSafetensorsRaw(items, { 'shardc.device': String(hp.device) }).parts);
}

/** The bundle-level files of a cuda bundle (CMakeLists.txt, README.md, devices.cpp, runtime/*). */
export function cudaBundleFiles(devices: readonly { device: number }[], info: { mesh: string; model: string }): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [name, bytes] of cudaRuntimeSources()) files.set(`runtime/${name}`, bytes);
  const sorted = devices.slice().sort((a, b) => a.device - b.device);
  files.set('devices.cpp', utf8(devicesCpp(sorted.map((d) => d.device))));
  files.set(WMMA_SELFCHECK_FILE, utf8(wmmaSelfcheckSource()));
  files.set('CMakeLists.txt', utf8(cmakeLists(sorted.map((d) => d.device))));
  files.set('README.md', utf8(readme(sorted.length, info)));
  return files;
}

function devicesCpp(devices: number[]): string {
  return [
    '// Generated by shardc: rank → host program, constants and launch table.',
    '#include "shardc_runtime.h"',
    '',
    ...devices.flatMap((d) => [`extern const shardc::Launcher shardc_launchers_d${d}[];`, `extern const int shardc_launcher_count_d${d};`]),
    '',
    'extern const shardc::DeviceEntry shardc_devices[] = {',
    ...devices.map((d) => `  {"device-${d}/${CUDA_PROGRAM_FILE}", "device-${d}/${CUDA_CONSTANTS_FILE}", shardc_launchers_d${d}, shardc_launcher_count_d${d}},`),
    '};',
    `extern const int shardc_device_count = ${devices.length};`,
    '',
  ].join('\n');
}

function cmakeLists(devices: number[]): string {
  return `# Generated by shardc (cuda bundle). Build:
#   cmake -S . -B build -G Ninja [-DCMAKE_CUDA_ARCHITECTURES=80] && cmake --build build
cmake_minimum_required(VERSION 3.18)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(SHARDC_DEFAULT_ARCHITECTURES ON)
endif()
project(shardc_bundle LANGUAGES CXX CUDA)
if(SHARDC_DEFAULT_ARCHITECTURES)
  # CUDA 13 dropped sm_70 (Volta): keep the list buildable with every toolkit.
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 13)
    set(CMAKE_CUDA_ARCHITECTURES "75;80;86;89;90")
  else()
    set(CMAKE_CUDA_ARCHITECTURES "${DEFAULT_CUDA_ARCHITECTURES}")
  endif()
endif()
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()
find_package(Threads REQUIRED)

# Host parts without CUDA (program, safetensors, environment, rendezvous, NCCL loading).
add_library(shardc_host STATIC runtime/host.cpp runtime/nccl_dl.cpp)
target_include_directories(shardc_host PUBLIC runtime)
target_link_libraries(shardc_host PUBLIC Threads::Threads \${CMAKE_DL_LIBS})

add_executable(shardc_run runtime/main.cu devices.cpp ${WMMA_SELFCHECK_FILE}
${devices.map((d) => `  device-${d}/${CUDA_KERNELS_FILE}`).join('\n')})
target_link_libraries(shardc_run PRIVATE shardc_host)
target_compile_definitions(shardc_run PRIVATE SHARDC_BUNDLE_DIR="\${CMAKE_CURRENT_SOURCE_DIR}")

add_executable(shardc_runtime_selftest runtime/runtime_selftest.cpp)
target_link_libraries(shardc_runtime_selftest PRIVATE shardc_host)
`;
}

function readme(devices: number, info: { mesh: string; model: string }): string {
  const n = devices;
  return `# shardc CUDA bundle

Model ${commentSafe(info.model)}, mesh \`${info.mesh}\`: ${n} device program${n === 1 ? '' : 's'}, one process per GPU.

## Build

Needs CMake ≥ 3.18, a C++17 compiler and the CUDA toolkit (nvcc). NCCL is not needed to build:
it is loaded at run time (\`dlopen("libnccl.so.2")\`), and only when more than one process runs.

    cmake -S . -B build -G Ninja -DCMAKE_CUDA_ARCHITECTURES=80   # your GPUs: 80 = A100, 90 = H100, 89 = L4/4090
    cmake --build build

Without \`-DCMAKE_CUDA_ARCHITECTURES\` the build targets ${DEFAULT_CUDA_ARCHITECTURES} (75 instead of 70 with
CUDA ≥ 13, which dropped Volta). Outputs: \`build/shardc_run\` (every rank runs it) and
\`build/shardc_runtime_selftest\` (host-side checks, no GPU needed:
\`./build/shardc_runtime_selftest . ${n}\`).

## Run with mpirun

    mpirun -np ${n} ./build/shardc_run

Rank, world size and local rank come from \`OMPI_COMM_WORLD_RANK\`, \`OMPI_COMM_WORLD_SIZE\`,
\`OMPI_COMM_WORLD_LOCAL_RANK\`; each process uses GPU \`local rank % visible GPUs\`. NCCL's unique
ids travel over a small TCP rendezvous: rank 0 listens on \`MASTER_PORT\` (default 29500) and the
others connect to \`MASTER_ADDR\` (default 127.0.0.1). Across nodes, export MASTER_ADDR (a host
name or address of rank 0's node, reachable from every node):

    mpirun -np ${n} -H node0:G,node1:G -x MASTER_ADDR=node0 -x MASTER_PORT=29500 ./build/shardc_run   # G = GPUs per node

## Run torchrun-style (or by hand)

The variables torchrun sets: \`RANK\`, \`WORLD_SIZE\`, \`LOCAL_RANK\`, \`MASTER_ADDR\`, \`MASTER_PORT\`.

    torchrun --nproc-per-node ${n} --no-python ./build/shardc_run
    # by hand, one shell per rank r = 0..${n - 1}:
    RANK=r LOCAL_RANK=r WORLD_SIZE=${n} MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 ./build/shardc_run

A launcher that starts a different number of processes than the bundle has devices is refused
with a message naming both counts.

## Single-process mode

Every rank of the mesh runs as a thread on one GPU, collectives are device-local copies (no
NCCL needed): for tests and small machines.

    ./build/shardc_run --single-process

## Inputs and outputs

\`--inputs DIR\` reads raw little-endian files \`<rank>.<input>.bin\` (each rank's local shard;
float32 as is, float16/bfloat16 as their 2-byte encodings, int64 narrowed to int32, bool as
uint32 0/1); without it inputs are zeros.
\`--outputs DIR\` writes \`<rank>.<output>.bin\` in the same encoding; without it each rank prints
a checksum per output. \`--bundle DIR\` (or SHARDC_BUNDLE) points at the bundle when the binary
runs from elsewhere (default: the directory it was built from).

## Collectives and timeouts

AllReduce, AllGather, ReduceScatter and Broadcast run as NCCL collectives, AllToAll as grouped
NCCL send/receive pairs (blocks packed and unpacked by copy kernels), pipeline stages exchange
activations with NCCL Send/Recv; LocalShard and LocalPartial are kernels of the device program.
Collectives run on their own stream; a kernel waits only for the collectives whose buffers it
touches.

Every collective has a timeout (default 600 s): a watchdog thread checks each collective in
flight (its completion and \`ncclCommGetAsyncError\`) every 50 ms, also while the host waits
elsewhere. On a timeout or a peer's failure the process aborts its NCCL communicators and exits
with status 3 and a message such as

    shardc: rank 1: collective #4 AllReduce (node "AllReduce_tp_7") timed out after 600 s (a peer failed or hangs; ...)

In single-process mode a rank waiting for the others past the timeout exits the same way.

## Tensor cores

    ./build/shardc_run --selfcheck

compares the tensor-core (WMMA, 16×16×16, f16 and bf16 storage with f32 accumulation) matmul with
the plain f32 kernel on this GPU and prints the largest difference (exit 0 when both agree).

## Environment and options

| variable / option | meaning | default |
|---|---|---|
| \`OMPI_COMM_WORLD_RANK\`, \`_SIZE\`, \`_LOCAL_RANK\` | rank, world, local rank (mpirun) | |
| \`RANK\`, \`WORLD_SIZE\`, \`LOCAL_RANK\` | the same, torchrun style | 0, 1, RANK |
| \`MASTER_ADDR\`, \`MASTER_PORT\` | rank 0's rendezvous address | 127.0.0.1, 29500 |
| \`SHARDC_COLLECTIVE_TIMEOUT_S\`, \`--timeout S\` | per-collective timeout in seconds | 600 |
| \`SHARDC_NCCL_LIBRARY\` | path of libnccl.so.2 (e.g. from pip's nvidia-nccl-cu12) | libnccl.so.2 |
| \`SHARDC_BUNDLE\`, \`--bundle DIR\` | the bundle directory | where it was built |
| \`--inputs DIR\`, \`--outputs DIR\` | raw input/output files | zeros, checksums |
| \`--single-process\` | all ranks on one GPU | off |
| \`--selfcheck\` | tensor-core matmul self-check | off |

Exit status: 0 success, 1 bad input or environment (missing NCCL, no GPU, wrong process count,
bad files), 2 an internal error (CUDA failure), 3 a collective failed or timed out.
`;
}
