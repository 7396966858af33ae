// kernel MatMul
struct Params {
  K: i32,
  M: i32,
  N: i32,
  a_bs0: i32,
  batch: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y0: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

var<workgroup> tile_a: array<f32, 256>;
var<workgroup> tile_b: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let b = i32(wid.z);
  let m = i32(wid.y) * 16 + i32(lid.y);
  let n = i32(wid.x) * 16 + i32(lid.x);
  let tx = i32(lid.x);
  let ty = i32(lid.y);
  var acc = 0.0f;
  for (var k0 = 0; k0 < u.K; k0 += 16) {
    {
      let k = k0 + tx;
      var v = 0.0f;
      if (m < u.M && k < u.K) { v = x0[((b * u.a_bs0) + ((m * u.K) + k))]; }
      tile_a[ty * 16 + tx] = v;
    }
    {
      let k = k0 + ty;
      var v = 0.0f;
      if (k < u.K && n < u.N) { v = x1[(0i + ((k * u.N) + n))]; }
      tile_b[ty * 16 + tx] = v;
    }
    workgroupBarrier();
    for (var kk = 0; kk < 16; kk++) {
      acc = acc + tile_a[ty * 16 + kk] * tile_b[kk * 16 + tx];
    }
    workgroupBarrier();
  }
  if (m < u.M && n < u.N) {
    y0[((b * (u.M * u.N)) + ((m * u.N) + n))] = acc;
  }
}
