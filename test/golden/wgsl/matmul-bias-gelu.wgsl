// kernel fc _ fc_bias _ gelu_div _ gelu_erf _ gelu_add _ gelu_mul _ gelu_half
struct Params {
  K: i32,
  M: i32,
  N: i32,
  batch: i32,
  c_dim1: i32,
  x1_s1: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read> x3: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<f32>;
@group(0) @binding(5) var<storage, read> x5: array<f32>;
@group(0) @binding(6) var<storage, read_write> y0: array<f32>;
@group(0) @binding(7) var<uniform> u: Params;

// erf with |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26)
fn erf_f32(x: f32) -> f32 {
  let t = 1.0f / (1.0f + 0.3275911f * abs(x));
  let y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * exp(-x * x);
  return select(-y, y, x >= 0.0f);
}

// The output store (and any fused epilogue) of one element, bounds-checked.
fn epilogue(b: i32, m: i32, n: i32, acc: f32) {
  if (m < u.M && n < u.N) {
    y0[((b * (u.M * u.N)) + ((m * u.N) + n))] = (((acc + x2[((((b * (u.M * u.N)) + ((m * u.N) + n)) % u.c_dim1) * u.x1_s1)]) * (erf_f32(((acc + x2[((((b * (u.M * u.N)) + ((m * u.N) + n)) % u.c_dim1) * u.x1_s1)]) / x3[0i])) + x4[0i])) * x5[0i]);
  }
}

var<workgroup> tile_a: array<f32, 1024>; // [64 rows][16 k]
var<workgroup> tile_b: array<f32, 1024>; // [16 k][64 cols]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = i32(wid.z);
  let row0 = i32(wid.y) * 64;
  let col0 = i32(wid.x) * 64;
  let tx = i32(lid.x);
  let ty = i32(lid.y);
  let tid = ty * 16 + tx;
  var acc_0_0 = 0.0f;
  var acc_0_1 = 0.0f;
  var acc_0_2 = 0.0f;
  var acc_0_3 = 0.0f;
  var acc_1_0 = 0.0f;
  var acc_1_1 = 0.0f;
  var acc_1_2 = 0.0f;
  var acc_1_3 = 0.0f;
  var acc_2_0 = 0.0f;
  var acc_2_1 = 0.0f;
  var acc_2_2 = 0.0f;
  var acc_2_3 = 0.0f;
  var acc_3_0 = 0.0f;
  var acc_3_1 = 0.0f;
  var acc_3_2 = 0.0f;
  var acc_3_3 = 0.0f;
  for (var k0 = 0; k0 < u.K; k0 += 16) {
    for (var e = tid; e < 1024; e += 256) {
      let m = row0 + e / 16;
      let k = k0 + e % 16;
      var v = 0.0f;
      if (m < u.M && k < u.K) { v = x0[(0i + ((m * u.K) + k))]; }
      tile_a[e] = v;
    }
    for (var e = tid; e < 1024; e += 256) {
      let k = k0 + e / 64;
      let n = col0 + e % 64;
      var v = 0.0f;
      if (k < u.K && n < u.N) { v = x1[(0i + ((k * u.N) + n))]; }
      tile_b[e] = v;
    }
    workgroupBarrier();
    for (var kk = 0; kk < 16; kk++) {
      let a_0 = tile_a[(ty + 0) * 16 + kk];
      let a_1 = tile_a[(ty + 16) * 16 + kk];
      let a_2 = tile_a[(ty + 32) * 16 + kk];
      let a_3 = tile_a[(ty + 48) * 16 + kk];
      let b_0 = tile_b[kk * 64 + tx + 0];
      let b_1 = tile_b[kk * 64 + tx + 16];
      let b_2 = tile_b[kk * 64 + tx + 32];
      let b_3 = tile_b[kk * 64 + tx + 48];
      acc_0_0 = acc_0_0 + a_0 * b_0;
      acc_0_1 = acc_0_1 + a_0 * b_1;
      acc_0_2 = acc_0_2 + a_0 * b_2;
      acc_0_3 = acc_0_3 + a_0 * b_3;
      acc_1_0 = acc_1_0 + a_1 * b_0;
      acc_1_1 = acc_1_1 + a_1 * b_1;
      acc_1_2 = acc_1_2 + a_1 * b_2;
      acc_1_3 = acc_1_3 + a_1 * b_3;
      acc_2_0 = acc_2_0 + a_2 * b_0;
      acc_2_1 = acc_2_1 + a_2 * b_1;
      acc_2_2 = acc_2_2 + a_2 * b_2;
      acc_2_3 = acc_2_3 + a_2 * b_3;
      acc_3_0 = acc_3_0 + a_3 * b_0;
      acc_3_1 = acc_3_1 + a_3 * b_1;
      acc_3_2 = acc_3_2 + a_3 * b_2;
      acc_3_3 = acc_3_3 + a_3 * b_3;
    }
    workgroupBarrier();
  }
  epilogue(b, row0 + ty + 0, col0 + tx + 0, acc_0_0);
  epilogue(b, row0 + ty + 0, col0 + tx + 16, acc_0_1);
  epilogue(b, row0 + ty + 0, col0 + tx + 32, acc_0_2);
  epilogue(b, row0 + ty + 0, col0 + tx + 48, acc_0_3);
  epilogue(b, row0 + ty + 16, col0 + tx + 0, acc_1_0);
  epilogue(b, row0 + ty + 16, col0 + tx + 16, acc_1_1);
  epilogue(b, row0 + ty + 16, col0 + tx + 32, acc_1_2);
  epilogue(b, row0 + ty + 16, col0 + tx + 48, acc_1_3);
  epilogue(b, row0 + ty + 32, col0 + tx + 0, acc_2_0);
  epilogue(b, row0 + ty + 32, col0 + tx + 16, acc_2_1);
  epilogue(b, row0 + ty + 32, col0 + tx + 32, acc_2_2);
  epilogue(b, row0 + ty + 32, col0 + tx + 48, acc_2_3);
  epilogue(b, row0 + ty + 48, col0 + tx + 0, acc_3_0);
  epilogue(b, row0 + ty + 48, col0 + tx + 16, acc_3_1);
  epilogue(b, row0 + ty + 48, col0 + tx + 32, acc_3_2);
  epilogue(b, row0 + ty + 48, col0 + tx + 48, acc_3_3);
}
