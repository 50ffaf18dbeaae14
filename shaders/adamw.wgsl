// One torch.optim.AdamW step (amsgrad off) for one parameter tensor, in place:
//   p = p * (1 - lr * wd)                        (decoupled weight decay)
//   m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2   (m = v = 0 before the first step)
//   p = p - stepSize * m / (sqrt(v) * invBc2Sqrt + eps),  stepSize = lr / (1 - b1^t), invBc2Sqrt = 1 / sqrt(1 - b2^t)
// The bias corrections are computed on the CPU in float64 and passed as uniforms. E is vec4f where
// the size is a multiple of 4 (n counts vec4s), else f32, as in sgd.wgsl.
struct Params { n: u32, decay: f32, b1: f32, b2: f32, eps: f32, stepSize: f32, invBc2Sqrt: f32, first: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> w: array<{{E}}>;
@group(0) @binding(3) var<storage, read_write> m: array<{{E}}>;
@group(0) @binding(4) var<storage, read_write> v: array<{{E}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let gi = g[i];
  var mi = (1.0 - p.b1) * gi;
  var vi = (1.0 - p.b2) * gi * gi;
  if (p.first == 0u) {
    mi += p.b1 * m[i];
    vi += p.b2 * v[i];
  }
  m[i] = mi;
  v[i] = vi;
  let wi = w[i] * p.decay;
  w[i] = wi - p.stepSize * mi / (sqrt(vi) * p.invBc2Sqrt + p.eps);
}
