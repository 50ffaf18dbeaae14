// BatchNorm2d forward, per channel: combines the partial shifted sums into the batch mean and
// (biased) variance, updates the running statistics in place (PyTorch rule, unbiased variance),
// and writes two vec4 per channel: stats[2c] = (K, d, invstd, gamma * invstd) with mean = K + d
// (K the shift, d small: x - mean is evaluated as (x - K) - d, which keeps the digits an f32
// mean would round away when |mean| >> std), stats[2c + 1] = (beta, mean, 0, 0).
// In eval mode (TRAIN == 0) the running statistics are used and left unchanged.
struct Params { C: u32, HW: u32, P: u32, M: u32, eps: f32, momentum: f32, hasW: u32, hasB: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> part: array<vec2f>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> rmean: array<f32>;
@group(0) @binding(6) var<storage, read_write> rvar: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<vec4f>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var K: f32;
  var d: f32;
  var v: f32;
  if ({{TRAIN}} == 1) {
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < p.P; k++) {
      let s = part[k * p.C + c];
      s1 += s.x;
      s2 += s.y;
    }
    let m = f32(p.M);
    K = x[c * p.HW];
    d = s1 / m;
    let mean = K + d;
    v = max(s2 / m - d * d, 0.0);
    let mo = p.momentum;
    rmean[c] = (1.0 - mo) * rmean[c] + mo * mean;
    rvar[c] = (1.0 - mo) * rvar[c] + mo * v * (m / (m - 1.0));
  } else {
    K = rmean[c];
    d = 0.0;
    v = rvar[c];
  }
  let inv = 1.0 / sqrt(v + p.eps);
  var gamma = 1.0;
  var beta = 0.0;
  if (p.hasW == 1u) { gamma = w[c]; }
  if (p.hasB == 1u) { beta = b[c]; }
  stats[2u * c] = vec4f(K, d, inv, gamma * inv);
  stats[2u * c + 1u] = vec4f(beta, K + d, 0.0, 0.0);
}
