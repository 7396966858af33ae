/**
 * The files of a cuda bundle (`partition --target cuda`), from each device's ahead-of-time host
 * program (src/codegen/host: recordHostProgram + planMemory, the same program the wgsl target uses):
 *
 *   CMakeLists.txt                    project(LANGUAGES CXX CUDA); one executable `shardc_run` for
 *                                     every rank, plus `shardc_runtime_selftest` (no GPU needed)
 *   README.md                         build and launch commands (mpirun, torchrun, single process)
 *   devices.cpp                       the table rank → program, constants and launch table
 *   runtime/*                         the C++ host runtime (runtime/cuda of the package)
 *   device-<r>/kernels.cu             the device's distinct kernels (CUDA renderer of the kernel IR)
 *                                     and its launch table: kernel index → a function that unpacks
 *                                     the i32 params into the kernel's struct and launches it
 *   device-<r>/program.txt            the host program as lines the runtime reads (format below)
 *   device-<r>/constants.safetensors  every constant buffer `b<id>` in device words
 *
 * program.txt: `shardc-host-program 1`, `device <r>`, one `slot <bytes>` per memory-plan slot,
 * `buffer <id> <f32|i32|u32> <length> <role 0 input|1 constant|2 temp> <slot>`,
 * `input|output <buffer> <type> <rank> <dims...>\t<name as JSON>`, and the steps in order:
 * `dispatch <kernel> <grid x y z> <block x y z> <n> <params...> <n> <buffers...> <outputs>\t<node>`
 * and `collective <op> <reduce> <dim> <n> <group...> <input|-1> <output> <type> <rank> <in dims...>
 * <rank> <out dims...>\t<node>`. Grids are computed here (the params are fixed per step).
 */
import { cudaBlockDim, cudaGridDim, paramsStructName, renderCudaKernel, CUDA_PRELUDE } from '../codegen/cuda/kernel.js';
import { toDeviceArray } from '../codegen/device-data.js';
import type { CollectiveStep, HostProgram } from '../codegen/host/program.js';
import { commentSafe, identifier, stringLiteral } from '../codegen/names.js';
import { UserError } from '../ir/errors.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { DeviceMesh } from '../passes/sharding/mesh.js';
import { cudaRuntimeSources } from '../targets/cuda/runtime-files.js';
import { utf8 } from './canonical.js';
import { concatParts, encodeSafetensorsRaw } from './safetensors.js';
import { deviceHostProgram } from './wgsl.js';

export const CUDA_KERNELS_FILE = 'kernels.cu';
export const CUDA_PROGRAM_FILE = 'program.txt';
export const CUDA_CONSTANTS_FILE = 'constants.safetensors';
export const DEFAULT_CUDA_ARCHITECTURES = '70;80;86;89;90';

const COLLECTIVES = new Set(['AllReduce', 'AllGather', 'ReduceScatter']);

/** Every cuda file of one device, by file name. */
export function deviceCudaFiles(program: DeviceProgram, opts: { registry: OpRegistry; mesh: DeviceMesh; bindings?: Record<string, number> }): Map<string, Uint8Array> {
  const hp = deviceHostProgram(program, opts);
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
  hp.kernels.forEach((k, i) => {
    const fn = kernelFn(d, i);
    out.push('', `// ---- kernel ${i}: ${identifier(k.name, 'k')} ----`, renderCudaKernel(k, fn).code.trimEnd());
    const args = [
      ...k.inputs.map((b, j) => `static_cast<const ${cType(b.type)}*>(b[${j}])`),
      ...k.outputs.map((b, j) => `static_cast<${cType(b.type)}*>(b[${k.inputs.length + j}])`),
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
    `extern const shardc::Launcher shardc_launchers_d${d}[] = {${hp.kernels.map((_, i) => `launch_${kernelFn(d, i)}`).join(', ') || 'nullptr'}};`,
    `extern const int shardc_launcher_count_d${d} = ${hp.kernels.length};`,
  );
  return out.join('\n') + '\n';
}

const cType = (t: string): string => (t === 'f32' ? 'float' : t === 'i32' ? 'int' : 'unsigned int');
const ROLE = { input: 0, constant: 1, temp: 2 } as const;
const typeOf = (t: string): string => (t === 'bool' ? 'u32' : t);
const dims = (s: readonly number[]): string => [s.length, ...s].join(' ');

/** device-<r>/program.txt. */
export function cudaProgramText(hp: HostProgram): string {
  const lines = ['shardc-host-program 1', `device ${hp.device}`];
  for (const s of hp.slots) lines.push(`slot ${s.bytes}`);
  for (const b of hp.buffers) lines.push(`buffer ${b.id} ${typeOf(b.type)} ${b.length} ${ROLE[b.role]} ${b.slot}`);
  const ref = (kw: string, r: HostProgram['inputs'][number]): void => {
    if (r.buffer === undefined) throw new UserError(`${kw} ${r.name} is computed on the host; the cuda target needs it in a device buffer`, { tensor: r.name });
    lines.push(`${kw} ${r.buffer} ${typeOf(hp.buffers[r.buffer]!.type)} ${dims(r.shape)}\t${stringLiteral(r.name)}`);
  };
  hp.inputs.forEach((r) => ref('input', r));
  hp.outputs.forEach((r) => ref('output', r));
  for (const s of hp.steps) {
    if (s.kind === 'dispatch') {
      const k = hp.kernels[s.kernel]!;
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
        `dispatch ${s.kernel} ${cudaGridDim(launch).join(' ')} ${cudaBlockDim(k).join(' ')} ${params.length} ${params.join(' ')} ${binds.length} ${binds.join(' ')} ${k.outputs.length}\t${stringLiteral(s.node)}`.replace(/ {2,}/g, ' '),
      );
    } else lines.push(collectiveLine(s, hp));
  }
  return lines.join('\n') + '\n';
}

function collectiveLine(s: CollectiveStep, hp: HostProgram): string {
  if (!COLLECTIVES.has(s.op)) throw new UserError(`collective ${s.op} is not supported by the cuda target yet (AllReduce, AllGather, ReduceScatter)`, { node: s.node });
  const reduce = String(s.attributes['reduce'] ?? 'sum');
  if (!['sum', 'max', 'min'].includes(reduce)) throw new UserError(`reduction ${reduce} is not supported by the cuda target`, { node: s.node });
  const rank = s.outputShape.length;
  let dim = Number(s.attributes['dim'] ?? 0);
  if (dim < 0) dim += rank;
  if (s.op !== 'AllReduce' && !(dim >= 0 && dim < rank)) throw new UserError(`${s.op} dim ${dim} is out of range`, { node: s.node });
  const type = typeOf(hp.buffers[s.output]!.type);
  return `collective ${s.op} ${reduce} ${dim} ${s.group.length} ${s.group.join(' ')} ${s.input ?? -1} ${s.output} ${type} ${dims(s.inputShape ?? s.outputShape)} ${dims(s.outputShape)}\t${stringLiteral(s.node)}`;
}

/** device-<r>/constants.safetensors: constant buffers as device words (`b<id>`). */
export function cudaConstants(hp: HostProgram): Uint8Array {
  const items = hp.buffers
    .filter((b) => b.role === 'constant')
    .map((b) => {
      if (!b.constant) throw new Error(`constant buffer ${b.id} has no contents`);
      const words = toDeviceArray(b.constant, b.value);
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

add_executable(shardc_run runtime/main.cu devices.cpp
${devices.map((d) => `  device-${d}/${CUDA_KERNELS_FILE}`).join('\n')})
target_link_libraries(shardc_run PRIVATE shardc_host)
target_compile_definitions(shardc_run PRIVATE SHARDC_BUNDLE_DIR="\${CMAKE_CURRENT_SOURCE_DIR}")

add_executable(shardc_runtime_selftest runtime/runtime_selftest.cpp)
target_link_libraries(shardc_runtime_selftest PRIVATE shardc_host)
`;
}

function readme(devices: number, info: { mesh: string; model: string }): string {
  return `# shardc CUDA bundle

Model ${commentSafe(info.model)}, mesh \`${info.mesh}\`: ${devices} device program${devices === 1 ? '' : 's'}.

## Build

Needs CMake ≥ 3.18, a C++17 compiler and the CUDA toolkit (nvcc). NCCL is not needed to build:
it is loaded at run time (\`dlopen("libnccl.so.2")\`).

    cmake -S . -B build -G Ninja -DCMAKE_CUDA_ARCHITECTURES=80   # default: ${DEFAULT_CUDA_ARCHITECTURES} (75 instead of 70 on CUDA ≥ 13)
    cmake --build build

## Run

One process per GPU (${devices} processes), rank and world from the launcher:

    mpirun -np ${devices} ./build/shardc_run
    torchrun --nproc-per-node ${devices} --no-python ./build/shardc_run   # RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
    RANK=0 WORLD_SIZE=${devices} MASTER_ADDR=host0 MASTER_PORT=29500 ./build/shardc_run   # by hand, one per rank

Multi-node works with the same variables (MASTER_ADDR must be reachable from every node; rank 0
listens on MASTER_PORT, default 29500, to hand out NCCL's unique ids). Every rank of the mesh on
one GPU, with device-local collectives (no NCCL needed):

    ./build/shardc_run --single-process

Options: \`--bundle DIR\` (default: this directory, or $SHARDC_BUNDLE), \`--inputs DIR\` (raw
little-endian files \`<rank>.<input>.bin\`; int64 as int32, bool as uint32; default zeros),
\`--outputs DIR\` (writes \`<rank>.<output>.bin\`; default: print a checksum per output),
\`--timeout SECONDS\` or SHARDC_COLLECTIVE_TIMEOUT_S (per collective, default 600). On a timeout
or a peer's failure the process aborts the NCCL communicator and exits 3 naming the rank, the
collective and its sequence number. SHARDC_NCCL_LIBRARY overrides the NCCL library path.

\`./build/shardc_runtime_selftest\` checks the host parts (program and safetensors reading,
environment parsing, rendezvous, NCCL loading) without a GPU.
`;
}
