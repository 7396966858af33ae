// kernel Softmax
struct Params {
  len: i32,
  rows: i32,
}
@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read_write> y0: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;

fn f32_from_bits(bits: u32) -> f32 { var b = bits; return bitcast<f32>(b); }

var<workgroup> part: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = i32(wid.x + wid.y * nwg.x);
  if (row >= u.rows) { return; }
  let tid = i32(lid.x);
  var row_max_acc = f32_from_bits(0xff800000u);
  for (var r = tid; r < u.len; r += 64) {
    row_max_acc = max(row_max_acc, x0[(r + (row * u.len))]);
  }
  part[tid] = row_max_acc;
  workgroupBarrier();
  for (var s = 32; s > 0; s = s / 2) {
    if (tid < s) { part[tid] = max(part[tid], part[tid + s]); }
    workgroupBarrier();
  }
  let row_max = part[0];
  workgroupBarrier();
  var row_sum_acc = 0.0f;
  for (var r = tid; r < u.len; r += 64) {
    row_sum_acc = row_sum_acc + exp(x0[(r + (row * u.len))] - row_max);
  }
  part[tid] = row_sum_acc;
  workgroupBarrier();
  for (var s = 32; s > 0; s = s / 2) {
    if (tid < s) { part[tid] = part[tid] + part[tid + s]; }
    workgroupBarrier();
  }
  let row_sum = part[0];
  workgroupBarrier();
  for (var r = tid; r < u.len; r += 64) {
    y0[(r + (row * u.len))] = exp(x0[(r + (row * u.len))] - row_max) / row_sum;
  }
}
