// Binary cross-entropy with logits, elementwise, in the stable form
//   l = max(x, 0) - x * t + log(1 + exp(-|x|)),   out_e = w * l.
// Weights (read when hasw == 1) are per element (per == 1) or per sample (per = elements per sample).
struct Params { n: u32, hasw: u32, per: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let v = x[i];
  var w = 1.0;
  if (p.hasw == 1u) { w = weights[i / p.per]; }
  out[i] = w * (max(v, 0.0) - v * t[i] + log(1.0 + exp(-abs(v))));
}
