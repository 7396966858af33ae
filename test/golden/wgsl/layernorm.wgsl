// kernel LayerNormalization
struct Params {
  len: i32,
  rows: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read_write> y0: array<f32>;
@group(0) @binding(4) var<uniform> u: Params;

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = i32(wid.x + wid.y * nwg.x);
  if (row >= u.rows) { return; }
  let tid = i32(lid.x);
  var row_sum_acc = 0.0f;
  for (var r = tid; r < u.len; r += 64) {
    row_sum_acc = row_sum_acc + x0[(r + (row * u.len))];
  }
  part[tid] = row_sum_acc;
  workgroupBarrier();
  for (var s = 32; s > 0; s = s / 2) {
    if (tid < s) { part[tid] = part[tid] + part[tid + s]; }
    workgroupBarrier();
  }
  let row_sum = part[0];
  workgroupBarrier();
  let mean = row_sum / f32(u.len);
  var row_sq_acc = 0.0f;
  for (var r = tid; r < u.len; r += 64) {
    row_sq_acc = row_sq_acc + (x0[(r + (row * u.len))] - mean) * (x0[(r + (row * u.len))] - mean);
  }
  part[tid] = row_sq_acc;
  workgroupBarrier();
  for (var s = 32; s > 0; s = s / 2) {
    if (tid < s) { part[tid] = part[tid] + part[tid + s]; }
    workgroupBarrier();
  }
  let row_sq = part[0];
  workgroupBarrier();
  let inv_std = inverseSqrt(row_sq / f32(u.len) + 0.00001f);
  for (var r = tid; r < u.len; r += 64) {
    let xhat = (x0[(r + (row * u.len))] - mean) * inv_std;
    y0[(r + (row * u.len))] = ((xhat * x1[r]) + x2[r]);
  }
}
