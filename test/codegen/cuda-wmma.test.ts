/**
 * The tensor-core matmul (src/codegen/cuda/wmma.ts) for f16/bf16 storage with f32 accumulation.
 *
 *  - nvcc compiles the bundle's `wmma_selfcheck.cu` (both WMMA kernels, the f32 reference kernel
 *    and the `shardc_run --selfcheck` driver) for sm_75 and sm_80 in one call: WMMA fragments
 *    for f16 on both, for bf16 on sm_80, the scalar path for bf16 on sm_75.
 *  - The shim (no GPU) runs the kernels' scalar path — the same launch geometry, tile indexing
 *    and half → float loads — with host stand-ins for __half/__nv_bfloat16 (bit patterns from
 *    src/ir/dtype.ts), against f32 sums of the rounded inputs, exactly. The WMMA instructions
 *    themselves are compile-checked only here; on a GPU `shardc_run --selfcheck` compares them
 *    with the f32 kernel.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderWmmaMatmul, wmmaFits, wmmaLaunch, wmmaSelfcheckSource } from '../../src/codegen/cuda/wmma.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/ir/dtype.js';
import { HAS_NVCC, NVCC, SHIM } from './cuda-harness.js';

let dir = '';
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'shardc-wmma-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// __half / __nv_bfloat16 and their conversions come from the shim header (cuda-shim.h).

describe('WMMA matmul (f16/bf16 storage, f32 accumulation)', () => {
  it('fits only whole 16×16×16 fragments; launch geometry is one warp per 16×16 tile', () => {
    expect([wmmaFits(64, 48, 32), wmmaFits(64, 40, 32), wmmaFits(16, 16, 8), wmmaFits(0, 16, 16)]).toEqual([true, false, false, false]);
    expect(wmmaLaunch(64, 48, 3)).toEqual({ grid: [3, 4, 3], block: [32, 1, 1] });
    expect(() => wmmaLaunch(20, 16)).toThrow(/multiples of 16/);
  });

  (HAS_NVCC ? it : it.skip)('nvcc compiles the selfcheck (WMMA kernels + f32 reference) for sm_75 and sm_80', () => {
    const src = join(dir, 'wmma_selfcheck.cu');
    writeFileSync(src, `${wmmaSelfcheckSource()}\nint main() { return shardc_wmma_selfcheck(); }\n`);
    const r = spawnSync(NVCC, ['-c', '-std=c++17', '-gencode', 'arch=compute_75,code=sm_75', '-gencode', 'arch=compute_80,code=sm_80', '-o', join(dir, 'w.o'), src], { encoding: 'utf8' });
    expect({ status: r.status, err: r.status ? r.stderr.slice(0, 4000) : '' }).toEqual({ status: 0, err: '' });
  }, 300000);

  it.each([['f16', f32ToF16Bits, f16BitsToF32], ['bf16', f32ToBf16Bits, bf16BitsToF32]] as const)('%s: the scalar path on the shim equals f32 sums of the rounded inputs', (t, toBits, fromBits) => {
    const [B, M, N, K] = [2, 32, 48, 32];
    let seed = 11;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 2;
    const a = Array.from({ length: B * M * K }, () => toBits(rnd()));
    const b = Array.from({ length: B * K * N }, () => toBits(rnd()));
    const want: number[] = [];
    for (let z = 0; z < B; z++)
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc = Math.fround(acc + Math.fround(fromBits(a[z * M * K + m * K + k]!) * fromBits(b[z * K * N + k * N + n]!)));
          want.push(acc);
        }
    const ty = t === 'f16' ? '__half' : '__nv_bfloat16';
    const { grid, block } = wmmaLaunch(M, N, B);
    const src = join(dir, `shim-${t}.cpp`);
    writeFileSync(src, `${renderWmmaMatmul('k', t)}
#include <cstdio>
int main() {
  static const unsigned short a[] = {${a.join(',')}}, b[] = {${b.join(',')}};
  std::vector<${ty}> A(${a.length}), Bm(${b.length});
  for (size_t i = 0; i < A.size(); i++) A[i].x = a[i];
  for (size_t i = 0; i < Bm.size(); i++) Bm[i].x = b[i];
  std::vector<float> C(${B * M * N}, -1.0f);
  shim_launch(dim3{${grid.join(', ')}}, dim3{${block.join(', ')}}, [&] { k(A.data(), Bm.data(), C.data(), ${M}, ${N}, ${K}); });
  for (float c : C) { uint32_t u; std::memcpy(&u, &c, 4); std::printf("%x\\n", u); }
}
`);
    const exe = join(dir, `shim-${t}`);
    execFileSync('g++', ['-std=c++17', '-O1', '-pthread', '-include', SHIM, '-o', exe, src], { stdio: 'pipe' });
    const got = new Float32Array(new Uint32Array(execFileSync(exe, { encoding: 'utf8' }).trim().split('\n').map((w) => parseInt(w, 16))).buffer);
    expect(got.length).toBe(want.length);
    const bad = want.map((w, i) => (got[i] === w ? '' : `C[${i}]: shim ${got[i]}, want ${w}`)).filter(Boolean);
    expect(bad.slice(0, 5)).toEqual([]);
  }, 120000);
});
