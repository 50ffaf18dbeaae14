// BatchNorm2d, first level of the per-channel reduction over N, H, W.
// Invocation k * C + c, k = ng * segs + s, sums segment s (V-elements [s * S, min(s * S + S, hw)))
// of the planes n = ng * G .. ng * G + G - 1 of channel c into part[k * C + c]: each lane walks
// contiguous memory with the same trip counts as its neighbours (lavapipe runs a loop as long as
// its slowest lane; the previous layout, lane k taking elements k, k + P, ..., ran at 9-15% of the
// copy ceiling), and neighbouring lanes take neighbouring channels, i.e. adjacent small planes.
// V is f32 or vec4f (when H*W % 4 == 0; hw counts V-elements per plane). Two modes:
//  MODE 0 (forward statistics): shifted sums  s1 = sum(x - K), s2 = sum((x - K)^2) with
//         K = the channel's first element, which keeps sum-of-squares cancellation small.
//  MODE 1 (backward): s1 = sum(g'), s2 = sum(g' * (x - mean)) with g' = g * act'(z), where the
//         activation's input z is recomputed from x exactly as batchnorm_apply computed it (one
//         read stream less than loading the forward's output y).
// x may be the first C channels of a buffer with xc >= C channels per sample (a DenseNet block's
// growing feature buffer); g is always [N, C, H, W].
struct Params { N: u32, C: u32, hw: u32, P: u32, segs: u32, S: u32, G: u32, xc: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{V}}>;
@group(0) @binding(2) var<storage, read> g: array<{{V}}>;
@group(0) @binding(3) var<storage, read> stats: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> part: array<vec2f>;

fn dact(z: {{V}}) -> {{V}} { return {{DACT}}; }
fn total(v: {{V}}) -> f32 { return {{TOTAL}}; }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  if (id >= p.C * p.P) { return; }
  let c = id % p.C;
  let k = id / p.C;
  let n0 = (k / p.segs) * p.G;
  let n1 = min(n0 + p.G, p.N);
  let q0 = (k % p.segs) * p.S;
  let len = min(q0 + p.S, p.hw) - q0;
  var s1 = {{V}}(0.0);
  var s2 = {{V}}(0.0);
  if ({{MODE}} == 0) {
    let K = {{V}}(vec4f(x[c * p.hw]).x);
    for (var n = n0; n < n1; n++) {
      let base = (n * p.xc + c) * p.hw + q0;
      for (var i = 0u; i < len; i++) {
        let v = x[base + i] - K;
        s1 += v;
        s2 += v * v;
      }
    }
  } else {
    let s = stats[2u * c]; // x - mean = (x - K) - d (batchnorm_finalize)
    let K = {{V}}(s.x);
    let d = {{V}}(s.y);
    let scale = {{V}}(s.w);
    let beta = {{V}}(stats[2u * c + 1u].x);
    for (var n = n0; n < n1; n++) {
      let gb = (n * p.C + c) * p.hw + q0;
      let xb = (n * p.xc + c) * p.hw + q0;
      for (var i = 0u; i < len; i++) {
        let xm = (x[xb + i] - K) - d;
        let gg = g[gb + i] * dact(xm * scale + beta); // z as in batchnorm_apply
        s1 += gg;
        s2 += gg * xm;
      }
    }
  }
  part[id] = vec2f(total(s1), total(s2));
}
