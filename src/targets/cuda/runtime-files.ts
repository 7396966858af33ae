/**
 * The C++ sources of the CUDA host runtime (runtime/cuda/ at the package root), copied into every
 * cuda bundle. Found relative to this module both when it runs from dist/targets/cuda (the
 * published package; package.json "files" lists runtime/) and from src/targets/cuda under jest
 * (CommonJS: __filename) or tsx (ESM: import.meta.url), by walking up to the package root.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The runtime files a bundle gets, in bundle order (paths relative to runtime/cuda). */
export const CUDA_RUNTIME_FILES = ['shardc_runtime.h', 'nccl_dl.h', 'host.cpp', 'nccl_dl.cpp', 'main.cu', 'runtime_selftest.cpp'] as const;

/**
 * This module's directory. CommonJS has __filename; in ESM the module's own URL is read from a
 * stack frame (import.meta would not parse under jest's CommonJS transform).
 */
function thisDir(): string {
  if (typeof __filename !== 'undefined') return dirname(__filename);
  const frame = (new Error().stack ?? '').split('\n').find((l) => /runtime-files\.(js|ts)/.test(l));
  const m = frame && /(file:\/\/[^\s)]+?|\/[^\s)]+?)(:\d+)+\)?$/.exec(frame.trim());
  if (!m) return process.cwd();
  return dirname(m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!);
}

/** runtime/cuda of the package this module belongs to. */
export function cudaRuntimeDir(): string {
  let dir = thisDir();
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, 'runtime', 'cuda');
    if (existsSync(join(candidate, 'shardc_runtime.h'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`the CUDA runtime sources (runtime/cuda) are missing from the shardc package near ${thisDir()}`);
}

/** The runtime sources by file name. */
export function cudaRuntimeSources(): Map<string, Uint8Array> {
  const dir = cudaRuntimeDir();
  return new Map(CUDA_RUNTIME_FILES.map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}
