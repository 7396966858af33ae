/**
 * The project's one deterministic PRNG: mulberry32, a small, fast 32-bit generator with good
 * statistics. Used for example-model weights (onnx/builder.ts) and verification inputs
 * (verify/random-inputs.ts); its sequence per seed must never change (examples/*.onnx depend on it).
 */

/** mulberry32 seeded with `seed`: each call returns the next number in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
