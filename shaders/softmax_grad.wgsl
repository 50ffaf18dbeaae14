// Backward of softmax / log-softmax over len of [outer, len, inner], from the saved output y:
//   softmax:     dx = y * (g - sum(g * y))
//   log-softmax: dx = g - exp(y) * sum(g)
struct Params { outer: u32, len: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 64u;
  if (j >= p.outer * p.inner) { return; }
  let o = j / p.inner;
  let base = o * p.len * p.inner + (j - o * p.inner);
  let st = p.inner;
  var s = 0.0;
  if ({{LOG}} == 1) {
    for (var k = 0u; k < p.len; k++) { s += g[base + k * st]; }
    for (var k = 0u; k < p.len; k++) { let i = base + k * st; dx[i] = g[i] - exp(y[i]) * s; }
  } else {
    for (var k = 0u; k < p.len; k++) { let i = base + k * st; s += g[i] * y[i]; }
    for (var k = 0u; k < p.len; k++) { let i = base + k * st; dx[i] = y[i] * (g[i] - s); }
  }
}
