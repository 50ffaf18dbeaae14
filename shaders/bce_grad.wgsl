// Backward of bce.wgsl: dx = coef * (sigmoid(x) - t) and, when targets need it, dt = -coef * x, where
// coef = w * g_e ('none'), w * g ('sum') or w * g / sum(w) ('mean' with weights),
// all times scale (1 / count for an unweighted 'mean').
struct Params { n: u32, hasw: u32, per: u32, mode: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read> wsum: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
{{DT_BINDING}}

fn sigmoid(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var coef = 1.0;
  if (p.mode == 0u) { coef = g[i]; } else { coef = g[0]; }
  if (p.hasw == 1u) { coef *= weights[i / p.per]; }
  if (p.mode == 2u) { coef /= wsum[0]; }
  coef *= p.scale;
  let v = x[i];
  dx[i] = coef * (sigmoid(v) - t[i]);
  {{DT_STORE}}
}
