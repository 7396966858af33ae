/**
 * CPU executor of the kernel IR: runs a Launch on typed arrays with the device's semantics (f32
 * rounding, i32 wrap-around, WGSL's division by zero, round-half-even), so a lowering bug shows up
 * without a GPU. Out-of-bounds loads and stores throw: on a GPU they would silently read zeros.
 *
 * Expressions are compiled once per launch into closures over a slot array (one slot per
 * variable); templates are plain loops mirroring the WGSL templates' arithmetic.
 */
import type { Expr, ScalarType } from './expr.js';
import { type Kernel, type Launch, type LetLoop, evalHostInt } from './kernel.js';

export type DeviceArray = Float32Array | Int32Array | Uint32Array;

export function allocDeviceArray(t: ScalarType, n: number): DeviceArray {
  return t === 'f32' ? new Float32Array(n) : t === 'i32' ? new Int32Array(n) : new Uint32Array(n);
}

type Fn = (env: Float64Array) => number;

class Scope {
  readonly slots = new Map<string, number>();
  slot(name: string): number {
    let s = this.slots.get(name);
    if (s === undefined) this.slots.set(name, (s = this.slots.size));
    return s;
  }
}

const wrap = (t: ScalarType, v: number): number =>
  t === 'f32' ? Math.fround(v) : t === 'i32' ? v | 0 : t === 'u32' ? v >>> 0 : v ? 1 : 0;

function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The same polynomial as the WGSL helper, so both targets agree. */
export function erfApprox(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

function toInt(v: number, lo: number, hi: number): number {
  if (Number.isNaN(v)) return 0;
  return Math.trunc(Math.min(Math.max(v, lo), hi));
}

const UN: Record<string, (a: number) => number> = {
  neg: (a) => -a, abs: Math.abs, not: (a) => (a ? 0 : 1), bitnot: (a) => ~a,
  exp: Math.exp, log: Math.log, sqrt: Math.sqrt, rsqrt: (a) => 1 / Math.sqrt(a),
  sin: Math.sin, cos: Math.cos, tan: Math.tan, asin: Math.asin, acos: Math.acos, atan: Math.atan,
  sinh: Math.sinh, cosh: Math.cosh, tanh: Math.tanh, asinh: Math.asinh, acosh: Math.acosh, atanh: Math.atanh,
  floor: Math.floor, ceil: Math.ceil, round: roundEven, trunc: Math.trunc, sign: Math.sign, erf: erfApprox,
  isnan: (a) => (Number.isNaN(a) ? 1 : 0), isinf: (a) => (a === Infinity || a === -Infinity ? 1 : 0),
};

function binFn(op: string, t: ScalarType): (a: number, b: number) => number {
  switch (op) {
    case '+': return (a, b) => a + b;
    case '-': return (a, b) => a - b;
    case '*': return t === 'i32' ? Math.imul : (a, b) => a * b;
    case '/': return t === 'f32' ? (a, b) => a / b : (a, b) => (b === 0 ? a : Math.trunc(a / b));
    case '%': return t === 'f32' ? (a, b) => a % b : (a, b) => (b === 0 ? 0 : a % b);
    case 'min': return Math.min;
    case 'max': return Math.max;
    case 'pow': return Math.pow;
    case '&': case '&&': return (a, b) => a & b;
    case '|': case '||': return (a, b) => a | b;
    case '^': return (a, b) => a ^ b;
    case '<<': return (a, b) => a << b;
    case '>>': return t === 'u32' ? (a, b) => a >>> b : (a, b) => a >> b;
    default: throw new Error(`unknown binary op ${op}`);
  }
}

const CMP: Record<string, (a: number, b: number) => number> = {
  '==': (a, b) => (a === b ? 1 : 0), '!=': (a, b) => (a !== b ? 1 : 0), '<': (a, b) => (a < b ? 1 : 0),
  '<=': (a, b) => (a <= b ? 1 : 0), '>': (a, b) => (a > b ? 1 : 0), '>=': (a, b) => (a >= b ? 1 : 0),
};

function castFn(from: ScalarType, to: ScalarType): (a: number) => number {
  if (to === 'bool') return (a) => (a !== 0 ? 1 : 0);
  if (to === 'f32') return Math.fround;
  if (from !== 'f32') return (a) => wrap(to, a);
  return to === 'i32' ? (a) => toInt(a, -(2 ** 31), 2 ** 31 - 1) : (a) => toInt(a, 0, 2 ** 32 - 1);
}

export class CpuKernelError extends Error {}

/** A loop-folded let (see `LetLoop`): the loop mirrors the WGSL loop, rounding like the device. */
function foldLet(loop: LetLoop, f: Fn, vs: number, count: Fn, t: ScalarType): Fn {
  const arg = loop.op === 'argmax' || loop.op === 'argmin';
  const isMax = loop.op === 'max' || loop.op === 'argmax';
  const hi = t === 'f32' ? Infinity : 2 ** 31 - 1;
  const lo = t === 'f32' ? -Infinity : -(2 ** 31);
  if (arg) {
    const last = !!loop.last;
    return (env) => {
      const n = count(env);
      let best = isMax ? lo : hi;
      let at = 0;
      for (let v = 0; v < n; v++) {
        env[vs] = v;
        const x = f(env);
        const better = isMax ? (last ? x >= best : x > best) : last ? x <= best : x < best;
        if (better) {
          best = x;
          at = v;
        }
      }
      return at;
    };
  }
  const init = loop.op === 'sum' ? 0 : loop.op === 'prod' ? 1 : isMax ? lo : hi;
  const comb = loop.op === 'sum' ? (a: number, x: number) => a + x : loop.op === 'prod' ? (a: number, x: number) => a * x : isMax ? Math.max : Math.min;
  const mulI32 = loop.op === 'prod' && t === 'i32';
  return (env) => {
    const n = count(env);
    let acc = init;
    for (let v = 0; v < n; v++) {
      env[vs] = v;
      acc = wrap(t, mulI32 ? Math.imul(acc, f(env)) : comb(acc, f(env)));
    }
    return acc;
  };
}

function compile(e: Expr, scope: Scope, bufs: Record<string, DeviceArray>, params: Record<string, number>): Fn {
  const c = (x: Expr): Fn => compile(x, scope, bufs, params);
  switch (e.k) {
    case 'const': { const v = e.v; return () => v; }
    case 'param': { const v = evalHostInt(e, params); return () => v; }
    case 'var': { const s = scope.slot(e.name); return (env) => env[s]!; }
    case 'load': {
      const buf = bufs[e.buf];
      if (!buf) throw new CpuKernelError(`buffer ${e.buf} is not bound`);
      const idx = c(e.index);
      const name = e.buf;
      const isBool = e.t === 'bool';
      return (env) => {
        const i = idx(env);
        if (!(i >= 0 && i < buf.length)) throw new CpuKernelError(`load ${name}[${i}] out of bounds (length ${buf.length})`);
        return isBool ? (buf[i] !== 0 ? 1 : 0) : buf[i]!;
      };
    }
    case 'bin': {
      const a = c(e.a), b = c(e.b), f = binFn(e.op, e.t), t = e.t;
      return (env) => wrap(t, f(a(env), b(env)));
    }
    case 'un': {
      const a = c(e.a), f = UN[e.op]!, t = e.t;
      return (env) => wrap(t, f(a(env)));
    }
    case 'cmp': { const a = c(e.a), b = c(e.b), f = CMP[e.op]!; return (env) => f(a(env), b(env)); }
    case 'select': { const cond = c(e.cond), a = c(e.a), b = c(e.b); return (env) => { const x = a(env), y = b(env); return cond(env) ? x : y; }; }
    case 'cast': { const a = c(e.a), f = castFn(e.a.t, e.t); return (env) => f(a(env)); }
  }
}

function storeTo(bufs: Record<string, DeviceArray>, name: string, i: number, v: number): void {
  const buf = bufs[name];
  if (!buf) throw new CpuKernelError(`buffer ${name} is not bound`);
  if (!(i >= 0 && i < buf.length)) throw new CpuKernelError(`store ${name}[${i}] out of bounds (length ${buf.length})`);
  buf[i] = v;
}

/** Runs one launch; `bufs` binds every input and output buffer of the kernel by name. */
export function executeLaunch(launch: Launch, bufs: Record<string, DeviceArray>): void {
  const k: Kernel = launch.kernel;
  const b = k.body;
  const scope = new Scope();
  const fn = (e: Expr): Fn => compile(e, scope, bufs, launch.params);
  const int = (e: Expr): number => evalHostInt(e, launch.params);
  const slot = (n: string): number => scope.slot(n);

  if (b.kind === 'map') {
    const iSlot = slot('i');
    const lets = b.lets.map((l) => {
      const s = slot(l.name);
      const f = fn(l.value);
      return l.loop ? { s, f: foldLet(l.loop, f, slot(l.loop.var), fn(l.loop.count), l.value.t) } : { s, f };
    });
    const stores = b.stores.map((s) => ({ buf: s.buf, index: fn(s.index), value: fn(s.value) }));
    const env = new Float64Array(scope.slots.size + 1);
    const n = int(b.count);
    for (let i = 0; i < n; i++) {
      env[iSlot] = i;
      for (const l of lets) env[l.s] = l.f(env);
      for (const s of stores) storeTo(bufs, s.buf, s.index(env), s.value(env));
    }
    return;
  }
  if (b.kind === 'matmul') {
    const [sb, sm, sn, sk, sacc] = ['b', 'm', 'n', 'k', 'acc'].map(slot) as [number, number, number, number, number];
    const fa = fn(b.a), fb = fn(b.b), fi = fn(b.out.index), fv = fn(b.out.value);
    const env = new Float64Array(scope.slots.size + 1);
    const [B, M, N, K] = [int(b.batch), int(b.m), int(b.n), int(b.k)];
    for (let bb = 0; bb < B; bb++)
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          env[sb] = bb; env[sm] = m; env[sn] = n;
          let acc = 0;
          for (let kk = 0; kk < K; kk++) {
            env[sk] = kk;
            acc = Math.fround(acc + Math.fround(fa(env) * fb(env)));
          }
          env[sacc] = acc;
          storeTo(bufs, b.out.buf, fi(env), fv(env));
        }
    return;
  }
  // Row templates.
  const [srow, sr] = [slot('row'), slot('r')];
  const fx = fn(b.value);
  const fi = fn(b.out.index);
  const rows = int(b.rows);
  const len = int(b.len);
  const t = b.value.t;
  if (b.kind === 'reduce') {
    const sacc = slot('acc');
    const fv = fn(b.out.value);
    const env = new Float64Array(scope.slots.size + 1);
    const init = { sum: 0, prod: 1, max: t === 'f32' ? -Infinity : -(2 ** 31), min: t === 'f32' ? Infinity : 2 ** 31 - 1 }[b.op];
    const comb = b.op === 'sum' ? (a: number, x: number) => a + x : b.op === 'prod' ? (a: number, x: number) => a * x : b.op === 'max' ? Math.max : Math.min;
    for (let row = 0; row < rows; row++) {
      env[srow] = row;
      let acc = init;
      for (let r = 0; r < len; r++) {
        env[sr] = r;
        acc = wrap(t, comb(acc, fx(env)));
      }
      env[sacc] = acc;
      storeTo(bufs, b.out.buf, fi(env), fv(env));
    }
    return;
  }
  const env = new Float64Array(scope.slots.size + 2);
  const sxhat = b.kind === 'norm' ? slot('xhat') : -1;
  const fv = b.kind === 'norm' ? fn(b.out.value) : undefined;
  const x = new Float64Array(len);
  for (let row = 0; row < rows; row++) {
    env[srow] = row;
    for (let r = 0; r < len; r++) {
      env[sr] = r;
      x[r] = fx(env);
    }
    if (b.kind === 'softmax') {
      let mx = -Infinity, sum = 0;
      for (let r = 0; r < len; r++) mx = Math.max(mx, x[r]!);
      for (let r = 0; r < len; r++) sum = Math.fround(sum + Math.fround(Math.exp(x[r]! - mx)));
      for (let r = 0; r < len; r++) {
        env[sr] = r;
        const y = b.log ? x[r]! - mx - Math.log(sum) : Math.exp(x[r]! - mx) / sum;
        storeTo(bufs, b.out.buf, fi(env), y);
      }
    } else {
      let mean = 0, sq = 0;
      if (b.mode === 'layer') {
        for (let r = 0; r < len; r++) mean += x[r]!;
        mean = Math.fround(mean / len);
        for (let r = 0; r < len; r++) sq += (x[r]! - mean) ** 2;
      } else for (let r = 0; r < len; r++) sq += x[r]! ** 2;
      const inv = Math.fround(1 / Math.sqrt(Math.fround(sq / len) + b.epsilon));
      for (let r = 0; r < len; r++) {
        env[sr] = r;
        env[sxhat] = Math.fround((x[r]! - mean) * inv);
        storeTo(bufs, b.out.buf, fi(env), fv!(env));
      }
    }
  }
}
