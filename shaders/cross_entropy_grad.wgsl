// Cross-entropy backward, one invocation per logit (i, c):
//   dz[i, c] = coef_i * (softmax(z_i)_c - [c == y_i]),  softmax = exp((z - m_i) - ls_i) from the saved stats,
//   coef_i = w_i * g_i (reduction 'none'), w_i * g ('sum'), w_i * g / sum(w) ('mean' with weights),
// all times scale (1 / count for an unweighted 'mean').
struct Params { n: u32, c: u32, hasw: u32, mode: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2f>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> weights: array<f32>;
@group(0) @binding(6) var<storage, read> wsum: array<f32>;
@group(0) @binding(7) var<storage, read_write> dz: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 256u;
  if (j >= p.n * p.c) { return; }
  let i = j / p.c;
  let c = j - i * p.c;
  var coef = 1.0;
  if (p.mode == 0u) { coef = g[i]; } else { coef = g[0]; }
  if (p.hasw == 1u) { coef *= weights[i]; }
  if (p.mode == 2u) { coef /= wsum[0]; }
  coef *= p.scale;
  let onehot = select(0.0, 1.0, labels[i] == i32(c));
  let st = stats[i];
  dz[j] = coef * (exp((z[j] - st.x) - st.y) - onehot);
}
