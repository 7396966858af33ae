/**
 * Matrix multiplication kernels for the reference CPU runtime.
 *
 * `gemm` computes C = A·B for strided A (M×K) and B (K×N) into a row-major C. For float32
 * storage it uses a cache-blocked kernel: A and B blocks are packed into WebAssembly memory
 * (A in panels of 4 rows, B in panels of 8 columns, both k-major) and a small hand-assembled
 * WebAssembly SIMD micro-kernel accumulates 4×8 tiles of C in eight f32x4 registers (float32
 * accumulation). Other storage (float64, integers held in Float64Array/Int32Array, ...) and
 * hosts without WebAssembly SIMD use a plain i-k-j loop that accumulates a Float64 row.
 *
 * `batchedMatmul` gives numpy matmul semantics (1-D operands, batch broadcasting) over `gemm`.
 */
import { type DType, type TypedArray, allocStorage, roundToDType } from '../dtype.js';
import { UserError } from '../errors.js';
import { broadcastShapes, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { broadcastIndex } from './util.js';

// ---------------------------------------------------------------------------------------------
// The WebAssembly micro-kernel, assembled from bytes (no toolchain, no npm package).
//
//   gemm(ap, bp, c, mPanels, nPanels, kc, ldcBytes):
//     for jp < nPanels: for ip < mPanels:
//       C[ip*4 .. +4][jp*8 .. +8] += Apanel(ip)[kc][4] · Bpanel(jp)[kc][8]
// All pointers are byte offsets into the module's memory.
// ---------------------------------------------------------------------------------------------

const MR = 4; // rows of A per panel
const NV = 2; // f32x4 vectors of B per panel
const NR = 4 * NV; // columns of B per panel

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
};

function assembleKernel(): Uint8Array {
  // Locals: 7 i32 params, 6 i32 locals, then v128 locals (accumulators, B vectors, splatted A).
  const [AP, BP, C0, MP, NP, KC, LDC, JP, IP, K, PA, PB, PC] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] as const;
  const ACC = 13;
  const BV = ACC + MR * NV;
  const AV = BV + NV;
  const get = (i: number) => [0x20, ...uleb(i)];
  const set = (i: number) => [0x21, ...uleb(i)];
  const i32 = (n: number) => [0x41, ...sleb(n)];
  const [ADD, SUB, MUL, GE_U, EQZ] = [[0x6a], [0x6b], [0x6c], [0x4f], [0x45]];
  const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
  const load = (off: number) => simd(0x00, 4, ...uleb(off));
  const store = (off: number) => simd(0x0b, 4, ...uleb(off));
  const load32Splat = (off: number) => simd(0x09, 2, ...uleb(off));
  const [F32X4_ADD, F32X4_MUL] = [simd(228), simd(230)];
  const BLOCK_LOOP = [0x02, 0x40, 0x03, 0x40];
  const END_END = [0x0b, 0x0b];
  const BR_IF_EXIT = [0x0d, 1];
  const BR_LOOP = [0x0c, 0];
  const rowAddr = (r: number) => (r === 0 ? get(PC) : [...get(PC), ...get(LDC), ...i32(r), ...MUL, ...ADD]);

  const b: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) b.push(...p);
  };
  emit(i32(0), set(JP), BLOCK_LOOP);
  emit(get(JP), get(NP), GE_U, BR_IF_EXIT);
  emit(i32(0), set(IP), BLOCK_LOOP);
  emit(get(IP), get(MP), GE_U, BR_IF_EXIT);
  // pc = c + ip*MR*ldc + jp*NR*4
  emit(get(C0), get(IP), get(LDC), MUL, i32(MR), MUL, ADD, get(JP), i32(NR * 4), MUL, ADD, set(PC));
  for (let r = 0; r < MR; r++) for (let v = 0; v < NV; v++) emit(rowAddr(r), load(v * 16), set(ACC + r * NV + v));
  emit(get(AP), get(IP), get(KC), MUL, i32(MR * 4), MUL, ADD, set(PA));
  emit(get(BP), get(JP), get(KC), MUL, i32(NR * 4), MUL, ADD, set(PB));
  emit(get(KC), set(K), BLOCK_LOOP);
  emit(get(K), EQZ, BR_IF_EXIT);
  for (let v = 0; v < NV; v++) emit(get(PB), load(v * 16), set(BV + v));
  for (let r = 0; r < MR; r++) {
    emit(get(PA), load32Splat(r * 4), set(AV));
    for (let v = 0; v < NV; v++) emit(get(ACC + r * NV + v), get(AV), get(BV + v), F32X4_MUL, F32X4_ADD, set(ACC + r * NV + v));
  }
  emit(get(PA), i32(MR * 4), ADD, set(PA), get(PB), i32(NR * 4), ADD, set(PB), get(K), i32(1), SUB, set(K), BR_LOOP, END_END);
  for (let r = 0; r < MR; r++) for (let v = 0; v < NV; v++) emit(rowAddr(r), get(ACC + r * NV + v), store(v * 16));
  emit(get(IP), i32(1), ADD, set(IP), BR_LOOP, END_END);
  emit(get(JP), i32(1), ADD, set(JP), BR_LOOP, END_END, [0x0b]);

  const code = [2, ...uleb(6), 0x7f, ...uleb(MR * NV + NV + 1), 0x7b, ...b];
  const section = (id: number, c: number[]) => [id, ...uleb(c.length), ...c];
  const name = (s: string) => [...uleb(s.length), ...Array.from(s, (ch) => ch.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 7, ...new Array<number>(7).fill(0x7f), 0]), // type: (i32 x7) -> ()
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, 1]), // memory, min 1 page
    ...section(7, [2, ...name('gemm'), 0x00, 0, ...name('mem'), 0x02, 0]),
    ...section(10, [1, ...uleb(code.length), ...code]),
  ]);
}

interface WasmKernel {
  gemm(ap: number, bp: number, c: number, mPanels: number, nPanels: number, kc: number, ldcBytes: number): void;
  mem: { readonly buffer: ArrayBuffer; grow(pages: number): number };
}

/** The slice of the WebAssembly API used here (the project's TypeScript lib has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

let kernel: WasmKernel | null | undefined;

/** The WebAssembly kernel, or null where WebAssembly SIMD is unavailable. */
function wasmKernel(): WasmKernel | null {
  if (kernel === undefined) {
    try {
      const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
      if (!wa) throw new Error('no WebAssembly');
      const inst = new wa.Instance(new wa.Module(assembleKernel()));
      kernel = inst.exports as unknown as WasmKernel;
    } catch {
      kernel = null;
    }
  }
  return kernel;
}

/** Disables (or re-enables) the WebAssembly kernel; for tests that cross-check both paths. */
export function setWasmGemm(enabled: boolean): void {
  kernel = enabled ? undefined : null;
}

// Block sizes: a KC×NC packed B block (≤ 2 MiB) and an MC×KC packed A block stay in L2; one
// 8-column B panel (KC×8 floats, 8 KiB) stays in L1 while all A panels of the block pass by.
const MC = 256;
const KCB = 256;
const NC = 2048;

/** A strided M×K (or K×N) operand: element (r, c) is data[off + r*rs + c*cs]. */
export interface Strided {
  data: ArrayLike<number>;
  off: number;
  rs: number;
  cs: number;
}

function gemmWasm(w: WasmKernel, M: number, N: number, K: number, A: Strided, B: Strided, c: TypedArray, cOff: number, ldc: number): void {
  const apFloats = MC * KCB;
  const bpFloats = KCB * NC;
  const cFloats = MC * NC;
  const need = (apFloats + bpFloats + cFloats) * 4;
  if (w.mem.buffer.byteLength < need) w.mem.grow(Math.ceil((need - w.mem.buffer.byteLength) / 65536));
  const f = new Float32Array(w.mem.buffer);
  const apO = 0;
  const bpO = apFloats;
  const cO = apFloats + bpFloats;
  const a = A.data;
  const b = B.data;
  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    const np = Math.ceil(nc / NR);
    const ldcF = np * NR;
    for (let ic = 0; ic < M; ic += MC) {
      const mc = Math.min(MC, M - ic);
      const mp = Math.ceil(mc / MR);
      f.fill(0, cO, cO + mp * MR * ldcF);
      for (let k0 = 0; k0 < K; k0 += KCB) {
        const kc = Math.min(KCB, K - k0);
        // Pack A: panel ip holds rows ic+ip*MR .. +MR, laid out [k][MR]; rows past M are zero.
        for (let ip = 0; ip < mp; ip++) {
          const d = apO + ip * kc * MR;
          const i0 = ic + ip * MR;
          for (let r = 0; r < MR; r++) {
            const i = i0 + r;
            let dd = d + r;
            if (i < M) {
              let s = A.off + i * A.rs + k0 * A.cs;
              for (let k = 0; k < kc; k++, dd += MR, s += A.cs) f[dd] = a[s]!;
            } else {
              for (let k = 0; k < kc; k++, dd += MR) f[dd] = 0;
            }
          }
        }
        // Pack B: panel jp holds columns jc+jp*NR .. +NR, laid out [k][NR]; columns past N are zero.
        for (let jp = 0; jp < np; jp++) {
          const j0 = jc + jp * NR;
          const width = Math.min(NR, N - j0);
          const d0 = bpO + jp * kc * NR;
          for (let k = 0; k < kc; k++) {
            const d = d0 + k * NR;
            const s = B.off + (k0 + k) * B.rs + j0 * B.cs;
            if (B.cs === 1 && width === NR) {
              for (let j = 0; j < NR; j++) f[d + j] = b[s + j]!;
            } else {
              for (let j = 0; j < width; j++) f[d + j] = b[s + j * B.cs]!;
              for (let j = width; j < NR; j++) f[d + j] = 0;
            }
          }
        }
        w.gemm(apO * 4, bpO * 4, cO * 4, mp, np, kc, ldcF * 4);
      }
      for (let i = 0; i < mc; i++) {
        const s = cO + i * ldcF;
        const d = cOff + (ic + i) * ldc + jc;
        for (let j = 0; j < nc; j++) c[d + j] = f[s + j]!;
      }
    }
  }
}

/** Plain i-k-j loop with a Float64 accumulator row (any storage; exact for integers below 2^53). */
function gemmGeneric(M: number, N: number, K: number, A: Strided, B: Strided, c: TypedArray, cOff: number, ldc: number): void {
  const acc = new Float64Array(N);
  const a = A.data;
  const b = B.data;
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const av = a[A.off + i * A.rs + k * A.cs]!;
      if (av === 0) continue;
      const s = B.off + k * B.rs;
      if (B.cs === 1) for (let j = 0; j < N; j++) acc[j] += av * b[s + j]!;
      else for (let j = 0; j < N; j++) acc[j] += av * b[s + j * B.cs]!;
    }
    const d = cOff + i * ldc;
    for (let j = 0; j < N; j++) c[d + j] = acc[j]!;
  }
}

/**
 * C[cOff + i*ldc + j] = Σ_k A(i,k)·B(k,j) for i<M, j<N (overwrites C). The float32 path (chosen
 * when C is a Float32Array) accumulates in float32; the others in float64. Callers round
 * float16/bfloat16 results.
 */
export function gemm(M: number, N: number, K: number, A: Strided, B: Strided, c: TypedArray, cOff: number, ldc: number): void {
  if (M === 0 || N === 0) return;
  if (K === 0) {
    for (let i = 0; i < M; i++) c.fill(0, cOff + i * ldc, cOff + i * ldc + N);
    return;
  }
  const w = c instanceof Float32Array && M * N * K >= 512 ? wasmKernel() : null;
  if (w) gemmWasm(w, M, N, K, A, B, c, cOff, ldc);
  else gemmGeneric(M, N, K, A, B, c, cOff, ldc);
}

/** Shapes of a numpy matmul: batch dims, M, K, N and the output shape. */
export interface MatmulPlan {
  batch: number[];
  M: number;
  K: number;
  N: number;
  outShape: number[];
}

/** Plans a numpy-semantics matmul of static shapes; UserError on rank-0 operands or mismatched K. */
export function planMatmul(aShape: readonly number[], bShape: readonly number[]): MatmulPlan {
  if (aShape.length === 0 || bShape.length === 0) throw new UserError('MatMul operands must have rank >= 1');
  const a2 = aShape.length === 1 ? [1, aShape[0]!] : aShape;
  const b2 = bShape.length === 1 ? [bShape[0]!, 1] : bShape;
  const M = a2[a2.length - 2]!;
  const K = a2[a2.length - 1]!;
  const K2 = b2[b2.length - 2]!;
  const N = b2[b2.length - 1]!;
  if (K !== K2) throw new UserError(`MatMul inner dimensions differ: [${aShape.join(',')}] x [${bShape.join(',')}]`);
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2)) as number[] | undefined;
  if (!batch) throw new UserError(`MatMul batch dimensions do not broadcast: [${aShape.join(',')}] x [${bShape.join(',')}]`);
  const outShape = [...batch];
  if (aShape.length > 1) outShape.push(M);
  if (bShape.length > 1) outShape.push(N);
  return { batch, M, K, N, outShape };
}

/**
 * numpy matmul of two tensors (1-D operands promoted and the promoted dim dropped, batch dims
 * broadcast). The result has dtype `outDtype` (default: A's dtype), rounded for narrow floats.
 */
export function batchedMatmul(a: Tensor, b: Tensor, outDtype: DType = a.dtype): Tensor {
  const { batch, M, K, N, outShape } = planMatmul(a.shape, b.shape);
  const out = allocStorage(outDtype, numel(outShape));
  const batchA = a.rank > 2 ? a.shape.slice(0, -2) : [];
  const batchB = b.rank > 2 ? b.shape.slice(0, -2) : [];
  const nBatch = numel(batch);
  if (out.length > 0) {
    if (numel(batchB) === 1 && numel(batchA) === nBatch) {
      // B is one matrix shared by every batch: fold A's batch into its rows (one big GEMM).
      gemm(nBatch * M, N, K, { data: a.data, off: 0, rs: K, cs: 1 }, { data: b.data, off: 0, rs: N, cs: 1 }, out, 0, N);
    } else {
      const ia = broadcastIndex(batchA, batch);
      const ib = broadcastIndex(batchB, batch);
      for (let t = 0; t < nBatch; t++) {
        const A: Strided = { data: a.data, off: ia[t]! * M * K, rs: K, cs: 1 };
        const B: Strided = { data: b.data, off: ib[t]! * K * N, rs: N, cs: 1 };
        gemm(M, N, K, A, B, out, t * M * N, N);
      }
    }
  }
  roundToDType(outDtype, out);
  return new Tensor(outDtype, outShape, out);
}
