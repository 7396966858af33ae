// kernel ReduceMean
struct Params {
  len: i32,
  row_dim1: i32,
  row_st0: i32,
  rows: i32,
  x_s0: i32,
  x_s1: i32,
  x_s2: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> y0: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = i32(wid.x + wid.y * nwg.x);
  if (row >= u.rows) { return; }
  let tid = i32(lid.x);
  var total_acc = 0.0f;
  for (var r = tid; r < u.len; r += 64) {
    total_acc = total_acc + x0[((((row / u.row_st0) * u.x_s0) + ((row % u.row_dim1) * u.x_s2)) + (r * u.x_s1))];
  }
  part[tid] = total_acc;
  workgroupBarrier();
  for (var s = 32; s > 0; s = s / 2) {
    if (tid < s) { part[tid] = part[tid] + part[tid + s]; }
    workgroupBarrier();
  }
  let total = part[0];
  workgroupBarrier();
  if (tid == 0) {
    let acc = total;
    y0[row] = (acc / f32(u.len));
  }
}
