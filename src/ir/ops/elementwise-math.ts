/**
 * Scalar functions of the elementwise family that JavaScript's Math lacks: erf, round half to
 * even, numerically stable sigmoid / softplus, GELU, and exact rounding of doubles to float16 /
 * bfloat16.
 */

// ---- erf: W. J. Cody's rational Chebyshev approximations (Math. Comp. 1969, 631-638) ----
// Three intervals: |x| <= 0.46875 approximates erf directly; 0.46875 < |x| <= 4 and |x| > 4
// approximate erfc scaled by exp(x²). Accurate to ~1e-16 relative in double precision.
const A = [3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153];
const B = [23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062];
const C = [
  0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909,
  1712.04761263407058, 2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8,
];
const D = [
  15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
  4362.61909014324716, 3439.36767414372164, 1230.33935480374942,
];
const P = [
  0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766, 6.58749161529837803e-4,
  0.0163153871373020978,
];
const Q = [2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185];
const INV_SQRT_PI = 0.5641895835477563;

/** exp(-y²) computed as exp(-h²)·exp(-(y-h)(y+h)) with h = y rounded down to 1/16 (keeps precision). */
function expNegSquare(y: number): number {
  const h = Math.trunc(y * 16) / 16;
  return Math.exp(-h * h) * Math.exp(-(y - h) * (y + h));
}

/** erfc(y) for y > 0.46875. */
function erfcPositive(y: number): number {
  if (y <= 4) {
    let num = C[8]! * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + C[i]!) * y;
      den = (den + D[i]!) * y;
    }
    return (expNegSquare(y) * (num + C[7]!)) / (den + D[7]!);
  }
  if (y >= 26.55) return 0;
  const z = 1 / (y * y);
  let num = P[5]! * z;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = (num + P[i]!) * z;
    den = (den + Q[i]!) * z;
  }
  const r = (z * (num + P[4]!)) / (den + Q[4]!);
  return (expNegSquare(y) * (INV_SQRT_PI - r)) / y;
}

export function erf(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.46875) {
    const z = y * y;
    let num = A[4]! * z;
    let den = z;
    for (let i = 0; i < 3; i++) {
      num = (num + A[i]!) * z;
      den = (den + B[i]!) * z;
    }
    return (x * (num + A[3]!)) / (den + B[3]!);
  }
  if (y !== y) return NaN;
  const r = 0.5 - erfcPositive(y) + 0.5;
  return x < 0 ? -r : r;
}

// ---- rounding and activations ----

/** Round half to even (ONNX Round, numpy.round); keeps the sign of zero. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  return r === 0 ? 0 * x : r;
}

export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) without overflow. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export const geluErf = (x: number): number => 0.5 * x * (1 + erf(x * SQRT1_2));
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));

// ---- narrow floats from doubles (one rounding, round to nearest even) ----

function roundNarrow(v: number, mantBits: number, minExp: number, maxFinite: number): number {
  if (v === 0 || !Number.isFinite(v)) return v;
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  if (e < minExp) e = minExp;
  const ulp = 2 ** (e - mantBits);
  const q = a / ulp; // exact: division by a power of two
  const fl = Math.floor(q);
  const rest = q - fl;
  const r = (rest < 0.5 ? fl : rest > 0.5 ? fl + 1 : fl % 2 === 0 ? fl : fl + 1) * ulp;
  const out = r > maxFinite ? Infinity : r;
  return v < 0 ? -out : out;
}

/** The float16 value nearest to a double (ties to even), as a number. */
export const toFloat16 = (v: number): number => roundNarrow(v, 10, -14, 65504);
/** The bfloat16 value nearest to a double (ties to even), as a number. */
export const toBFloat16 = (v: number): number => roundNarrow(v, 7, -126, 3.3895313892515355e38);

// ---- MT19937, numpy-compatible (legacy np.random.seed(int) + np.random.uniform) ----

/**
 * Mersenne Twister MT19937 seeded like numpy's legacy `np.random.seed(seed)`, so training-mode
 * Dropout reproduces the ONNX reference implementation's masks exactly.
 */
export class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]!;
      mt[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < 624; k++) {
      const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
      mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** The next 32-bit output. */
  nextUint32(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform double in [0, 1) with 53 random bits (numpy's random_sample). */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}
