// Fused cross-entropy forward, one invocation per sample i of logits [N, C]:
//   m_i = max(z_i),  ls_i = log(sum(exp(z_i - m_i))),  loss_i = w_i * ((m_i - z_{i, y_i}) + ls_i).
// (m_i, ls_i) are kept apart in stats[i] rather than summed into the log-sum-exp: z - m is exact,
// so softmax = exp((z - m) - ls) keeps full precision even for logits in the thousands.
// A label outside [0, C) gives NaN (the GPU cannot raise). weights is only read when HASW == 1.
struct Params { n: u32, c: u32, hasw: u32, nan: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<vec2f>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  let base = i * p.c;
  var m = z[base];
  for (var c = 1u; c < p.c; c++) { m = max(m, z[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.c; c++) { s += exp(z[base + c] - m); }
  let ls = log(s);
  stats[i] = vec2f(m, ls);
  let y = labels[i];
  var w = 1.0;
  if (p.hasw == 1u) { w = weights[i]; }
  if (y < 0 || u32(y) >= p.c) { loss[i] = p.nan; } else { loss[i] = w * ((m - z[base + u32(y)]) + ls); }
}
