// kernel block0/add
struct Params {
  c_dim1: i32,
  c_dim2: i32,
  c_st0: i32,
  c_st1: i32,
  n: i32,
  x1_s1: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y0: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = i32(gid.x + gid.y * nwg.x * 64u);
  if (i >= u.n) { return; }
  let c0 = (i / u.c_st0);
  let c1 = ((i / u.c_st1) % u.c_dim1);
  let c2 = (i % u.c_dim2);
  y0[i] = (x0[i] + x1[(c1 * u.x1_s1)]);
}
