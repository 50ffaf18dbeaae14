// Softmax (LOG == 0) or log-softmax (LOG == 1) of x viewed as [outer, len, inner] over len.
// One invocation per lane (o, i); max-subtracted, so large logits do not overflow.
struct Params { outer: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.outer * p.inner) { return; }
  let o = j / p.inner;
  let base = o * p.len * p.inner + (j - o * p.inner);
  let st = p.inner;
  var m = x[base];
  for (var k = 1u; k < p.len; k++) { m = max(m, x[base + k * st]); }
  var s = 0.0;
  for (var k = 0u; k < p.len; k++) { s += exp(x[base + k * st] - m); }
  if ({{LOG}} == 1) {
    let lse = m + log(s);
    for (var k = 0u; k < p.len; k++) { y[base + k * st] = x[base + k * st] - lse; }
  } else {
    let r = 1.0 / s;
    for (var k = 0u; k < p.len; k++) { y[base + k * st] = exp(x[base + k * st] - m) * r; }
  }
}
